// Issue 17: the spool's memory is bounded in bytes, not only in lines. At the bound it is "full"
// (has_room() false, room_fd() unreadable) until it has drained to 3/4 of it; it takes what a
// source already read beyond the bound and drops (counted) only at twice it; lines it holds while
// the disk fails count until they are durable, so a failing disk keeps the sources held back; the
// writer is woken before its interval by a queue at half the bound; stop never waits on a push.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/engine/store/event_spool.h"
#include "tests/support/faulty_file_system.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hsmaudit::testing::FaultyFileSystem;

std::int64_t fixed_now() {
    return 1'795'500'000'000;
}

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

constexpr std::uint64_t kBound = 1 << 20;
const std::string kPayload(std::size_t{16} * 1024 - EventSpool::kLineOverhead, 'p');  // costs 16 KiB: 64 fill the bound

class SpoolQueueTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-spoolq-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::unique_ptr<EventSpool> open(base::FileSystem* fs = nullptr, std::chrono::milliseconds interval = 100ms) {
        SpoolOptions o;
        o.dir = dir_.string();
        o.queue_max_bytes = kBound;
        o.flush_interval = interval;
        if (fs != nullptr) o.fs = fs;
        auto s = EventSpool::open(o, fixed_now);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return s ? std::move(*s) : nullptr;
    }
    fs::path dir_;
};

TEST_F(SpoolQueueTest, FullAtTheByteBoundRoomAgainWhenDurable) {
    auto s = open();
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->has_room());
    EXPECT_TRUE(readable(s->room_fd()));
    for (int i = 0; i < 63; ++i) ASSERT_TRUE(s->push(kPayload));
    EXPECT_TRUE(s->has_room());
    ASSERT_TRUE(s->push(kPayload));  // the 64th reaches the bound
    EXPECT_FALSE(s->has_room());
    EXPECT_FALSE(readable(s->room_fd())) << "a held-back source sleeps in poll";
    EXPECT_TRUE(s->stats().full);
    EXPECT_EQ(s->stats().held_bytes, kBound);
    // Over the bound: still taken (the frames of a read in progress), up to twice the bound.
    int taken = 0;
    while (s->push(kPayload)) ++taken;
    EXPECT_EQ(taken, 64);
    EXPECT_EQ(s->stats().dropped, 1u);
    ASSERT_TRUE(s->flush());
    EXPECT_TRUE(s->has_room());
    EXPECT_TRUE(readable(s->room_fd()));
    const auto st = s->stats();
    EXPECT_EQ(st.held_bytes, 0u);
    EXPECT_EQ(st.appended, 128u);
    EXPECT_EQ(st.full_spells, 1u);
    EXPECT_FALSE(st.full);
}

TEST_F(SpoolQueueTest, ALineCountBoundStillHolds) {
    SpoolOptions o;
    o.dir = dir_.string();
    o.queue_max = 3;
    auto s = EventSpool::open(o, fixed_now);
    ASSERT_TRUE(s);
    int accepted = 0;
    for (int i = 0; i < 5; ++i) accepted += (*s)->push("x") ? 1 : 0;
    EXPECT_EQ(accepted, 3);
    EXPECT_EQ((*s)->stats().dropped, 2u);
}

TEST_F(SpoolQueueTest, AFailingDiskKeepsItFullUntilTheLinesAreDurable) {
    FaultyFileSystem ffs;
    auto s = open(&ffs);
    ASSERT_TRUE(s);
    ffs.set_full(true);
    for (int i = 0; i < 64; ++i) ASSERT_TRUE(s->push(kPayload));
    EXPECT_FALSE(s->flush());
    // Taken from the queue but not durable: still held, still full.
    EXPECT_FALSE(s->has_room());
    EXPECT_EQ(s->stats().held_bytes, kBound);
    ffs.set_full(false);
    ASSERT_TRUE(s->flush());
    EXPECT_TRUE(s->has_room());
    EXPECT_EQ(s->stats().appended, 64u);
    auto c = check_spool(dir_.string());
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->faults.empty());
    EXPECT_EQ(c->lines, 64u);
}

TEST_F(SpoolQueueTest, HalfTheBoundWakesTheWriterBeforeItsInterval) {
    auto s = open(nullptr, std::chrono::hours(1));
    ASSERT_TRUE(s);
    s->start();
    for (int i = 0; i < 31; ++i) ASSERT_TRUE(s->push(kPayload));
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(s->stats().appended, 0u) << "below half the bound the writer keeps its interval";
    ASSERT_TRUE(s->push(kPayload));  // half the bound
    EXPECT_TRUE(eventually([&] { return s->stats().appended == 32; }));
    const auto t0 = std::chrono::steady_clock::now();
    s->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(SpoolQueueTest, ABackingOffWriterIsNotWokenByAFullQueue) {
    // While the disk fails the queue is full all the time: waking the writer for it would spin.
    FaultyFileSystem ffs;
    auto s = open(&ffs, 50ms);
    ASSERT_TRUE(s);
    ffs.set_full(true);
    s->start();
    for (int i = 0; i < 100; ++i) s->push(kPayload);
    std::this_thread::sleep_for(1s);
    // 50 ms doubling (to retry_max 5 s): about 4 attempts in a second, not thousands.
    EXPECT_LT(s->stats().write_errors, 20u);
    ffs.set_full(false);
    EXPECT_TRUE(eventually([&] { return s->has_room(); }));
    s->stop();
    EXPECT_EQ(s->stats().appended + s->stats().dropped, 100u);
}

TEST_F(SpoolQueueTest, ZeroBoundsAreRefused) {
    SpoolOptions o;
    o.dir = dir_.string();
    o.queue_max_bytes = 0;
    EXPECT_FALSE(EventSpool::open(o, fixed_now));
}

}  // namespace
}  // namespace hsmaudit::agent
