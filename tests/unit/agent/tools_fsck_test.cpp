// hsmaudit fsck: clean stores, uncommitted bytes, torn and short open segments, tampered sealed
// segments, damaged position files, files that do not belong, and what --repair does to each.
#include <gtest/gtest.h>

#include "agent/tools/fsck.h"
#include "tools_test_fixture.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;
using testing::StoreFixture;

class FsckTest : public ::testing::TestWithParam<bool> {
protected:
    FsckReport fsck(bool repair) {
        f_.close();  // the agent is stopped
        FsckOptions o;
        o.audit_dir = f_.audit_dir();
        o.key = &f_.key();
        o.repair = repair;
        auto r = fsck_store(o);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? std::move(*r) : FsckReport{};
    }
    static bool has(const FsckReport& r, std::string_view kind) {
        return std::any_of(r.findings.begin(), r.findings.end(), [&](const auto& f) { return f.kind == kind; });
    }
    static const FsckFinding& get(const FsckReport& r, std::string_view kind) {
        for (const auto& f : r.findings)
            if (f.kind == kind) return f;
        static const FsckFinding none;
        ADD_FAILURE() << "no finding " << kind << " in\n" << render_fsck_text(r, false);
        return none;
    }
    std::vector<fs::path> quarantined() const {
        std::vector<fs::path> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(fs::path(f_.audit_dir()) / "quarantine", ec))
            out.push_back(e.path());
        return out;
    }
    /// After a repair: fsck is clean, the agent's store opens without recovery, the trail verifies.
    void expect_repaired_store_is_clean(std::uint64_t records) {
        const auto again = fsck(false);
        EXPECT_TRUE(again.clean()) << render_fsck_text(again, false);
        EXPECT_EQ(again.verify.records, records);
        EXPECT_TRUE(f_.store().recovery_summary().empty()) << f_.store().recovery_summary();
        f_.close();
    }
    /// A store of 3 sealed segments and an open one: 40 + 1 + 1 + 25 records.
    void build() {
        f_.produce(40);
        f_.rotate();
        f_.produce(1);
        f_.rotate();
        f_.produce(1);
        f_.rotate();
        f_.produce(10);
        f_.produce(15);
    }
    fs::path position() const { return fs::path(f_.audit_dir()) / "position"; }

    StoreFixture f_{GetParam()};
};

TEST_P(FsckTest, AStoreWrittenByTheAgentIsClean) {
    build();
    const auto r = fsck(false);
    EXPECT_TRUE(r.clean()) << render_fsck_text(r, false);
    EXPECT_EQ(r.verify.records, 67u);
    EXPECT_EQ(r.verify.sealed_segments, 3u);
    EXPECT_EQ(r.verify.open_segments, 1u);
    ASSERT_TRUE(r.position.has_value());
    EXPECT_EQ(r.position->next_seq, 68u);
    const std::string text = render_fsck_text(r, false);
    EXPECT_NE(text.find("<- current"), std::string::npos) << text;
    EXPECT_NE(text.find("store is clean"), std::string::npos) << text;
    EXPECT_TRUE(fsck(true).clean());
    EXPECT_TRUE(quarantined().empty());
}

TEST_P(FsckTest, AnEmptyStoreIsClean) {
    f_.store();
    const auto r = fsck(false);
    EXPECT_TRUE(r.clean()) << render_fsck_text(r, false);
}

TEST_P(FsckTest, UncommittedBytesAreReportedAndCutIntoQuarantine) {
    build();
    const std::string saved = StoreFixture::slurp(position());
    const std::string open = f_.current_path();
    const auto committed = fs::file_size(open);
    f_.produce(9);  // reaches the disk, but the position that covers it does not
    const auto written = fs::file_size(open);
    f_.close();
    StoreFixture::spit(position(), saved);

    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "uncommitted_bytes")) << render_fsck_text(r, false);
    EXPECT_NE(get(r, "uncommitted_bytes").message.find(std::to_string(written - committed) + " bytes"),
              std::string::npos);
    EXPECT_EQ(r.findings.size(), 1u) << render_fsck_text(r, false);
    EXPECT_EQ(r.verify.records, 67u);         // only the committed part is verified
    EXPECT_EQ(fs::file_size(open), written);  // nothing changed without --repair
    EXPECT_TRUE(quarantined().empty());

    const auto fixed = fsck(true);
    EXPECT_TRUE(fixed.repaired);
    EXPECT_NE(get(fixed, "uncommitted_bytes").action.find("cut the file to"), std::string::npos);
    EXPECT_EQ(fs::file_size(open), committed);
    const auto q = quarantined();
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(fs::file_size(q[0]), written - committed);
    expect_repaired_store_is_clean(67);
}

