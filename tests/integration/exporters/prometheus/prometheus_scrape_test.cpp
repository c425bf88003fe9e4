// A real Prometheus scrapes the metrics endpoint (serving every probe's families, filled as a busy
// agent would have them) and evaluates every expression of the dashboard and the rules.
#include <gtest/gtest.h>

#include "agent/engine/export/probe.h"
#include "agent/engine/pipeline/probe.h"
#include "agent/engine/store/probe.h"
#include "collectors/module/probe.h"
#include "collectors/syslog/probe_collector.h"
#include "exporters/prometheus/basic_auth.h"
#include "exporters/prometheus/endpoint.h"
#include "tests/integration/exporters/prometheus/prometheus_eval.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::testing::prom;

/// Every probe's families; counters grow at each scrape, as on a working agent.
class BusyAgent final : public ::prometheus::Collectable {
public:
    std::vector<::prometheus::MetricFamily> Collect() const override {
        const std::uint64_t n = ++scrapes_;
        agent::DrainStats d;
        d.records = d.records_verified = n * 1000;
        d.entries = n * 1001;
        d.bytes_stored = n * 300'000;
        d.commits = n * 10;
        d.ring_fill = 0.05;
        d.seconds_to_reserve = -1;
        d.last_step_ms = wall_ms();
        d.last_seq = n * 1000;
        for (int i = 0; i < 10; ++i) {
            batch_.observe(0.004);
            record_.observe(0.03);
            delivery_.observe(0.2);
        }
        auto out = agent::drain_families(d, batch_.snapshot(), record_.snapshot());
        hsmcore::ring::RingStatus st;
        st.capacity = 16 << 20;
        st.reserve = st.capacity / 20;
        st.used_bytes = 800'000 + n * 10;
        st.next_seq = 2000;
        st.oldest_seq = 1900;
        st.counters.op_requests = n * 1200;
        st.counters.crypto_requests = n * 1100;
        st.counters.op_errors = n;
        module_.record(st, wall_ms());
        auto add = [&out](std::vector<::prometheus::MetricFamily> fs) {
            for (auto& f : fs) out.push_back(std::move(f));
        };
        add(collectors::ModuleProbeCollector(module_).Collect());
        collectors::syslog::Probe::add(syslog_.received, 50);
        add(collectors::syslog::ProbeCollector({{"udp:127.0.0.1:5514", &syslog_}}).Collect());
        agent::RetentionStats r;
        r.used_bytes = n * 300'000;
        r.quota_bytes = 220'000'000'000;
        r.last_check_ms = wall_ms();
        agent::SpoolStats spool;
        spool.appended = n * 50;
        agent::ArchiverStats a;
        a.runs = n;
        a.archives_written = n / 10;
        a.segments_archived = n;
        a.last_run_ms = wall_ms();
        add(agent::store_families(r, a, agent::StoreFiles{3, 1, 2}, spool));
        agent::RunnerStats rs;
        rs.state = agent::RunnerState::up;
        rs.cursor[0] = n * 990;
        rs.newest[0] = n * 1000;
        rs.delivered[0] = n * 990;
        rs.sent = n * 995;
        rs.last_delivered_event_ms = wall_ms() - 200;
        rs.last_delivery_ms = wall_ms();
        add(agent::export_families({{"siem", "relp", {true, false, true, true}, rs, delivery_.snapshot()}}, wall_ms()));
        return out;
    }

private:
    static std::int64_t wall_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    static constexpr double kBounds[] = {0.001, 0.01, 0.1, 1};
    mutable std::uint64_t scrapes_ = 0;
    mutable agent::LatencyHistogram batch_{kBounds}, record_{kBounds}, delivery_{kBounds};
    mutable collectors::ModuleProbe module_;
    mutable collectors::syslog::Probe syslog_;
};

TEST(PrometheusScrape, EveryDashboardAndRuleExpressionEvaluates) {
    ASSERT_FALSE(tool("prometheus").empty()) << "prometheus is not installed";
    TempDir dir;
    // Basic auth on, as a production setup would have it: Prometheus must get through it.
    write(dir / "web.yml",
          "basic_auth_users:\n  prometheus: '" + exporters::prometheus::bcrypt_hash("s3cret", 4) + "'\n");
    exporters::prometheus::EndpointOptions o;
    o.listen = "127.0.0.1:0";
    o.web_config = dir / "web.yml";
    auto ep = exporters::prometheus::MetricsEndpoint::start(o, {std::make_shared<BusyAgent>()});
    ASSERT_TRUE(ep) << ep.error().describe();
    PrometheusServer prom(dir, "127.0.0.1:" + std::to_string((*ep)->port()),
                          "basic_auth: {username: prometheus, password: s3cret}, ");
    ASSERT_TRUE(prom.wait_scraped("hsmaudit_drain_records_stored_total")) << prom.log();
    // Empty by design here: the firing-alerts table (nothing fires), the failures-by-kind panel
    // (filtered to > 0: no failures).
    evaluate_all(prom, {R"(^ALERTS\{)", R"(hsmaudit_chain_verification_failures_total.*> 0$)"});
}

}  // namespace
