// hsmaudit tail: the last records of a store and following it through growth, encrypted chunks
// appended while it is read, torn writes, and segment rotation.
#include <gtest/gtest.h>

#include "agent/tools/tail.h"
#include "tools_test_fixture.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;
using testing::StoreFixture;

std::vector<std::uint64_t> seqs(const std::vector<TailRecord>& recs) {
    std::vector<std::uint64_t> out;
    for (const auto& r : recs) out.push_back(r.record.seq);
    return out;
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (auto s = from; s <= to; ++s) out.push_back(s);
    return out;
}

class TailTest : public ::testing::TestWithParam<bool> {
protected:
    StoreFixture f_{GetParam()};
};

TEST_P(TailTest, LastRecordsComeFromTheNewestSegmentsInOrder) {
    f_.produce(30);
    f_.rotate();
    f_.produce(5);
    StoreTail tail(f_.audit_dir(), &f_.key());
    auto recs = tail.last(10);
    ASSERT_TRUE(recs.has_value()) << recs.error().message;
    EXPECT_EQ(seqs(*recs), range(26, 35));
    // The first five come from the sealed segment, the rest from the open one.
    EXPECT_EQ((*recs)[0].segment, "hsm_150123_00000000.log");
    EXPECT_EQ((*recs)[9].segment, "hsm_150123_00000001.log");
    EXPECT_FALSE((*recs)[0].record.event.empty());
    EXPECT_EQ((*recs)[0].mac_hex.size(), 64u);
    auto none = tail.poll();
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(none->empty());
    EXPECT_TRUE(tail.take_warnings().empty());
}

TEST_P(TailTest, MoreRecordsThanStoredGivesEverything) {
    f_.produce(3);
    StoreTail tail(f_.audit_dir(), &f_.key());
    auto recs = tail.last(100);
    ASSERT_TRUE(recs.has_value());
    EXPECT_EQ(seqs(*recs), range(1, 3));
}

TEST_P(TailTest, FollowsGrowthAndRotationShowingEachRecordOnce) {
    f_.produce(4);
    StoreTail tail(f_.audit_dir(), &f_.key());
    auto first = tail.last(0);
    ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(first->empty());

    f_.produce(5);  // one more chunk (encrypted) or more lines (plain) in the open segment
    auto a = tail.poll();
    ASSERT_TRUE(a.has_value()) << a.error().message;
    EXPECT_EQ(seqs(*a), range(5, 9));

    f_.produce(3);
    auto b = tail.poll();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(seqs(*b), range(10, 12));

    // Sealed and moved to ready_for_archive/, the next segment opened, and two rotations more
    // between two polls.
    f_.produce(2);
    f_.rotate();
    f_.produce(3);
    f_.rotate();
    f_.rotate();
    f_.produce(4);
    auto c = tail.poll();
    ASSERT_TRUE(c.has_value()) << c.error().message;
    EXPECT_EQ(seqs(*c), range(13, 21));
    EXPECT_EQ(c->back().segment, "hsm_150123_00000003.log");

    auto d = tail.poll();
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->empty());
    EXPECT_TRUE(tail.take_warnings().empty());
}

TEST_P(TailTest, FollowingFromAnEmptyStoreStartsAtTheFirstRecord) {
    StoreTail tail(f_.audit_dir(), &f_.key());
    f_.store();  // creates the directories, no segment yet
    auto none = tail.last(10);
    ASSERT_TRUE(none.has_value()) << none.error().message;
    EXPECT_TRUE(none->empty());
    f_.produce(3);
    auto a = tail.poll();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(seqs(*a), range(1, 3));
}

TEST_P(TailTest, ATornWriteIsWaitedForNotShownNorReportedAsDamage) {
    f_.produce(3);
    StoreTail tail(f_.audit_dir(), &f_.key());
    ASSERT_TRUE(tail.last(10).has_value());
    const std::string path = f_.current_path();
    const std::string before = StoreFixture::slurp(path);
    // The agent is in the middle of writing: half a chunk (encrypted) or half a line (plain).
    f_.produce(2);
    const std::string after = StoreFixture::slurp(path);
    const std::size_t half = before.size() + (after.size() - before.size()) / 2;
    StoreFixture::spit(path, after.substr(0, half));
    auto a = tail.poll();
    ASSERT_TRUE(a.has_value());
    if (GetParam()) {
        EXPECT_TRUE(a->empty());  // a chunk is all or nothing
    } else {
        EXPECT_LE(a->size(), 1u);  // at most the first, complete, line
    }
    EXPECT_TRUE(tail.take_warnings().empty());
    StoreFixture::spit(path, after);  // the write completes
    auto b = tail.poll();
    ASSERT_TRUE(b.has_value());
    std::vector<std::uint64_t> all = seqs(*a);
    for (auto s : seqs(*b)) all.push_back(s);
    EXPECT_EQ(all, range(4, 5));
}