TEST_P(FsckTest, AShortOpenSegmentIsDamageAndThePositionIsRebuiltFromTheLastCompleteRecord) {
    build();
    const std::string open = f_.current_path();
    const std::string before = StoreFixture::slurp(open);
    f_.produce(6);  // a last batch (one more chunk when encrypted)
    const std::string after = StoreFixture::slurp(open);
    f_.close();
    // The disk lost the end of the last batch: the file is shorter than committed, torn inside it.
    const std::size_t cut = before.size() + (after.size() - before.size()) / 2;
    StoreFixture::spit(open, after.substr(0, cut));
    // A torn chunk loses its whole batch; a plain file keeps the batch's complete lines.
    const std::uint64_t last =
        GetParam()
            ? 67
            : 67 + static_cast<std::uint64_t>(std::count(after.begin() + static_cast<std::ptrdiff_t>(before.size()),
                                                         after.begin() + static_cast<std::ptrdiff_t>(cut), '\n'));

    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "open_segment_short")) << render_fsck_text(r, false);
    const auto& finding = get(r, "open_segment_short");
    EXPECT_NE(finding.message.find("last complete record is seq " + std::to_string(last)), std::string::npos)
        << finding.message;

    const auto fixed = fsck(true);
    EXPECT_TRUE(fixed.repaired);
    const auto& action = get(fixed, "open_segment_short").action;
    EXPECT_NE(action.find("cut the file after its last complete record"), std::string::npos) << action;
    EXPECT_NE(action.find("rewrote"), std::string::npos) << action;
    ASSERT_TRUE(fixed.position.has_value());
    EXPECT_EQ(fixed.position->next_seq, last + 1);
    EXPECT_EQ(fixed.position->entry_no, last + 2 * 3 + 1);  // 3 sealed epochs: an open and a seal each
    EXPECT_EQ(fixed.position->current, fs::path(open).filename().string());
    EXPECT_EQ(fs::file_size(open), fixed.position->current_bytes);
    EXPECT_EQ(quarantined().size(), 2u);  // the torn bytes and the old position file
    expect_repaired_store_is_clean(last);
}

TEST_P(FsckTest, BothPositionSlotsDamagedAreRebuiltExactlyFromTheFiles) {
    build();
    const StorePosition original = f_.store().durable();
    f_.close();
    StoreFixture::spit(position(), std::string(1024, 'x'));
    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "position_damaged")) << render_fsck_text(r, false);
    EXPECT_EQ(r.findings.size(), 1u) << render_fsck_text(r, false);

    const auto fixed = fsck(true);
    ASSERT_TRUE(fixed.position.has_value());
    const StorePosition& p = *fixed.position;
    EXPECT_EQ(p.entry_no, original.entry_no);
    EXPECT_EQ(p.next_seq, original.next_seq);
    EXPECT_EQ(p.current, original.current);
    EXPECT_EQ(p.current_bytes, original.current_bytes);
    EXPECT_EQ(p.has_end, original.has_end);
    EXPECT_EQ(p.end_epoch, original.end_epoch);
    EXPECT_EQ(p.end_next_seq, original.end_next_seq);
    EXPECT_EQ(p.end_mac, original.end_mac);
    auto read = read_store_position(f_.audit_dir());
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->entry_no, original.entry_no);
    const auto q = quarantined();
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(StoreFixture::slurp(q[0]), std::string(1024, 'x'));  // the damaged file is kept
    expect_repaired_store_is_clean(67);
    // The agent resumes: more records, and the trail still verifies.
    f_.produce(3);
    expect_repaired_store_is_clean(70);
}

TEST_P(FsckTest, OneDamagedSlotIsNotAFault) {
    build();
    f_.close();
    auto st = read_position_file(f_.audit_dir());
    ASSERT_TRUE(st.has_value());
    ASSERT_GE(st->current, 0);
    std::string data = StoreFixture::slurp(position());
    const std::size_t other = 1 - static_cast<std::size_t>(st->current);
    data[other * 512 + 30] ^= 0x01;
    StoreFixture::spit(position(), data);
    const auto r = fsck(false);
    EXPECT_TRUE(r.clean()) << render_fsck_text(r, false);
    EXPECT_NE(render_fsck_text(r, false).find("DAMAGED"), std::string::npos);
}

TEST_P(FsckTest, ATamperedSealedSegmentIsListedWithItsSequenceAndLeftInPlace) {
    if (GetParam()) GTEST_SKIP() << "a flipped byte of an encrypted file is chunk damage, tested below";
    build();
    f_.close();
    const fs::path sealed = fs::path(f_.audit_dir()) / "ready_for_archive" / "hsm_150123_00000000.log";
    std::string data = StoreFixture::slurp(sealed);
    const auto at = data.find("\n7 ");  // record 7
    ASSERT_NE(at, std::string::npos);
    const auto r_at = data.find("result=0x", at);
    data[r_at + 16] = data[r_at + 16] == '1' ? '2' : '1';
    StoreFixture::spit(sealed, data);

    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "chain_fault")) << render_fsck_text(r, false);
    EXPECT_NE(get(r, "chain_fault").message.find("record_mac_mismatch"), std::string::npos);
    EXPECT_NE(get(r, "chain_fault").message.find("seq 7"), std::string::npos) << get(r, "chain_fault").message;
    const auto fixed = fsck(true);
    EXPECT_NE(get(fixed, "chain_fault").action.find("left in place"), std::string::npos);
    EXPECT_TRUE(fs::exists(sealed));
    EXPECT_EQ(StoreFixture::slurp(sealed), data);
    EXPECT_FALSE(fixed.clean());
}

