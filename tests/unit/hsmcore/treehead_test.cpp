// The module's Merkle tree and signed tree heads (issue 15, item 5): the tree over the chain's
// records survives a restart (tree.state, saved before an acknowledgement frees the records), the
// TREEHEAD control command carries the signed note, it verifies with the module's public key, and
// the agent's drain, fed by the real module through the in-process host, reaches the same root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "agent/engine/pipeline/drain.h"
#include "agent/engine/store/audit_store.h"
#include "collectors/module/ring_source.h"
#include "hsmcore/errc.h"
#include "hsmcore/host/control_protocol.h"
#include "hsmcore/host/control_server.h"
#include "hsmcore/host/module_host.h"
#include "hsmcore/module/module.h"
#include "mac/keys.h"
#include "mac/merkle.h"
#include "mac/note.h"

namespace hsmaudit::hsmcore {
namespace {

namespace fs = std::filesystem;
using module::Module;

class CollectAlerts : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override { kinds.push_back(a.kind); }
    [[nodiscard]] bool has(std::string_view k) const { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); }
    std::vector<std::string> kinds;
};

class ModuleTreeTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmcore_tree_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        ASSERT_TRUE(Module::init(dir_.string(), module::InitOptions{}));
        open();
        auto pins = module::load_client_pins(dir_.string());
        ASSERT_TRUE(pins);
        pins_ = *pins;
    }
    void TearDown() override {
        module_.reset();
        fs::remove_all(dir_);
    }
    void open() {
        auto m = Module::open(dir_.string());
        ASSERT_TRUE(m) << m.error().message;
        module_ = std::move(*m);
    }
    /// Some audited operations.
    void work(int n) {
        auto s = module_->open_session(1);
        ASSERT_TRUE(s);
        ASSERT_TRUE(module_->login(s->handle, module::Role::co, pins_.at({"CO", 1})));
        auto k = module_->generate_key(s->handle, module::KeyAlg::aes256, "k");
        ASSERT_TRUE(k);
        for (int i = 0; i < n; ++i) ASSERT_TRUE(module_->encrypt(s->handle, k->handle, "m"));
        ASSERT_TRUE(module_->close_session(s->handle));
    }
    /// Reads every entry after `after_` as the agent would, adds the records' leaves to `tree_`,
    /// and acknowledges them (the ring frees their space).
    void drain_and_ack() {
        auto host = host::make_in_process_host(*module_);
        std::vector<ring::EntryView> v;
        ASSERT_TRUE(host->read_after(after_, 1'000'000, v));
        std::string line;
        for (const auto& e : v) {
            after_ = e.entry.entry_no;
            if (e.entry.kind != ring::EntryKind::record) continue;
            line.clear();
            ASSERT_TRUE(host::render_line(e, host->serial(), line));
            ASSERT_EQ(e.entry.seq, tree_.size() + 1);
            tree_.append(mac::tlog::leaf_hash(std::string_view(line).substr(0, line.size() - 1)));
        }
        ASSERT_TRUE(host->ack_through(after_));
    }
    mac::note::NoteVerifier verifier() {
        auto pub = mac::load_audit_pub((dir_ / mac::kAuditPubFile).string());
        EXPECT_TRUE(pub);
        auto v = mac::tree_verifier(*pub);
        EXPECT_TRUE(v) << v.error().message;
        return *v;
    }

    fs::path dir_;
    std::unique_ptr<Module> module_;
    std::map<std::pair<std::string, std::uint32_t>, std::string> pins_;
    std::uint64_t after_ = 0;
    mac::tlog::CompactTree tree_;  // built independently from the ring's records
};

TEST_F(ModuleTreeTest, TheTreeSurvivesRestartsAfterItsRecordsWereAcknowledged) {
    work(20);
    drain_and_ack();
    module_.reset();  // restart: the acknowledged records are gone from the ring
    open();
    work(7);
    drain_and_ack();
    module_.reset();
    open();  // and once more, with records still in the ring (not acknowledged)
    work(3);
    drain_and_ack();
    auto r = module_->tree_root();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->first, module_->status().next_seq - 1);
    EXPECT_EQ(r->first, tree_.size());
    EXPECT_EQ(r->second, tree_.root());
}