TEST_P(TailTest, ASegmentCutBackByRecoveryIsReadAgainWithoutRepeats) {
    f_.produce(5);
    const fs::path position = fs::path(f_.audit_dir()) / "position";
    const std::string saved = StoreFixture::slurp(position);
    f_.produce(3);
    StoreTail tail(f_.audit_dir(), &f_.key());
    auto a = tail.last(100);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(seqs(*a), range(1, 8));
    // The agent dies before its position reached the disk: recovery cuts records 6..8 and the
    // drain stores them again from the module's ring, then more.
    f_.close();
    StoreFixture::spit(position, saved);
    ASSERT_NE(f_.store().recovery_summary().find("uncommitted bytes"), std::string::npos);
    auto b = tail.poll();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(b->empty());
    f_.produce(2);
    auto c = tail.poll();
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(seqs(*c), range(9, 10));
}

TEST(TailFormat, TextShowsTheFieldsEscapedAndJsonUnescaped) {
    TailRecord r;
    r.record.seq = 42;
    r.record.time_ms = 1'795'500'000'030;
    r.record.serial = "150123";
    r.record.partition = 3;
    r.record.role = "CU";
    r.record.session = 7;
    r.record.event = "LUNA_SIGN";
    r.record.event_class = "usage";
    r.record.result = 0xA0;
    r.record.details = {{"label", "a b\n\x1b[31mred"}};
    r.segment = "hsm_150123_00000000.log";
    const std::string text = format_record_text(r);
    EXPECT_NE(text.find("#42"), std::string::npos) << text;
    EXPECT_NE(text.find("part 3"), std::string::npos);
    EXPECT_NE(text.find("CU"), std::string::npos);
    EXPECT_NE(text.find("sess 7"), std::string::npos);
    EXPECT_NE(text.find("LUNA_SIGN  usage  0x000000a0"), std::string::npos) << text;
    EXPECT_NE(text.find("label=a\\sb\\n\\x1b[31mred"), std::string::npos) << text;
    for (char c : text) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << "control byte in " << text;
    const auto j = format_record_json(r);
    EXPECT_EQ(j["seq"], 42);
    EXPECT_EQ(j["result"], "0x000000a0");
    EXPECT_EQ(j["ok"], false);
    EXPECT_EQ(j["details"]["label"], "a b\n\x1b[31mred");
    EXPECT_EQ(j["time"], mac::format_time(r.record.time_ms));
    r.record.result = 0;
    EXPECT_NE(format_record_text(r).find("usage  ok"), std::string::npos);
}

TEST(TailErrors, AnEncryptedStoreWithoutAKeyIsAnErrorNamingTheFile) {
    StoreFixture f(true);
    f.produce(2);
    StoreTail tail(f.audit_dir(), nullptr);
    auto r = tail.last(10);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("hsm_150123_00000000.log"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("encrypted"), std::string::npos);
}

TEST(TailErrors, AMissingStoreIsAnError) {
    StoreTail tail("/nonexistent/hsmaudit/audit", nullptr);
    auto r = tail.last(10);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("/nonexistent/hsmaudit/audit"), std::string::npos);
}

TEST(TailErrors, DamageIsReportedAndRecordsBeforeItAreShown) {
    StoreFixture f(true);
    f.produce(3);
    f.produce(3);
    const std::string path = f.current_path();
    std::string data = StoreFixture::slurp(path);
    data[data.size() - 5] ^= 0x01;  // the last chunk's tag
    StoreFixture::spit(path, data);
    StoreTail tail(f.audit_dir(), &f.key());
    auto r = tail.last(10);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(seqs(*r), range(1, 3));
    const auto w = tail.take_warnings();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_NE(w[0].find("fails authentication"), std::string::npos) << w[0];
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, TailTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "encrypted" : "plain"; });

}  // namespace
}  // namespace hsmaudit::agent::tools
