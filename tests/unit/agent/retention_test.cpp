// Retention: the quota of the export area, deletion of delivered archives only (oldest first),
// the zero-exporter policy, and the fail-safe pause of acknowledgements (with a fake clock).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/pipeline/drain.h"
#include "agent/store/archiver.h"
#include "agent/store/audit_store.h"
#include "agent/store/retention.h"
#include "fake_module.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using testing::AlertList;
using testing::FakeModule;

/// Exporters whose slowest one has delivered through `seq`.
class FakeCursors : public DeliveryCursors {
public:
    std::optional<std::uint64_t> min_delivered_seq() const override { return seq; }
    std::optional<std::uint64_t> seq;
};

std::uint64_t usage_of(const fs::path& dir) {
    std::uint64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) total += e.file_size();
    return total;
}

class RetentionTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-retention-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        auto k = mac::generate_chain_keys();
        ASSERT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<FakeModule>(*keys_);
        auto s = AuditStore::open(AuditStoreOptions{audit_dir().string(), false}, keys_->key);
        ASSERT_TRUE(s.has_value()) << s.error().message;
        store_ = std::move(*s);
        DrainOptions opt;
        opt.poll_wait = std::chrono::milliseconds(0);
        opt.status_interval = std::chrono::milliseconds(1000);
        drain_ = std::make_unique<Drain>(*module_, *store_, keys_->key, alerts_, opt, [this] { return now_ms_; });
        ASSERT_TRUE(drain_->restore().has_value());
        ArchiverOptions aopt;
        aopt.audit_dir = audit_dir().string();
        archiver_ = std::make_unique<Archiver>(
            aopt, keys_->key, alerts_, [this] { return drain_->stats().sealed_epoch; }, [this] { return now_ms_; });
    }
    void TearDown() override {
        archiver_.reset();
        drain_.reset();
        store_.reset();
        fs::remove_all(dir_);
    }

    fs::path audit_dir() const { return dir_ / "audit"; }

    void drain_all() {
        for (int i = 0; i < 1000 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(drain_->step().has_value());
        ASSERT_EQ(module_->acked(), module_->size());
    }

    /// One archive of two sealed segments of 50 records each; returns its path.
    std::string make_archive() {
        for (int i = 0; i < 2; ++i) {
            module_->produce(50);
            module_->seal_now();
        }
        drain_all();
        auto run = archiver_->run_once();
        EXPECT_TRUE(run.has_value() && run->archives.size() == 1u);
        return run && !run->archives.empty() ? run->archives.front() : std::string{};
    }

    std::unique_ptr<Retention> make_retention(std::uint64_t quota, double warning, const DeliveryCursors& cursors) {
        RetentionOptions opt;
        opt.audit_dir = audit_dir().string();
        opt.quota_bytes = quota;
        opt.warning_ratio = warning;
        return std::make_unique<Retention>(
            opt, cursors, alerts_,
            [this](bool paused, const std::string& reason) { drain_->set_ack_paused(paused, reason); },
            [this] { return now_ms_; });
    }

    const Alert* find(std::string_view kind) const {
        for (const auto& a : alerts_.alerts)
            if (a.kind == kind) return &a;
        return nullptr;
    }

    static inline int counter_ = 0;
    fs::path dir_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<FakeModule> module_;
    AlertList alerts_;
    std::unique_ptr<AuditStore> store_;
    std::unique_ptr<Drain> drain_;
    std::unique_ptr<Archiver> archiver_;
    std::int64_t now_ms_ = 1'795'500'000'000;
};

TEST_F(RetentionTest, DeletesOnlyArchivesEveryExporterDeliveredOldestFirst) {
    std::vector<std::string> archives;
    for (int i = 0; i < 4; ++i) archives.push_back(make_archive());  // seqs 1-100, 101-200, 201-300, 301-400
    FakeCursors cursors;
    cursors.seq = 250;  // the slowest exporter is inside the third archive
    const std::uint64_t used = usage_of(audit_dir());
    auto retention = make_retention(used - 1, 0.01, cursors);  // over quota; wants to go far below it
    auto st = retention->check();
    ASSERT_TRUE(st.has_value()) << st.error().message;
    EXPECT_FALSE(fs::exists(archives[0]));
    EXPECT_FALSE(fs::exists(archives[1]));
    EXPECT_TRUE(fs::exists(archives[2])) << "holds records 251-300 that an exporter has not delivered";
    EXPECT_TRUE(fs::exists(archives[3]));
    EXPECT_EQ(st->archives_deleted, 2u);
    EXPECT_EQ(st->used_bytes, usage_of(audit_dir()));
    ASSERT_NE(find("retention.deleted"), nullptr);
    EXPECT_EQ(st->level, QuotaLevel::warning) << "below the quota, but what is left may not be deleted";
    EXPECT_FALSE(st->acks_paused);

    // Once the exporters catch up, the next oldest goes, and nothing newer than it.
    cursors.seq = 400;
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->archives_deleted, 2u) << "below the quota now: nothing is deleted early";
    retention = make_retention(usage_of(audit_dir()), 1.0, cursors);  // at the quota; stop just below it
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(fs::exists(archives[2]));
    EXPECT_TRUE(fs::exists(archives[3])) << "one deletion was enough";
}

