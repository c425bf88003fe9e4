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

}  // namespace
}  // namespace hsmaudit::agent