TEST_F(ModuleTreeTest, TheTreeHeadIsASignedNoteThatVerifiesWithTheModulesPublicKey) {
    work(12);
    drain_and_ack();
    // Through the control socket's command, as the cross-process agent asks for it.
    auto reply = host::parse_reply(host::ControlServer::handle(*module_, "TREEHEAD"));
    ASSERT_TRUE(reply) << reply.error().message;
    const std::string_view hex = reply->get("note");
    std::string note(hex.size() / 2, '\0');
    ASSERT_TRUE(mac::hex_decode(hex, {reinterpret_cast<std::uint8_t*>(note.data()), note.size()}));
    auto head = mac::open_checkpoint(note, verifier());
    ASSERT_TRUE(head) << head.error().message;
    EXPECT_EQ(head->size, tree_.size());
    EXPECT_EQ(head->root, tree_.root());
    // One changed byte of the signed text fails.
    std::string bad = note;
    bad[bad.find('\n') + 1] ^= 1;
    EXPECT_FALSE(mac::open_checkpoint(bad, verifier()));
}

TEST_F(ModuleTreeTest, ALostTreeStateAfterAcknowledgementsIsReportedNotGuessed) {
    work(5);
    drain_and_ack();
    module_.reset();
    fs::remove(dir_ / module::kTreeStateFile);
    open();
    auto note = module_->tree_head();
    ASSERT_FALSE(note);
    EXPECT_EQ(note.error().code, errc::invalid_state);
    EXPECT_EQ(host::ControlServer::handle(*module_, "TREEHEAD").rfind("ERR invalid_state", 0), 0u);
}

TEST_F(ModuleTreeTest, ATornTreeStateSlotFallsBackToTheOtherOne) {
    work(5);
    drain_and_ack();  // saves generation 1 (slot 1)
    work(5);
    drain_and_ack();  // saves generation 2 (slot 0)
    module_.reset();
    const std::string path = (dir_ / module::kTreeStateFile).string();
    ASSERT_EQ(fs::file_size(path), 2u * 8192u);
    auto tear = [&](std::streamoff offset) {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        ASSERT_TRUE(f.is_open());
        f.seekp(offset);
        f.put('#');
        ASSERT_TRUE(f.good());
    };
    tear(8192 + 40);  // the older slot (generation 1): ignored
    open();
    drain_and_ack();  // the start record; saves generation 3 into slot 1
    auto r = module_->tree_root();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->second, tree_.root());
    module_.reset();
    tear(8192 + 40);  // now the newest (generation 3): generation 2 misses records acknowledged since
    open();
    r = module_->tree_root();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_state);
}

TEST_F(ModuleTreeTest, TheAgentsDrainReachesTheModulesRoot) {
    work(40);
    const std::string audit = (dir_ / "agent").string();
    auto key = mac::load_audit_key((dir_ / mac::kAuditKeyFile).string());
    ASSERT_TRUE(key) << key.error().message;
    auto store = agent::AuditStore::open(agent::AuditStoreOptions{audit, true}, *key);
    ASSERT_TRUE(store) << store.error().message;
    collectors::ModuleRingSource source(host::make_in_process_host(*module_));
    CollectAlerts alerts;
    agent::DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(0);
    opt.batch_max_entries = 16;
    std::vector<std::string> lines;
    agent::Drain drain(source, **store, *key, alerts, opt, [] { return std::int64_t{1'795'500'000'000}; });
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    ASSERT_TRUE(drain.restore());
    for (int i = 0; i < 100 && (*store)->durable().next_seq < module_->status().next_seq; ++i)
        ASSERT_TRUE(drain.step());
    auto r = module_->tree_root();
    ASSERT_TRUE(r);
    ASSERT_TRUE(drain.tree().has_value());
    EXPECT_EQ(drain.tree()->size(), r->first);
    EXPECT_EQ(drain.tree()->root(), r->second);
    // The first step took the module's head while the drain was behind: checked on the way.
    ASSERT_GE(lines.size(), 2u);
    EXPECT_TRUE(lines[1].starts_with("@treehead "));
    auto note = mac::base64_decode(std::string_view(lines[1]).substr(10, lines[1].find(' ', 10) - 10));
    ASSERT_TRUE(note);
    auto head = mac::open_checkpoint(*note, verifier());
    ASSERT_TRUE(head) << head.error().message;
    EXPECT_GT(head->size, 16u);  // the module was ahead of the first batch
    EXPECT_FALSE(alerts.has("treehead.mismatch"));
    EXPECT_FALSE(alerts.has("tree.unavailable"));
    EXPECT_FALSE(alerts.has("treehead.failed"));
}

}  // namespace
}  // namespace hsmaudit::hsmcore