TEST_P(FsckTest, DamagedChunksOfASealedSegmentAreFaults) {
    if (!GetParam()) GTEST_SKIP() << "encrypted stores only";
    build();
    f_.close();
    const fs::path sealed = fs::path(f_.audit_dir()) / "ready_for_archive" / "hsm_150123_00000000.log";
    std::string data = StoreFixture::slurp(sealed);
    data[100] ^= 0x01;
    StoreFixture::spit(sealed, data);
    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "chain_fault")) << render_fsck_text(r, false);
    EXPECT_NE(get(r, "chain_fault").message.find("fails authentication"), std::string::npos)
        << get(r, "chain_fault").message;
    // Damaged is not foreign: the file stays where it is.
    const auto fixed = fsck(true);
    EXPECT_FALSE(has(fixed, "not_in_chain"));
    EXPECT_EQ(StoreFixture::slurp(sealed), data);
    EXPECT_TRUE(quarantined().empty());
}

TEST_P(FsckTest, FilesThatDoNotBelongAreMovedAsideNotDeleted) {
    build();
    f_.close();
    const fs::path audit(f_.audit_dir());
    StoreFixture::spit(audit / "notes.txt", "hello");
    StoreFixture::spit(audit / "ready_for_archive" / "copy.bak", "x");
    StoreFixture::spit(audit / "ready_for_archive" / "hsm_999_00000000.log", "not a segment\n");
    StoreFixture::spit(audit / "current" / "hsm_150123_00000009.log", "@open uncommitted\n");
    const auto r = fsck(false);
    EXPECT_EQ(
        std::count_if(r.findings.begin(), r.findings.end(), [](const auto& f) { return f.kind == "unexplained_file"; }),
        2)
        << render_fsck_text(r, false);
    EXPECT_TRUE(has(r, "not_in_chain"));
    EXPECT_TRUE(has(r, "uncommitted_segment"));
    EXPECT_TRUE(fs::exists(audit / "notes.txt"));

    const auto fixed = fsck(true);
    for (const auto& f : fixed.findings) EXPECT_NE(f.action.find("moved to"), std::string::npos) << f.message;
    EXPECT_FALSE(fs::exists(audit / "notes.txt"));
    const auto q = quarantined();
    ASSERT_EQ(q.size(), 4u);
    bool found = false;
    for (const auto& p : q)
        if (p.filename().string().starts_with("notes.txt.")) found = StoreFixture::slurp(p) == "hello";
    EXPECT_TRUE(found);
    expect_repaired_store_is_clean(67);
}

TEST_P(FsckTest, ASegmentSealedAfterTheLastCommitIsMovedBack) {
    build();
    f_.module().seal_now();
    f_.module().produce(2);
    f_.drain(false);  // seal written, file moved, next opened: never committed
    f_.close();
    const auto r = fsck(false);
    ASSERT_TRUE(has(r, "sealed_after_commit")) << render_fsck_text(r, false);
    const auto fixed = fsck(true);
    EXPECT_NE(get(fixed, "sealed_after_commit").action.find("moved back"), std::string::npos);
    expect_repaired_store_is_clean(67);
}

TEST_P(FsckTest, AMissingOpenSegmentCannotBeRepairedAndSaysSo) {
    build();
    const std::string open = f_.current_path();
    f_.close();
    fs::remove(open);
    const auto fixed = fsck(true);
    ASSERT_TRUE(has(fixed, "open_segment_missing")) << render_fsck_text(fixed, true);
    EXPECT_TRUE(get(fixed, "open_segment_missing").action.empty());
    EXPECT_NE(render_fsck_text(fixed, true).find("not repaired"), std::string::npos);
}

TEST_P(FsckTest, AWrongKeyChangesNothingAndIsAnError) {
    build();
    const std::string saved = StoreFixture::slurp(position());
    f_.produce(3);
    f_.close();
    StoreFixture::spit(position(), saved);  // uncommitted bytes that --repair would cut
    auto other = mac::generate_chain_keys();
    ASSERT_TRUE(other.has_value());
    FsckOptions o;
    o.audit_dir = f_.audit_dir();
    o.key = &other->key;
    o.repair = true;
    auto r = fsck_store(o);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(quarantined().empty());
}

TEST(FsckErrors, NoStoreOrNoKeyIsAnError) {
    FsckOptions o;
    o.audit_dir = "/nonexistent/hsmaudit/audit";
    EXPECT_FALSE(fsck_store(o).has_value());
    auto k = mac::generate_chain_keys();
    ASSERT_TRUE(k.has_value());
    o.key = &k->key;
    auto r = fsck_store(o);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("/nonexistent/hsmaudit/audit"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, FsckTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "encrypted" : "plain"; });

}  // namespace
}  // namespace hsmaudit::agent::tools