TEST_F(RetentionTest, WithNoExporterNothingIsDeletedAndAcksPauseAtTheQuota) {
    const std::string archive = make_archive();
    NoExporters none;
    const std::uint64_t used = usage_of(audit_dir());
    std::vector<bool> calls;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = used / 2;
    Retention retention(
        opt, none, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(fs::exists(archive)) << "the local store is the only copy";
    EXPECT_EQ(st->archives_deleted, 0u);
    EXPECT_EQ(st->level, QuotaLevel::full);
    EXPECT_EQ(st->protected_bytes, used);
    EXPECT_EQ(calls, std::vector<bool>{true});
    const Alert* full = find("store.quota_full");
    ASSERT_NE(full, nullptr);
    EXPECT_EQ(full->severity, Severity::critical);
    EXPECT_NE(full->message.find("no exporter is configured"), std::string::npos) << full->message;
    // Again: no new alert, no second pause.
    ASSERT_TRUE(retention.check().has_value());
    EXPECT_EQ(calls.size(), 1u);
}

TEST_F(RetentionTest, WarnsAtTheWarningLevelWithoutPausing) {
    make_archive();
    NoExporters none;
    const std::uint64_t used = usage_of(audit_dir());
    std::vector<bool> calls;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = used + used / 20;  // 95% full
    opt.warning_ratio = 0.9;
    Retention retention(
        opt, none, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->level, QuotaLevel::warning);
    EXPECT_TRUE(calls.empty());
    ASSERT_NE(find("store.quota_warning"), nullptr);
    EXPECT_EQ(find("store.quota_full"), nullptr);
}

TEST_F(RetentionTest, AnArchiveWhoseManifestCannotBeReadIsNeverDeletedNorAnythingAfterIt) {
    const std::string good = make_archive();
    const fs::path bad = audit_dir() / "archive" / "audit-150123-00000000-00000000.tar";  // sorts first
    std::ofstream(bad) << "not an archive";
    FakeCursors cursors;
    cursors.seq = 1'000'000;
    auto retention = make_retention(usage_of(audit_dir()) / 2, 0.5, cursors);
    auto st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(fs::exists(bad));
    EXPECT_TRUE(fs::exists(good));
    EXPECT_EQ(st->level, QuotaLevel::full);
    EXPECT_TRUE(st->acks_paused);
}

TEST_F(RetentionTest, AtTheQuotaTheDrainStopsAcknowledgingAndResumesWhenSpaceIsFreed) {
    const std::string archive = make_archive();
    NoExporters none;
    auto retention = make_retention(usage_of(audit_dir()) - 1, 0.9, none);
    now_ms_ += 5'000;
    auto st = retention->check();
    ASSERT_TRUE(st.has_value());
    ASSERT_TRUE(st->acks_paused);
    EXPECT_TRUE(drain_->stats().acks_paused);
    const Alert* paused = find("drain.acks_paused");
    ASSERT_NE(paused, nullptr);
    EXPECT_EQ(paused->severity, Severity::critical);
    EXPECT_EQ(paused->time_ms, now_ms_);

    // The module goes on producing; nothing is read, stored or acknowledged, so its ring fills.
    const std::uint64_t acked = module_->acked();
    const std::uint64_t stored = store_->durable().entry_no;
    module_->produce(300);
    for (int i = 0; i < 5; ++i) {
        now_ms_ += 1'000;
        auto n = drain_->step();
        ASSERT_TRUE(n.has_value());
        EXPECT_EQ(*n, 0u);
    }
    EXPECT_EQ(module_->acked(), acked);
    EXPECT_EQ(store_->durable().entry_no, stored);
    EXPECT_TRUE(module_->violations().empty());
    // The drain still watches the ring: the module blocking is heard.
    module_->set_blocked(true);
    now_ms_ += 1'000;
    ASSERT_TRUE(drain_->step().has_value());
    EXPECT_NE(find("module.blocked"), nullptr);
    EXPECT_EQ(drain_->stats().last_step_ms, now_ms_) << "paused on purpose is not stuck (watchdog)";

    // The operator copies the archive off the box and deletes it: the drain resumes.
    fs::remove(archive);
    now_ms_ += 5'000;
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(st->acks_paused);
    EXPECT_FALSE(drain_->stats().acks_paused);
    const Alert* resumed = find("drain.acks_resumed");
    ASSERT_NE(resumed, nullptr);
    EXPECT_EQ(resumed->time_ms, now_ms_);
    module_->set_blocked(false);
    drain_all();
    EXPECT_EQ(module_->acked(), module_->size());
    EXPECT_TRUE(module_->violations().empty());
}

}  // namespace
}  // namespace hsmaudit::agent
