#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/engine/store/event_spool.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

std::int64_t fixed_now() {
    return 1'795'500'000'000;
}

class SpoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-spool-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::unique_ptr<EventSpool> open(std::uint64_t segment_bytes = 1 << 20, std::uint64_t quota = 1 << 30) {
        SpoolOptions o;
        o.dir = dir_.string();
        o.segment_max_bytes = segment_bytes;
        o.quota_bytes = quota;
        o.queue_max = 4;
        auto s = EventSpool::open(o, fixed_now);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return s ? std::move(*s) : nullptr;
    }
    fs::path dir_;
};

TEST_F(SpoolTest, LinesAreNumberedHashChainedAndContinueAcrossRestarts) {
    {
        auto s = open();
        for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->push("{\"msg\":\"line " + std::to_string(i) + "\"}"));
        ASSERT_TRUE(s->flush().has_value());
    }
    {
        auto s = open();
        EXPECT_EQ(s->stats().next_line, 4u);
        ASSERT_TRUE(s->push("{\"msg\":\"after restart\"}"));
        ASSERT_TRUE(s->flush().has_value());
    }
    auto c = check_spool(dir_.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ(c->lines, 4u);
    EXPECT_EQ(c->first_line, 1u);
    EXPECT_EQ(c->last_line, 4u);
}

TEST_F(SpoolTest, OnDurableIsCalledOncePerFlushThatMadeLinesDurableAndOnlyThen) {
    SpoolOptions o;
    o.dir = dir_.string();
    int calls = 0;
    std::uint64_t durable_at_call = 0;
    EventSpool* self = nullptr;
    o.on_durable = [&] {
        ++calls;
        durable_at_call = self->stats().appended;  // the lines are durable when it is called
    };
    auto s = EventSpool::open(o, fixed_now);
    ASSERT_TRUE(s.has_value());
    self = s->get();
    ASSERT_TRUE((*s)->flush().has_value());
    EXPECT_EQ(calls, 0) << "a flush with nothing to write wakes nobody";
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*s)->push("{\"msg\":\"line " + std::to_string(i) + "\"}"));
    ASSERT_TRUE((*s)->flush().has_value());
    EXPECT_EQ(calls, 1) << "once per flush, not once per line";
    EXPECT_EQ(durable_at_call, 3u);
    ASSERT_TRUE((*s)->flush().has_value());
    EXPECT_EQ(calls, 1);
}

TEST_F(SpoolTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
    auto s = open();
    int accepted = 0;
    for (int i = 0; i < 10; ++i) accepted += s->push("x") ? 1 : 0;
    EXPECT_EQ(accepted, 4);
    EXPECT_EQ(s->stats().dropped, 6u);
}

TEST_F(SpoolTest, AnEditedOrDeletedLineBreaksTheHashChain) {
    {
        auto s = open();
        for (int i = 0; i < 5; ++i) {
            ASSERT_TRUE(s->push("{\"n\":" + std::to_string(i) + "}")) << i;
            ASSERT_TRUE(s->flush().has_value());
        }
    }
    const fs::path file = *fs::directory_iterator(dir_);
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    in.close();
    std::string edited = text;
    edited[edited.find("{\"n\":2}") + 5] = '7';
    std::ofstream(file, std::ios::trunc) << edited;
    auto c = check_spool(dir_.string());
    ASSERT_TRUE(c.has_value());
    ASSERT_EQ(c->faults.size(), 1u);
    EXPECT_NE(c->faults[0].find(":4: hash chain broken"), std::string::npos) << c->faults[0];

    std::string deleted = text;
    const auto at = deleted.find("\n3 ");
    deleted.erase(at + 1, deleted.find('\n', at + 1) - at);
    std::ofstream(file, std::ios::trunc) << deleted;
    c = check_spool(dir_.string());
    ASSERT_TRUE(c.has_value());
    ASSERT_FALSE(c->faults.empty());
    EXPECT_NE(c->faults[0].find("line 4 where 3 was expected"), std::string::npos) << c->faults[0];
}

TEST_F(SpoolTest, ATornTailIsCutAtRestart) {
    {
        auto s = open();
        ASSERT_TRUE(s->push("{\"a\":1}"));
        ASSERT_TRUE(s->flush().has_value());
    }
    const fs::path file = *fs::directory_iterator(dir_);
    std::ofstream(file, std::ios::app) << "2 2026-11-24T06:00:00.000Z {\"torn";
    {
        auto s = open();
        ASSERT_TRUE(s->push("{\"b\":2}"));
        ASSERT_TRUE(s->flush().has_value());
    }
    auto c = check_spool(dir_.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ(c->lines, 2u);
}

TEST_F(SpoolTest, TheQuotaDeletesTheOldestSegmentsFirstAndTheRestStillChecks) {
    auto s = open(/*segment_bytes=*/300, /*quota=*/1000);
    for (int round = 0; round < 20; ++round) {
        ASSERT_TRUE(s->push("{\"msg\":\"appliance line number " + std::to_string(round) + "\"}"));
        ASSERT_TRUE(s->flush().has_value());
    }
    EXPECT_GT(s->stats().deleted_segments, 0u);
    std::uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_)) total += fs::file_size(e.path());
    EXPECT_LE(total, 1000u + 300u);
    auto c = check_spool(dir_.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_GT(c->first_line, 1u);  // the oldest lines are gone, as on the appliance
    EXPECT_EQ(c->last_line, 20u);
}

