// The export runner's wake-up (agent/api/doorbell.h): a runner whose idle wait is an hour still
// delivers a new stored event as soon as the store's commit rings, and an acknowledgement as soon
// as an exporter that rings reports it; such an exporter is never asked to wait. No sleeps: each
// test would hang for its idle wait (and fail at the deadline) without the wake-up.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "agent/api/doorbell.h"
#include "agent/engine/export/runner.h"
#include "fake_module.h"

namespace hsmaudit::agent {
namespace {

using namespace std::chrono_literals;

constexpr auto kIdleWait = std::chrono::hours(1);  // the runner never looks again on its own
constexpr auto kDeadline = 20s;                    // a hung test fails here instead of hanging

/// Polls `pred` (no fixed sleep: yields) until it holds or the deadline passes.
template <class Pred>
bool eventually(Pred pred) {
    const auto end = std::chrono::steady_clock::now() + kDeadline;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::yield();
    }
    return true;
}

/// Audit events appended by the test thread, read by the runner's thread.
class MemSource final : public EventSource {
public:
    void append(std::uint64_t seq) {
        Event e;
        e.position = seq;
        e.record.seq = seq;
        e.event_id = "150123-1-" + std::to_string(seq);
        e.time_ms = 1'795'500'000'000;
        const std::lock_guard lock(mutex_);
        events_.push_back(std::move(e));
    }
    Result<std::size_t> read(Stream stream, std::uint64_t after, std::size_t max, std::vector<Event>& out) override {
        const std::lock_guard lock(mutex_);
        std::size_t n = 0;
        if (stream != Stream::audit) return n;
        for (const auto& e : events_)
            if (e.position > after && n < max) {
                out.push_back(e);
                ++n;
            }
        return n;
    }
    Result<std::uint64_t> newest(Stream) override {
        const std::lock_guard lock(mutex_);
        return events_.empty() ? 0 : events_.back().position;
    }
    Result<std::uint64_t> before_oldest(Stream) override { return std::uint64_t{0}; }

private:
    std::mutex mutex_;
    std::vector<Event> events_;
};

/// Acknowledges what it was sent when the test says so; rings the runner's doorbell if `rings`.
class TestExporter final : public Exporter {
public:
    explicit TestExporter(bool rings) : rings_(rings) {}
    AckSignal attach_doorbell(Doorbell* d) override {
        doorbell_ = rings_ ? d : nullptr;
        return rings_ ? AckSignal::doorbell : AckSignal::wait_inside;
    }
    Status connect() override { return {}; }
    Status send(std::span<const Event> events) override {
        sent_ += events.size();
        return {};
    }
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override {
        if (wait.count() > 0) waited_ = true;
        return std::min<std::uint64_t>(acked_.load(), sent_.load());
    }
    void disconnect() override {}
    [[nodiscard]] TransportStats stats() const override { return {}; }

