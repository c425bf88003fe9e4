// The drain's Merkle tree and the module's signed tree heads (issue 15, item 5): the drain's tree
// over what it stored, committed with the store's position so a restart resumes it without
// reading the trail again; the module's tree head kept as one "@treehead <base64 note>" line and
// checked against the drain's own root (treehead.mismatch on a difference, the note still kept).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "agent/engine/pipeline/drain.h"
#include "agent/engine/store/audit_store.h"
#include "fake_module.h"
#include "mac/merkle.h"
#include "mac/note.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using testing::AlertList;
using testing::FakeModule;

/// A FakeModule that signs tree heads over its records, optionally with a wrong root, optionally
/// producing more records first (a module ahead of the agent).
class TreeModule : public FakeModule {
public:
    explicit TreeModule(const mac::NewChainKeys& keys)
        : FakeModule(keys), signer_(keys.signer), origin_(mac::tree_origin(keys.key.chain())) {}

    Result<std::string> tree_head() override {
        ++tree_heads;
        if (produce_before_head != 0) produce(produce_before_head);
        mac::TreeHead head;
        head.origin = foreign_origin ? "hsmaudit/someone-else" : origin_;
        const mac::tlog::CompactTree t = tree();
        head.size = t.size();
        head.root = t.root();
        if (corrupt_root) head.root[0] ^= 1;
        return mac::sign_checkpoint(head, signer_);
    }
    /// The RFC 6962 tree over every record the module holds.
    [[nodiscard]] mac::tlog::CompactTree tree() {
        mac::tlog::CompactTree t;
        for (std::uint64_t i = 1; i <= size(); ++i) {
            const Stored& e = entry(i);
            if (e.kind != EntryKind::record) continue;
            std::string_view leaf = e.line;
            if (leaf.ends_with('\n')) leaf.remove_suffix(1);
            t.append(mac::tlog::leaf_hash(leaf));
        }
        return t;
    }

    bool corrupt_root = false;
    bool foreign_origin = false;
    std::size_t produce_before_head = 0;
    int tree_heads = 0;

private:
    mac::Ed25519PrivateKey signer_;
    std::string origin_;
};

class TreeHeadTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-treehead-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        auto k = mac::generate_chain_keys();
        ASSERT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<TreeModule>(*keys_);
        auto v = mac::tree_verifier(keys_->key.pub());
        ASSERT_TRUE(v) << v.error().message;
        verifier_.emplace(std::move(*v));
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::unique_ptr<AuditStore> open_store() {
        auto s = AuditStore::open(AuditStoreOptions{dir_.string(), true}, keys_->key);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return s ? std::move(*s) : nullptr;
    }
    std::unique_ptr<Drain> make_drain(AuditStore& store, DrainOptions opt = {}) {
        opt.poll_wait = std::chrono::milliseconds(0);
        auto d = std::make_unique<Drain>(*module_, store, keys_->key, alerts_, opt, [this] { return now_ms_; });
        d->set_checkpoint_sink([this](const std::string& l) { lines_.push_back(l); });
        return d;
    }
    void drain_all(Drain& d) {
        for (int i = 0; i < 1000 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(d.step().has_value());
        ASSERT_EQ(module_->acked(), module_->size());
    }
    /// The tree heads the sink received, opened with the module's verifier key.
    std::vector<mac::TreeHead> tree_heads() {
        std::vector<mac::TreeHead> out;
        for (const auto& l : lines_) {
            if (!l.starts_with("@treehead ")) continue;
            EXPECT_EQ(l.find('\n'), std::string::npos) << "one line per note";
            EXPECT_NE(l.find(" time=2026-"), std::string::npos) << l;
            auto note = mac::base64_decode(std::string_view(l).substr(10, l.find(' ', 10) - 10));
            EXPECT_TRUE(note) << l;
            if (!note) continue;
            auto head = mac::open_checkpoint(*note, *verifier_);
            EXPECT_TRUE(head) << head.error().message;
            if (head) out.push_back(*head);
        }
        return out;
    }

    fs::path dir_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<TreeModule> module_;
    std::optional<mac::note::NoteVerifier> verifier_;
    AlertList alerts_;
    std::vector<std::string> lines_;
    std::int64_t now_ms_ = 1'795'500'000'000;
};

