// The audit store's formats and rules that other modules call instead of re-deriving them
// (agent/engine/store/audit_store.h): the position file's bytes, the listing of the store's
// directories, and the recovery plan that both the store's open() and `hsmaudit fsck` follow,
// for each shape a crash can leave.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/state_layout.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr char kSeg0[] = "hsm_150123_00000000.log";
constexpr char kSeg1[] = "hsm_150123_00000001.log";
constexpr char kSeg2[] = "hsm_150123_00000002.log";

StorePosition position(std::uint64_t generation, std::string current = {}, std::uint64_t current_bytes = 0) {
    StorePosition p;
    p.generation = generation;
    p.entry_no = 10 * generation;
    p.next_seq = 5 * generation + 1;
    p.current = std::move(current);
    p.current_bytes = current_bytes;
    return p;
}

// ---- recovery plan ---------------------------------------------------------------------------

TEST(RecoveryPlan, ACleanStoreNeedsNothing) {
    const auto plan = plan_recovery(position(3, kSeg1, 700), {{{kSeg1, 700}}, {{kSeg0, 900}}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::in_current);
    EXPECT_EQ(plan.open_name, kSeg1);
    EXPECT_TRUE(plan.uncommitted.empty());
    EXPECT_EQ(plan.uncommitted_bytes(), 0u);
    EXPECT_FALSE(plan.short_of_committed());
}

TEST(RecoveryPlan, BytesWrittenAfterTheLastCommitAreCut) {
    const auto plan = plan_recovery(position(3, kSeg1, 700), {{{kSeg1, 1000}}, {}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::in_current);
    EXPECT_EQ(plan.uncommitted_bytes(), 300u);
    EXPECT_EQ(plan.committed_bytes, 700u);
    EXPECT_FALSE(plan.short_of_committed());
}

TEST(RecoveryPlan, ASegmentCreatedAfterTheLastCommitIsUncommitted) {
    // The open segment was sealed and the next one created, neither committed.
    const auto plan = plan_recovery(position(3, kSeg1, 700), {{{kSeg1, 700}, {kSeg2, 80}}, {{kSeg0, 900}}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::in_current);
    EXPECT_EQ(plan.uncommitted, std::vector<std::string>{kSeg2});
}

TEST(RecoveryPlan, ASegmentSealedAfterTheLastCommitIsMovedBackAndCut) {
    const auto plan = plan_recovery(position(3, kSeg1, 700), {{{kSeg2, 80}}, {{kSeg0, 900}, {kSeg1, 950}}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::sealed_after_commit);
    EXPECT_EQ(plan.open_bytes, 950u);
    EXPECT_EQ(plan.uncommitted_bytes(), 250u);  // the seal line and what came before it uncommitted
    EXPECT_EQ(plan.uncommitted, std::vector<std::string>{kSeg2});
}

TEST(RecoveryPlan, AMissingOrShortOpenSegmentIsDamageNotSomethingToCut) {
    const auto missing = plan_recovery(position(3, kSeg1, 700), {{}, {{kSeg0, 900}}});
    EXPECT_EQ(missing.open, RecoveryPlan::Open::missing);
    EXPECT_EQ(missing.uncommitted_bytes(), 0u);
    EXPECT_FALSE(missing.short_of_committed());

    const auto short_one = plan_recovery(position(3, kSeg1, 700), {{{kSeg1, 650}}, {}});
    EXPECT_EQ(short_one.open, RecoveryPlan::Open::in_current);
    EXPECT_TRUE(short_one.short_of_committed());
    EXPECT_EQ(short_one.uncommitted_bytes(), 0u);
}

TEST(RecoveryPlan, WithNoOpenSegmentEverythingInCurrentIsUncommitted) {
    const auto plan = plan_recovery(position(3), {{{kSeg2, 80}, {"junk", 3}}, {{kSeg1, 900}}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::none);
    EXPECT_EQ(plan.uncommitted, (std::vector<std::string>{kSeg2, "junk"}));
    EXPECT_EQ(plan.uncommitted_bytes(), 0u);
    // A fresh store (generation 0, nothing committed) likewise.
    EXPECT_EQ(plan_recovery(StorePosition{}, {{{kSeg0, 24}}, {}}).uncommitted, std::vector<std::string>{kSeg0});
}

TEST(RecoveryPlan, AFileInBothDirectoriesIsTheOpenOneInCurrent) {
    const auto plan = plan_recovery(position(3, kSeg1, 700), {{{kSeg1, 700}}, {{kSeg1, 950}}});
    EXPECT_EQ(plan.open, RecoveryPlan::Open::in_current);
    EXPECT_EQ(plan.open_bytes, 700u);
}

// ---- listing ---------------------------------------------------------------------------------

class StoreDir : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-store-format-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const fs::path& rel, std::size_t bytes) {
        fs::create_directories((dir_ / rel).parent_path());
        std::ofstream(dir_ / rel, std::ios::binary) << std::string(bytes, 'x');
    }
    fs::path dir_;
};

TEST_F(StoreDir, ListingNamesEveryFileWithItsSizeAndAMissingDirectoryIsEmpty) {
    auto empty = list_store_files(dir_.string());
    ASSERT_TRUE(empty.has_value()) << empty.error().message;
    EXPECT_TRUE(empty->current.empty());
    EXPECT_TRUE(empty->ready.empty());

    write(fs::path(kOpenSegmentDir) / kSeg2, 80);
    write(fs::path(kOpenSegmentDir) / "stray.tmp", 3);
    write(fs::path(kSealedSegmentDir) / kSeg1, 950);
    auto l = list_store_files(dir_.string());
    ASSERT_TRUE(l.has_value()) << l.error().message;
    ASSERT_EQ(l->current.size(), 2u);
    ASSERT_EQ(l->ready.size(), 1u);
    EXPECT_EQ(l->ready[0].name, kSeg1);
    EXPECT_EQ(l->ready[0].bytes, 950u);
    for (const auto& f : l->current) EXPECT_EQ(f.bytes, f.name == kSeg2 ? 80u : 3u) << f.name;
    // The plan from a real listing: the open segment was sealed after the commit.
    const auto plan = plan_recovery(position(2, kSeg1, 900), *l);
    EXPECT_EQ(plan.open, RecoveryPlan::Open::sealed_after_commit);
    EXPECT_EQ(plan.uncommitted_bytes(), 50u);
    EXPECT_EQ(plan.uncommitted.size(), 2u);
}

TEST_F(StoreDir, SegmentsAreListedInEpochOrderTheSealedCopyFirstForeignNamesSkipped) {
    write(fs::path(kSealedSegmentDir) / kSeg0, 10);
    write(fs::path(kSealedSegmentDir) / kSeg1, 20);
    write(fs::path(kOpenSegmentDir) / kSeg1, 5);  // recovery moving it back: the sealed copy wins
    write(fs::path(kOpenSegmentDir) / kSeg2, 30);
    write(fs::path(kOpenSegmentDir) / "notes.log", 1);
    write(fs::path(kSealedSegmentDir) / "hsm_150123_0000000g.log", 1);
    fs::create_directories(dir_ / kOpenSegmentDir / "hsm_150123_00000003.log");  // a directory is no segment
    const auto segs = list_store_segments(dir_.string());
    ASSERT_EQ(segs.size(), 3u);
    EXPECT_EQ(segs[0].name, kSeg0);
    EXPECT_EQ(segs[1].name, kSeg1);
    EXPECT_TRUE(segs[1].sealed_dir);
    EXPECT_EQ(segs[2].name, kSeg2);
    EXPECT_FALSE(segs[2].sealed_dir);
    EXPECT_EQ(segs[2].epoch, 2u);
    EXPECT_EQ(segs[2].path, (dir_ / kOpenSegmentDir / kSeg2).string());
    EXPECT_TRUE(list_store_segments((dir_ / "nothing").string()).empty());
}

// ---- archive names ---------------------------------------------------------------------------

TEST(ArchiveNames, RoundTripAndForeignNamesAreRejected) {
    EXPECT_EQ(archive_file_name("150123", 1, 0x2a, true), "audit-150123-00000001-0000002a.tgz");
    EXPECT_EQ(archive_file_name("150123", 1, 0x2a, false, 2), "audit-150123-00000001-0000002a.2.tar");
    for (bool compressed : {true, false})
        for (int n : {0, 1, 7}) {
            const std::string name = archive_file_name("A-1_x", 0xabc, 0xfffffffe, compressed, n);
            const auto range = archive_file_epochs(name);
            ASSERT_TRUE(range.has_value()) << name;
            EXPECT_EQ(range->first, 0xabcu);
            EXPECT_EQ(range->second, 0xfffffffeu);
            EXPECT_TRUE(is_finished_archive(name)) << name;
            EXPECT_FALSE(is_finished_archive(kArchiveTempPrefix + name)) << name;
        }
    // Name order is chain order for one serial.
    EXPECT_LT(archive_file_name("s", 0xf, 0xf, true), archive_file_name("s", 0x10, 0x10, true));
    for (const char* bad : {"audit-150123-0000001-0000002a.tgz", "audit-150123-00000001-0000002g.tgz",
                            "xaudit-150123-00000001-0000002a.tgz", "hsmaudit-archive.txt"})
        EXPECT_FALSE(archive_file_epochs(bad)) << bad;
    EXPECT_FALSE(is_finished_archive("audit-150123-00000001-0000002a.zip"));
    EXPECT_FALSE(is_finished_archive("hsm_150123_00000001.log"));
}

// ---- position file ---------------------------------------------------------------------------

TEST(PositionFile, SlotsRoundTripIntoTheirGenerationsSlot) {
    for (std::uint64_t g = 0; g < 4; ++g) {
        auto slot = position_slot_bytes(position(g, kSeg1, 123 + g));
        ASSERT_TRUE(slot.has_value());
        ASSERT_EQ(slot->size(), kPositionSlotBytes);
        std::string file(2 * kPositionSlotBytes, '\0');
        file.replace((g % 2) * kPositionSlotBytes, kPositionSlotBytes, *slot);
        const auto st = parse_position_file(file, file.size());
        ASSERT_EQ(st.current, static_cast<int>(g % 2)) << g;
        const StorePosition& p = *st.slots[g % 2];
        EXPECT_EQ(p.generation, g);
        EXPECT_EQ(p.current, kSeg1);
        EXPECT_EQ(p.current_bytes, 123 + g);
        EXPECT_EQ(p.next_seq, 5 * g + 1);
        EXPECT_TRUE(st.slot_empty[1 - g % 2]);
    }
}

TEST(PositionFile, TheHigherGenerationWinsAndATornSlotFallsBackToTheOther) {
    const std::string s4 = *position_slot_bytes(position(4, kSeg1, 100));
    const std::string s5 = *position_slot_bytes(position(5, kSeg1, 200));
    const std::string both = s4 + s5;
    auto st = parse_position_file(both, both.size());
    EXPECT_EQ(st.current, 1);
    EXPECT_EQ(st.slots[1]->current_bytes, 200u);
    // Every byte of slot 1's line changed in turn: slot 1 is damaged (never read wrongly), and the
    // store resumes from slot 0.
    const std::size_t line = s5.find('\n') + 1;
    for (std::size_t i = 0; i < line; ++i) {
        std::string torn = both;
        torn[kPositionSlotBytes + i] = static_cast<char>(torn[kPositionSlotBytes + i] ^ 0x01);
        const auto t = parse_position_file(torn, torn.size());
        EXPECT_FALSE(t.slots[1]) << "byte " << i;
        EXPECT_FALSE(t.slot_empty[1]);
        EXPECT_EQ(t.current, 0) << "byte " << i;
    }
    // A file cut inside slot 1's line (a torn first write of it): slot 1 is damaged or empty, slot
    // 0 rules; cut in the padding after the line, slot 1 is whole.
    for (std::size_t n = kPositionSlotBytes; n < kPositionSlotBytes + line; n += 7) {
        const auto t = parse_position_file(std::string_view(both).substr(0, n), n);
        EXPECT_EQ(t.current, 0) << n;
        EXPECT_EQ(t.file_bytes, n);
    }
    EXPECT_EQ(parse_position_file(std::string_view(both).substr(0, kPositionSlotBytes + line), 0).current, 1);
}

TEST(PositionFile, AnEmptyOrZeroFileWasNeverWritten) {
    const auto none = parse_position_file("", 0);
    EXPECT_EQ(none.current, -1);
    EXPECT_TRUE(none.slot_empty[0] && none.slot_empty[1]);
    const std::string zeros(2 * kPositionSlotBytes, '\0');
    const auto z = parse_position_file(zeros, zeros.size());
    EXPECT_EQ(z.current, -1);
    EXPECT_TRUE(z.slot_empty[0] && z.slot_empty[1]);
    const std::string junk(2 * kPositionSlotBytes, 'j');
    const auto j = parse_position_file(junk, junk.size());
    EXPECT_EQ(j.current, -1);
    EXPECT_FALSE(j.slot_empty[0] || j.slot_empty[1]);
}

}  // namespace
}  // namespace hsmaudit::agent