// ---- The spool's format, owned by event_spool.h (the writer, check_spool and the exporters'
// reader call these).

TEST(SpoolFormat, FileNamesRoundTripAndForeignNamesAreRejected) {
    for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0xabcdef}, UINT64_MAX}) {
        const std::string name = spool_file_name(first);
        EXPECT_EQ(name.size(), 26u) << name;
        EXPECT_EQ(parse_spool_file_name(name), first) << name;
    }
    EXPECT_EQ(spool_file_name(13), "spool-000000000000000d.log");
    // Name order is line order (fixed width), which the readers rely on.
    EXPECT_LT(spool_file_name(0xf), spool_file_name(0x10));
    for (const char* bad : {"spool-000000000000000D.log", "spool-00000000000000d.log", "spool-0000000000000000d.log",
                            "spool-000000000000000g.log", "spool-000000000000000d.txt", "spool-000000000000000d.log.1",
                            "xpool-000000000000000d.log", "hsm_150123_00000001.log", "spool-.log", "",
                            "spool-+00000000000000d.log", "spool- 00000000000000d.log"})
        EXPECT_FALSE(parse_spool_file_name(bad)) << bad;
}

TEST(SpoolFormat, HeaderLinesRoundTripAndDamagedOnesAreRejected) {
    mac::Bytes32 prev{};
    prev.fill(0x5a);
    const std::string line = spool_header_line("syslog", 42, prev);
    ASSERT_TRUE(line.ends_with("\n"));
    const std::string_view text(line.data(), line.size() - 1);
    EXPECT_TRUE(is_spool_header(text));
    auto h = parse_spool_header(text);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->first_line, 42u);
    EXPECT_EQ(h->prev, prev);
    for (std::size_t n = 0; n + 1 < text.size(); ++n) EXPECT_FALSE(parse_spool_header(text.substr(0, n))) << n;
    EXPECT_FALSE(parse_spool_header("@spool v=2 name=syslog first=1 prev=" + std::string(64, '0')));
    EXPECT_FALSE(is_spool_header("1 2026-01-01T00:00:00.000Z {} h=00"));
}

TEST(SpoolFormat, LinesSplitIntoTheirFields) {
    const std::string h(64, 'a');
    const std::string line = "7 2026-01-02T03:04:05.678Z {\"msg\":\"a h=b\"} h=" + h;  // the views point into it
    auto v = parse_spool_line(line);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->number, 7u);
    EXPECT_EQ(v->time, "2026-01-02T03:04:05.678Z");
    EXPECT_EQ(v->payload, "{\"msg\":\"a h=b\"}");
    EXPECT_EQ(v->hashed, "7 2026-01-02T03:04:05.678Z {\"msg\":\"a h=b\"}");
    ASSERT_TRUE(v->h.has_value());
    EXPECT_EQ((*v->h)[0], 0xaa);
    // Lenient for the reader: no hash, or a damaged one, still splits; no number does not.
    auto no_hash = parse_spool_line("8 2026-01-02T03:04:05.678Z {}");
    ASSERT_TRUE(no_hash.has_value());
    EXPECT_EQ(no_hash->payload, "{}");
    EXPECT_FALSE(no_hash->h);
    auto bad_hash = parse_spool_line("9 T {} h=zz");
    ASSERT_TRUE(bad_hash.has_value());
    EXPECT_EQ(bad_hash->payload, "{}");
    EXPECT_FALSE(bad_hash->h);
    EXPECT_FALSE(parse_spool_line("x 2026 {} h=" + h));
    EXPECT_FALSE(parse_spool_line("12"));
    EXPECT_FALSE(parse_spool_line(""));
}

TEST_F(SpoolTest, FilesWhoseNamesAreNotSpoolNamesAreLeftAlone) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "spool-notes.log") << "not a spool file\n";
    auto s = open();
    ASSERT_TRUE(s->push("{\"msg\":\"one\"}"));
    ASSERT_TRUE(s->flush().has_value());
    s->stop();
    auto check = check_spool(dir_.string());
    ASSERT_TRUE(check.has_value());
    EXPECT_TRUE(check->faults.empty()) << check->faults.front();
    EXPECT_EQ(check->segments, 1u);
    EXPECT_TRUE(fs::exists(dir_ / "spool-notes.log"));
}

}  // namespace
}  // namespace hsmaudit::agent