TEST_F(TreeHeadTest, TheDrainsRootEqualsTheModulesAndTheNoteIsKeptAsOneVerifiableLine) {
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore());
    module_->produce(300);
    drain_all(*drain);  // the first step takes a checkpoint and a tree head
    ASSERT_TRUE(drain->tree().has_value());
    EXPECT_EQ(drain->tree()->size(), 300u);
    EXPECT_EQ(drain->tree()->root(), module_->tree().root());
    const auto heads = tree_heads();
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(heads[0].size, 300u);
    EXPECT_EQ(heads[0].root, drain->tree()->root());
    EXPECT_FALSE(alerts_.has("treehead.mismatch"));
    EXPECT_EQ(drain->stats().tree_heads, 1u);
    EXPECT_EQ(drain->stats().tree_size, 300u);
    // The checkpoint line still comes first, unchanged.
    ASSERT_EQ(lines_.size(), 2u);
    EXPECT_TRUE(lines_[0].starts_with("@checkpoint ")) << lines_[0];
}

TEST_F(TreeHeadTest, ADifferentRootRaisesACriticalAlertAndTheNoteIsStillKept) {
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->corrupt_root = true;
    module_->produce(50);
    drain_all(*drain);
    EXPECT_TRUE(alerts_.has("treehead.mismatch"));
    EXPECT_EQ(drain->stats().tree_head_mismatches, 1u);
    for (const auto& a : alerts_.alerts())
        if (a.kind == "treehead.mismatch") {
            EXPECT_EQ(a.severity, Severity::critical);
        }
    EXPECT_EQ(tree_heads().size(), 1u);  // kept: it is evidence
}

TEST_F(TreeHeadTest, ANoteThatDoesNotOpenWithTheChainsKeyIsAlertedAndKept) {
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->foreign_origin = true;  // signed by the right key under another log's name
    module_->produce(30);
    drain_all(*drain);
    EXPECT_TRUE(alerts_.has("treehead.bad_signature"));
    EXPECT_FALSE(alerts_.has("treehead.mismatch"));
    EXPECT_EQ(
        std::count_if(lines_.begin(), lines_.end(), [](const std::string& l) { return l.starts_with("@treehead "); }),
        1);
}

TEST_F(TreeHeadTest, AModuleAheadOfTheDrainIsCheckedWhenTheDrainReachesItsSize) {
    auto store = open_store();
    DrainOptions opt;
    opt.batch_max_entries = 40;
    auto drain = make_drain(*store, opt);
    module_->produce(10);
    module_->produce_before_head = 100;  // the module moves on before it signs
    module_->corrupt_root = true;
    ASSERT_TRUE(drain->step());  // stores 10 records (and the open entry), takes a head of 110
    EXPECT_EQ(drain->tree()->size(), 10u);
    EXPECT_FALSE(alerts_.has("treehead.mismatch"));  // not yet comparable
    module_->produce_before_head = 0;
    drain_all(*drain);
    EXPECT_TRUE(alerts_.has("treehead.mismatch"));  // checked at record 110, inside a batch
}

TEST_F(TreeHeadTest, AModuleAheadWithTheRightRootRaisesNothing) {
    auto store = open_store();
    DrainOptions opt;
    opt.batch_max_entries = 40;
    auto drain = make_drain(*store, opt);
    module_->produce(10);
    module_->produce_before_head = 100;
    ASSERT_TRUE(drain->step());
    module_->produce_before_head = 0;
    drain_all(*drain);
    EXPECT_EQ(drain->tree()->size(), 110u);
    EXPECT_EQ(drain->tree()->root(), module_->tree().root());
    EXPECT_FALSE(alerts_.has("treehead.mismatch"));
}

