// At-least-once through a real ExportRunner: 100,000 audit records to rsyslogd over RELP/TLS while
// rsyslogd is killed (SIGKILL) and restarted 10 times. Every record must arrive, duplicates must be
// identifiable by event id and bounded by the window per failure.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "agent/engine/export/runner.h"
#include "exporters/formats/formatter.h"
#include "exporters/relp/relp_exporter.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"
#include "tests/integration/exporters/relp/synthetic_source.h"

namespace hsmaudit::exporters::relp {
namespace {

using namespace std::chrono_literals;
using testing::relp::Pki;
using testing::relp::received_seqs;
using testing::relp::Rsyslog;
using testing::relp::SyntheticSource;

class Alerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override {
        std::lock_guard lock(mutex_);
        kinds_.push_back(a.kind);
    }
    std::vector<std::string> kinds() {
        std::lock_guard lock(mutex_);
        return kinds_;
    }

private:
    std::mutex mutex_;
    std::vector<std::string> kinds_;
};

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST(RelpRunner, KilledAndRestartedTenTimesLosesNothing) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    constexpr std::uint64_t kRecords = 100'000;
    constexpr int kKills = 10;
    constexpr int kWindow = 128;

    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();

    RelpOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(r.port());
    o.ca = Pki::get().ca;
    o.cert = Pki::get().client_cert;
    o.key = Pki::get().client_key;
    o.permitted_peers = {"server.test"};
    o.window = kWindow;
    o.timeout = 2s;
    o.connect_timeout = 1s;
    o.confirm_interval = 200ms;
    auto exporter = std::make_unique<RelpExporter>(o, formats::make_formatter(formats::FormatOptions{}));

    agent::RunnerOptions ro;
    ro.name = "siem";
    ro.streams = {true, false, false, false};
    ro.batch = 512;
    ro.backoff_initial = 20ms;
    ro.backoff_max = 200ms;
    ro.idle_wait = 50ms;
    ro.stop_timeout = 5s;
    Alerts alerts;
    auto runner =
        agent::ExportRunner::open(ro, std::move(exporter), std::make_unique<SyntheticSource>(kRecords), alerts, now_ms);
    ASSERT_TRUE(runner) << runner.error().describe();
    (*runner)->start();

    // Kill at ten points spread over the transfer, each while records are still outstanding.
    const auto deadline = std::chrono::steady_clock::now() + 100s;
    int kills = 0;
    for (int i = 1; i <= kKills; ++i) {
        const std::uint64_t at = kRecords * static_cast<std::uint64_t>(i) / (kKills + 1);
        while ((*runner)->delivered_through(agent::Stream::audit) < at && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(1ms);
        ASSERT_LT((*runner)->delivered_through(agent::Stream::audit), kRecords)
            << "the transfer finished before kill " << i;
        r.kill();
        ++kills;
        std::this_thread::sleep_for(50ms);
        ASSERT_TRUE(r.start()) << r.diagnostics();
    }
    while ((*runner)->delivered_through(agent::Stream::audit) < kRecords && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    (*runner)->stop();
    const auto stats = (*runner)->stats();
    ASSERT_EQ(stats.cursor[0], kRecords) << "last error: " << stats.last_error;
    EXPECT_EQ(kills, kKills);
    EXPECT_GE(stats.failures, static_cast<std::uint64_t>(kKills)) << "every kill is a failure the runner saw";

    // Every record at least once; duplicates identified by event id and bounded by the window.
    const auto seqs = received_seqs(r.received());
    std::vector<int> seen(kRecords + 1, 0);
    for (auto s : seqs) {
        ASSERT_GE(s, 1u);
        ASSERT_LE(s, kRecords);
        ++seen[s];
    }
    std::uint64_t missing = 0;
    std::uint64_t duplicates = 0;
    for (std::uint64_t s = 1; s <= kRecords; ++s) {
        if (seen[s] == 0) ++missing;
        if (seen[s] > 1) duplicates += static_cast<std::uint64_t>(seen[s] - 1);
    }
    EXPECT_EQ(missing, 0u) << "records lost";
    EXPECT_EQ(seqs.size(), kRecords + duplicates);
    // Each kill costs at most the unconfirmed tail of the session it broke: one window. (The failed
    // reconnects while rsyslogd restarts deliver nothing, so they add no duplicates.)
    EXPECT_LE(duplicates, static_cast<std::uint64_t>(kills) * kWindow)
        << "failures " << stats.failures << ", duplicates " << duplicates;
    std::cout << "[ info ] " << kRecords << " records, " << kills << " kills, " << stats.failures << " failures, "
              << duplicates << " duplicates (bound " << kills * kWindow << "), " << stats.resent << " resent\n";
    const auto kinds = alerts.kinds();
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "exporter.down"), kinds.end());
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "exporter.up"), kinds.end());
}

}  // namespace
}  // namespace hsmaudit::exporters::relp
