// At-least-once through a real ExportRunner to the HEC stand-in (hec_receiver.py), as the RELP
// runner test does with rsyslogd: the receiver killed and restarted while acks arrive out of
// order, acks withheld until the ack timeout, the token refused and then fixed. Every record is
// indexed at least once, the runner's cursor never passes a record the receiver has not reported
// indexed, and duplicates are bounded by what was in flight at each failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "agent/engine/export/runner.h"
#include "exporters/formats/formatter.h"
#include "exporters/hec/hec_exporter.h"
#include "exporters/hec/protocol.h"
#include "tests/integration/exporters/hec/hec_receiver.h"
#include "tests/integration/exporters/relp/synthetic_source.h"

namespace hsmaudit::exporters::hec {
namespace {

using namespace std::chrono_literals;
using testing::hec::HecReceiver;
using testing::hec::HecReceiverOptions;
using testing::hec::Pki;
using testing::relp::SyntheticSource;

class Alerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override {
        std::lock_guard lock(mutex_);
        alerts_.push_back(std::move(a));
    }
    std::vector<agent::Alert> all() {
        std::lock_guard lock(mutex_);
        return alerts_;
    }
    bool has(const std::string& kind) {
        std::lock_guard lock(mutex_);
        return std::any_of(alerts_.begin(), alerts_.end(), [&](const agent::Alert& a) { return a.kind == kind; });
    }

private:
    std::mutex mutex_;
    std::vector<agent::Alert> alerts_;
};

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::unique_ptr<HecExporter> make_exporter(const HecOptions& o) {
    formats::FormatOptions f;
    f.kind = formats::FormatKind::hec;
    auto channel = make_channel_id();
    EXPECT_TRUE(channel);
    return std::make_unique<HecExporter>(o, formats::make_formatter(f), channel ? *channel : "");
}

agent::RunnerOptions runner_options(std::size_t max_in_flight) {
    agent::RunnerOptions ro;
    ro.name = "splunk";
    ro.streams = {true, false, false, false};
    ro.batch = 500;
    ro.backoff_initial = 20ms;
    ro.backoff_max = 200ms;
    ro.idle_wait = 50ms;
    ro.stop_timeout = 3s;
    ro.max_in_flight = max_in_flight;
    return ro;
}

/// True if every sequence 1..through is in `seqs`.
bool covers(const std::vector<std::uint64_t>& seqs, std::uint64_t through, std::uint64_t* first_missing) {
    std::vector<bool> seen(through + 1, false);
    for (auto s : seqs)
        if (s <= through) seen[s] = true;
    for (std::uint64_t s = 1; s <= through; ++s) {
        if (!seen[s]) {
            *first_missing = s;
            return false;
        }
    }
    return true;
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

TEST(HecRunner, KilledAndRestartedWhileAcksComeOutOfOrderLosesNothing) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    constexpr std::uint64_t kRecords = 10'000;
    constexpr int kKills = 5;
    constexpr std::size_t kInFlight = 2'000;

    HecReceiver r(HecReceiverOptions{.mode = "out_of_order", .late_ms = 60});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.batch_events = 100;
    Alerts alerts;
    auto runner = agent::ExportRunner::open(runner_options(kInFlight), make_exporter(o),
                                            std::make_unique<SyntheticSource>(kRecords), alerts, now_ms);
    ASSERT_TRUE(runner) << runner.error().describe();
    (*runner)->start();

    int kills = 0;
    for (int i = 1; i <= kKills; ++i) {
        const std::uint64_t at = kRecords * static_cast<std::uint64_t>(i) / (kKills + 1);
        ASSERT_TRUE(wait_for([&] { return (*runner)->delivered_through(agent::Stream::audit) >= at; }, 60s))
            << "stuck at " << (*runner)->delivered_through(agent::Stream::audit) << "; "
            << (*runner)->stats().last_error;
        const std::uint64_t through = (*runner)->delivered_through(agent::Stream::audit);
        ASSERT_LT(through, kRecords) << "the transfer finished before kill " << i;
        r.kill();
        ++kills;
        ASSERT_TRUE(r.start()) << r.diagnostics();  // first drops a line the kill may have cut short
        // The runner counted [1, through] delivered: the receiver must have reported each indexed.
        std::uint64_t missing = 0;
        ASSERT_TRUE(covers(r.indexed(), through, &missing))
            << "record " << missing << " counted delivered but never reported indexed";
    }
    ASSERT_TRUE(wait_for([&] { return (*runner)->delivered_through(agent::Stream::audit) >= kRecords; }, 60s))
        << (*runner)->stats().last_error;
    (*runner)->stop();
    const auto stats = (*runner)->stats();
    ASSERT_EQ(stats.cursor[0], kRecords) << "last error: " << stats.last_error;
    EXPECT_GE(stats.failures, static_cast<std::uint64_t>(kKills));

    std::uint64_t missing = 0;
    const auto indexed = r.indexed();
    EXPECT_TRUE(covers(indexed, kRecords, &missing)) << "record " << missing << " never indexed";
    const auto received = r.received();
    std::vector<int> seen(kRecords + 1, 0);
    for (auto s : received) {
        ASSERT_GE(s, 1u);
        ASSERT_LE(s, kRecords);
        ++seen[s];
    }
    std::uint64_t duplicates = 0;
    for (std::uint64_t s = 1; s <= kRecords; ++s)
        if (seen[s] > 1) duplicates += static_cast<std::uint64_t>(seen[s] - 1);
    // Each failure resends at most what was in flight.
    EXPECT_LE(duplicates, static_cast<std::uint64_t>(stats.failures) * kInFlight);
    std::cout << "[ info ] " << kRecords << " records, " << kills << " kills, " << stats.failures << " failures, "
              << duplicates << " duplicates, " << stats.resent << " resent\n";
    EXPECT_TRUE(alerts.has("exporter.down"));
    EXPECT_TRUE(alerts.has("exporter.up"));
}

TEST(HecRunner, WithheldAcksAreResentAfterTheAckTimeout) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    constexpr std::uint64_t kRecords = 300;
    HecReceiver r(HecReceiverOptions{.mode = "never"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.ack_timeout = 1s;
    Alerts alerts;
    auto runner = agent::ExportRunner::open(runner_options(10'000), make_exporter(o),
                                            std::make_unique<SyntheticSource>(kRecords), alerts, now_ms);
    ASSERT_TRUE(runner) << runner.error().describe();
    (*runner)->start();
    // Received, never indexed: the cursor stays, and after the ack timeout everything goes again.
    ASSERT_TRUE(wait_for([&] { return r.received().size() >= 2 * kRecords; }, 15s)) << r.received().size();
    EXPECT_EQ((*runner)->delivered_through(agent::Stream::audit), 0u);
    EXPECT_TRUE(alerts.has("exporter.down"));
    const auto down = alerts.all();
    EXPECT_NE(down.front().message.find("not reported indexed"), std::string::npos) << down.front().message;
    // The receiver comes back with acks: all delivered.
    r.kill();
    r.set_mode("normal");
    ASSERT_TRUE(r.start()) << r.diagnostics();
    ASSERT_TRUE(wait_for([&] { return (*runner)->delivered_through(agent::Stream::audit) >= kRecords; }, 15s))
        << (*runner)->stats().last_error;
    (*runner)->stop();
    std::uint64_t missing = 0;
    EXPECT_TRUE(covers(r.indexed(), kRecords, &missing)) << missing;
    EXPECT_TRUE(alerts.has("exporter.up"));
}

TEST(HecRunner, RefusedTokenAlertsAndBlocksUntilFixed) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    constexpr std::uint64_t kRecords = 100;
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    const std::string token = r.dir() + "/exporter-token";
    testing::relp::write_text(token, "revoked-token\n", 0600);
    o.token_file = token;
    Alerts alerts;
    auto runner = agent::ExportRunner::open(runner_options(10'000), make_exporter(o),
                                            std::make_unique<SyntheticSource>(kRecords), alerts, now_ms);
    ASSERT_TRUE(runner) << runner.error().describe();
    (*runner)->start();
    ASSERT_TRUE(wait_for([&] { return alerts.has("exporter.down"); }, 10s));
    const auto down = alerts.all().front();
    EXPECT_NE(down.message.find("destination 'splunk'"), std::string::npos) << down.message;
    EXPECT_NE(down.message.find("token was refused"), std::string::npos) << down.message;
    EXPECT_NE(down.message.find(token), std::string::npos) << down.message;
    EXPECT_EQ(down.message.find("revoked-token"), std::string::npos) << "the token must not appear";
    EXPECT_EQ((*runner)->delivered_through(agent::Stream::audit), 0u);
    EXPECT_TRUE(r.received().empty());
    // The operator fixes the token file: read again at the next connect.
    testing::relp::write_text(token, "5d1a7c52-hec-test-token\n", 0600);
    ASSERT_TRUE(wait_for([&] { return (*runner)->delivered_through(agent::Stream::audit) >= kRecords; }, 15s))
        << (*runner)->stats().last_error;
    (*runner)->stop();
    EXPECT_TRUE(alerts.has("exporter.up"));
}

TEST(HecRunner, BusyServerIsRetriedWithBackOff) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    constexpr std::uint64_t kRecords = 200;
    HecReceiver r(HecReceiverOptions{.busy = 4});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    Alerts alerts;
    auto runner = agent::ExportRunner::open(runner_options(10'000), make_exporter(r.exporter_options()),
                                            std::make_unique<SyntheticSource>(kRecords), alerts, now_ms);
    ASSERT_TRUE(runner) << runner.error().describe();
    (*runner)->start();
    ASSERT_TRUE(wait_for([&] { return (*runner)->delivered_through(agent::Stream::audit) >= kRecords; }, 15s))
        << (*runner)->stats().last_error;
    (*runner)->stop();
    const auto stats = (*runner)->stats();
    EXPECT_EQ(stats.failures, 4u) << "each 503 is one failure, backed off and retried";
    EXPECT_NE(stats.last_error.find("busy"), std::string::npos) << stats.last_error;
    std::uint64_t missing = 0;
    EXPECT_TRUE(covers(r.indexed(), kRecords, &missing)) << missing;
    EXPECT_TRUE(alerts.has("exporter.down"));
    EXPECT_TRUE(alerts.has("exporter.up"));
}

}  // namespace
}  // namespace hsmaudit::exporters::hec
