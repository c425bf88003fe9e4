// agent::detail::run_guarded, the last-resort catch of the agent's and the exporters' threads
// (issue 13, item 5): an exception is swallowed, logged and alerted critical; nothing escapes, even
// from a thread body (where it would call std::terminate).
#include "agent/api/thread_guard.h"

#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hsmaudit::agent {
namespace {

class CollectingAlerts final : public AlertSink {
public:
    void alert(Alert&& a) override {
        std::lock_guard lock(mutex_);
        alerts_.push_back(std::move(a));
    }
    std::vector<Alert> alerts() {
        std::lock_guard lock(mutex_);
        return alerts_;
    }

private:
    std::mutex mutex_;
    std::vector<Alert> alerts_;
};

class ThrowingAlerts final : public AlertSink {
public:
    void alert(Alert&& /*a*/) override { throw std::runtime_error("alert sink down"); }
};

TEST(ThreadGuard, ABodyThatReturnsRaisesNothing) {
    CollectingAlerts alerts;
    int ran = 0;
    EXPECT_TRUE(detail::run_guarded(
        "worker", [&] { ++ran; }, &alerts));
    EXPECT_EQ(ran, 1);
    EXPECT_TRUE(alerts.alerts().empty());
}

TEST(ThreadGuard, AnExceptionOnAThreadIsAlertedCriticalAndEndsOnlyThatThread) {
    CollectingAlerts alerts;
    bool ok = true;
    std::thread t([&] {
        ok = detail::run_guarded(
            "exporter 'siem'", [] { throw std::runtime_error("boom"); }, &alerts);
    });
    t.join();  // without the guard, std::terminate would have ended this test binary
    EXPECT_FALSE(ok);
    const auto got = alerts.alerts();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, detail::kThreadFailedAlert);
    EXPECT_EQ(got[0].severity, Severity::critical);
    EXPECT_NE(got[0].message.find("exporter 'siem'"), std::string::npos) << got[0].message;
    EXPECT_NE(got[0].message.find("boom"), std::string::npos) << got[0].message;
    EXPECT_GT(got[0].time_ms, 0);
}

TEST(ThreadGuard, NonStandardExceptionsAndAFailingAlertSinkAreSwallowed) {
    ThrowingAlerts alerts;
    EXPECT_FALSE(detail::run_guarded(
        "worker", [] { throw 42; }, &alerts));
    EXPECT_FALSE(detail::run_guarded(
        "worker", [] { throw std::bad_alloc(); }, nullptr));
}

}  // namespace
}  // namespace hsmaudit::agent