TEST_F(TreeHeadTest, ARestartResumesTheTreeFromTheStoresPositionWithoutReadingTheTrail) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        ASSERT_TRUE(drain->restore());
        for (int i = 0; i < 5; ++i) {
            module_->produce(77);
            drain_all(*drain);
        }
    }
    auto store = open_store();
    EXPECT_TRUE(store->durable_annex().starts_with("tree 385 ")) << store->durable_annex();
    // No restore(): nothing of the trail is read, the tree comes from the position's annex alone.
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->tree().has_value());
    EXPECT_EQ(drain->tree()->size(), 385u);
    EXPECT_EQ(drain->tree()->root(), module_->tree().root());
    ASSERT_TRUE(drain->restore());
    module_->produce(23);
    drain_all(*drain);
    EXPECT_EQ(drain->tree()->size(), 408u);
    EXPECT_EQ(drain->tree()->root(), module_->tree().root());
    EXPECT_FALSE(alerts_.has("tree.unavailable"));
}

// The module's first entry is an open line: a store committed with it and no record yet holds
// the empty tree in the annex's own form, so a restart there resumes the tree without an alert.
TEST_F(TreeHeadTest, ARestartBeforeTheFirstRecordResumesTheEmptyTree) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        ASSERT_TRUE(drain->restore());
        drain_all(*drain);  // the open line only
    }
    auto store = open_store();
    EXPECT_TRUE(store->durable_annex().starts_with("tree 0")) << store->durable_annex();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->tree().has_value());
    EXPECT_EQ(drain->tree()->size(), 0u);
    ASSERT_TRUE(drain->restore());
    module_->produce(9);
    drain_all(*drain);
    EXPECT_EQ(drain->tree()->root(), module_->tree().root());
    EXPECT_FALSE(alerts_.has("tree.unavailable"));
}

TEST_F(TreeHeadTest, APositionWithoutTheTreeIsAlertedAndTreeHeadsAreStillKept) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        module_->produce(20);
        drain_all(*drain);
    }
    // A position file rewritten without its annex (as `hsmaudit fsck --repair` writes one).
    auto pos = read_store_position(dir_.string());
    ASSERT_TRUE(pos);
    fs::remove(dir_ / "position");
    ASSERT_TRUE(write_store_position(dir_.string(), *pos));
    auto store = open_store();
    EXPECT_EQ(store->durable_annex(), "");
    lines_.clear();
    auto drain = make_drain(*store);
    EXPECT_FALSE(drain->tree().has_value());
    EXPECT_TRUE(alerts_.has("tree.unavailable"));
    module_->produce(5);
    drain_all(*drain);
    EXPECT_EQ(tree_heads().size(), 1u);
    EXPECT_FALSE(alerts_.has("treehead.mismatch"));
}

TEST_F(TreeHeadTest, WithTheTreeOffNoTreeHeadIsTakenAndNoAnnexWritten) {
    auto store = open_store();
    DrainOptions opt;
    opt.merkle_tree = false;
    auto drain = make_drain(*store, opt);
    module_->produce(20);
    drain_all(*drain);
    EXPECT_FALSE(drain->tree().has_value());
    EXPECT_EQ(module_->tree_heads, 0);
    EXPECT_TRUE(tree_heads().empty());
    EXPECT_EQ(store->durable_annex(), "");
    EXPECT_FALSE(alerts_.has("tree.unavailable"));
}

TEST_F(TreeHeadTest, AGapInTheRecordsStopsTheTreeWithAnAlert) {
    // A store that starts after record 1 (an agent installed on a module whose first records
    // were acknowledged elsewhere) cannot build the tree from the start.
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->produce(5);
    module_->tamper(2, module_->entry(3).line);  // entry 2 is record 1: it now claims seq 2's line
    module_->entry(2).seq = 2;
    module_->entry(2).kind = EntryKind::record;
    (void)drain->step();
    // Whatever the verifier says, the tree never holds a leaf out of order.
    EXPECT_TRUE(alerts_.has("tree.unavailable"));
    EXPECT_FALSE(drain->tree().has_value());
}

}  // namespace
}  // namespace hsmaudit::agent