    /// The receiver acknowledges everything sent so far (the transport's thread, as librdkafka's).
    void acknowledge_all() {
        acked_ = sent_.load();
        if (doorbell_) doorbell_->ring();
    }
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> acked_{~std::uint64_t{0}};  // everything, unless a test holds it
    std::atomic<bool> waited_{false};

private:
    bool rings_;
    Doorbell* doorbell_ = nullptr;
};

class RunnerWakeup : public ::testing::Test {
protected:
    std::unique_ptr<ExportRunner> open(bool exporter_rings) {
        RunnerOptions o;
        o.name = "wakeup";
        o.streams = {true, false, false, false};
        o.idle_wait = std::chrono::duration_cast<std::chrono::milliseconds>(kIdleWait);
        o.store_appended = &store_appended_;
        auto exporter = std::make_unique<TestExporter>(exporter_rings);
        exporter_ = exporter.get();
        auto source = std::make_unique<MemSource>();
        source_ = source.get();
        auto r = ExportRunner::open(std::move(o), std::move(exporter), std::move(source), alerts_,
                                    [this] { return clock_.fetch_add(1) + 1; });  // injected clock
        EXPECT_TRUE(r.has_value());
        return r ? std::move(*r) : nullptr;
    }
    /// Started, connected, and past its first (empty) read: from now on it only waits.
    void start_idle(ExportRunner& r) {
        r.start();
        ASSERT_TRUE(eventually([&] { return r.stats().state == RunnerState::up; }));
    }
    DoorbellSet store_appended_;
    testing::AlertList alerts_;
    std::atomic<std::int64_t> clock_{1'795'500'000'000};
    TestExporter* exporter_ = nullptr;
    MemSource* source_ = nullptr;
};

TEST_F(RunnerWakeup, ACommitOfTheStoreWakesAnIdleRunnerAtOnce) {
    auto r = open(false);
    ASSERT_NE(r, nullptr);
    start_idle(*r);
    for (std::uint64_t batch = 0; batch < 3; ++batch) {
        for (std::uint64_t i = 1; i <= 100; ++i) source_->append(batch * 100 + i);
        store_appended_.ring();  // once per commit, not per record
        ASSERT_TRUE(eventually([&] { return r->delivered_through(Stream::audit) == (batch + 1) * 100; }))
            << "batch " << batch << ": delivered through " << r->delivered_through(Stream::audit);
    }
    r->stop();
    EXPECT_EQ(r->stats().delivered[0], 300U);
}

TEST_F(RunnerWakeup, AnExporterThatRingsIsNeverAskedToWaitAndItsAcknowledgementsWakeTheRunner) {
    auto r = open(true);
    ASSERT_NE(r, nullptr);
    exporter_->acked_ = 0;  // the receiver holds its acknowledgements
    start_idle(*r);
    for (std::uint64_t i = 1; i <= 10; ++i) source_->append(i);
    store_appended_.ring();
    ASSERT_TRUE(eventually([&] { return exporter_->sent_.load() == 10; }));
    EXPECT_EQ(r->delivered_through(Stream::audit), 0U);
    exporter_->acknowledge_all();  // from the transport: rings the runner's own doorbell
    ASSERT_TRUE(eventually([&] { return r->delivered_through(Stream::audit) == 10; }));
    EXPECT_FALSE(exporter_->waited_.load()) << "the runner waited inside acknowledged()";
    r->stop();  // at stop it may wait for acknowledgements: nothing is outstanding here
}

TEST_F(RunnerWakeup, AStoppedRunnerNoLongerListensToTheStore) {
    auto r = open(false);
    ASSERT_NE(r, nullptr);
    start_idle(*r);
    r->stop();
    r.reset();
    store_appended_.ring();  // would touch the destroyed runner's doorbell (ASan) if still listed
}

TEST(Doorbell, ARingBetweenLookingAndWaitingIsNotLost) {
    Doorbell bell;
    const std::uint64_t seen = bell.generation();
    bell.ring();  // after the look, before the wait
    const std::stop_source stop;
    EXPECT_TRUE(bell.wait(seen, std::chrono::hours(1), stop.get_token()));
}

TEST(Doorbell, RingsWithoutAWaiterCostNoNotification) {
    Doorbell bell;
    for (int i = 0; i < 10'000; ++i) bell.ring();
    EXPECT_EQ(bell.notifications(), 0U);
    EXPECT_EQ(bell.generation(), 10'000U);
}

TEST(Doorbell, ARingFromAnotherThreadWakesTheWaiterAndStopEndsTheWait) {
    Doorbell bell;
    std::atomic<bool> woke{false};
    std::jthread waiter([&](const std::stop_token& st) {
        const std::uint64_t seen = bell.generation();
        woke = bell.wait(seen, std::chrono::hours(1), st);
        (void)bell.wait(bell.generation(), std::chrono::hours(1), st);  // ended by the stop below
    });
    ASSERT_TRUE(eventually([&] {
        bell.ring();
        return woke.load();
    }));
    waiter.request_stop();
    waiter.join();  // returns only because the stop ended the hour-long wait
}

}  // namespace
}  // namespace hsmaudit::agent
