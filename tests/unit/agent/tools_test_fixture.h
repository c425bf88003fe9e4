// A store written by AuditStore from a module stand-in, for the hsmaudit status/tail/fsck tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "agent/engine/store/audit_store.h"
#include "fake_module.h"

namespace hsmaudit::agent::testing {

namespace fs = std::filesystem;

class StoreFixture {
public:
    explicit StoreFixture(bool encrypt) : encrypt_(encrypt) {
        std::string tmpl = (fs::temp_directory_path() / "hsmaudit-tools-XXXXXX").string();
        EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
        state_ = tmpl;
        auto k = mac::generate_chain_keys();
        EXPECT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<FakeModule>(*keys_);
    }
    ~StoreFixture() {
        store_.reset();
        std::error_code ec;
        fs::remove_all(state_, ec);
    }
    StoreFixture(const StoreFixture&) = delete;
    StoreFixture& operator=(const StoreFixture&) = delete;

    [[nodiscard]] std::string state_dir() const { return state_.string(); }
    [[nodiscard]] std::string audit_dir() const { return (state_ / "audit").string(); }
    [[nodiscard]] const mac::AuditKey& key() const { return keys_->key; }
    FakeModule& module() { return *module_; }

    AuditStore& store() {
        if (!store_) {
            auto s = AuditStore::open(AuditStoreOptions{audit_dir(), encrypt_}, keys_->key);
            EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
            if (s) store_ = std::move(*s);
        }
        return *store_;
    }
    /// Closes the store (as a stopped agent).
    void close() { store_.reset(); }

    /// Everything the module holds is appended; committed (and acknowledged) if `commit`.
    void drain(bool commit = true) {
        EntryBatch batch;
        ASSERT_TRUE(module_->read(store().appended_entry_no(), 1 << 20, {}, batch).has_value());
        if (batch.empty()) return;
        ASSERT_TRUE(store().append(batch).has_value());
        if (!commit) return;
        ASSERT_TRUE(store().commit().has_value());
        ASSERT_TRUE(module_->acknowledge(store().durable().entry_no).has_value());
    }
    /// The module creates `n` records and the store takes them.
    void produce(std::size_t n, bool commit = true) {
        module_->produce(n);
        drain(commit);
    }
    /// The module seals its segment (and opens the next); the store takes both.
    void rotate() {
        module_->seal_now();
        drain();
    }
    [[nodiscard]] std::string current_path() { return store().current_path(); }

    static std::string slurp(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    static void spit(const fs::path& p, const std::string& data, bool append = false) {
        std::ofstream out(p, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
        out << data;
    }

private:
    bool encrypt_;
    fs::path state_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<FakeModule> module_;
    std::unique_ptr<AuditStore> store_;
};

}  // namespace hsmaudit::agent::testing
