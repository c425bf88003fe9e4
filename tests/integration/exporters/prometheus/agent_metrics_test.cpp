// The real agent: hsmauditd (embedded module with a workload, a syslog listener) serving metrics on a
// free loopback port. A real scrape passes promtool; a real Prometheus scrapes it and every
// dashboard query and rule expression evaluates, the ones that should return series doing so.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/integration/exporters/prometheus/prometheus_eval.h"

namespace {

using namespace hsmaudit::testing;
using namespace hsmaudit::testing::prom;

const std::string kHsmauditd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmauditd";

class AgentMetrics : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_FALSE(tool("promtool").empty());
        ASSERT_FALSE(tool("prometheus").empty());
        port_ = free_port();
        write(dir_ / "hsmauditd.yaml", "agent:\n  state_dir: " + (dir_ / "state") +
                                           "\n  status_interval: 200ms\n"
                                           "module:\n  mode: embedded\n  dir: " +
                                           (dir_ / "module") +
                                           "\n  ring_size: 1MiB\n"
                                           "  workload:\n    rate: 500\n"
                                           "syslog:\n  listen: udp:127.0.0.1:0\n"
                                           "metrics:\n  enabled: true\n  listen: 127.0.0.1:" +
                                           std::to_string(port_) + "\n");
        agent_.emplace(std::vector<std::string>{kHsmauditd, "-c", dir_ / "hsmauditd.yaml"}, dir_ / "agent.out",
                       dir_ / "agent.err");
    }
    void TearDown() override {
        if (agent_ && agent_->running()) {
            agent_->signal(SIGTERM);
            EXPECT_EQ(agent_->wait(std::chrono::seconds(60)), 0) << agent_->err();
        }
    }

    /// Polls the endpoint until it answers (bounded: a stuck start fails the test, it never measures).
    HttpResult scrape_when_up() {
        HttpResult r;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline && agent_->running()) {
            r = http_get(url(), dir_ / "scrape");
            if (r.status == 200 && r.body.find("hsmaudit_ring_used_bytes") != std::string::npos) return r;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        return r;
    }
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }

    TempDir dir_;
    int port_ = 0;
    std::optional<Process> agent_;
};

TEST_F(AgentMetrics, ARealScrapePassesPromtoolAndCarriesEveryComponent) {
    const auto r = scrape_when_up();
    ASSERT_EQ(r.status, 200) << agent_->err();
    write(dir_ / "scrape.txt", r.body);
    const auto [code, out] = sh(tool("promtool") + " check metrics < " + (dir_ / "scrape.txt"), dir_ / "promtool");
    EXPECT_EQ(code, 0) << out;
    for (const char* family :
         {"hsmaudit_build_info", "process_cpu_seconds_total", "process_open_fds", "hsmaudit_ring_capacity_bytes",
          "hsmaudit_ring_fill_ratio", "hsmaudit_ring_predicted_full_seconds", "hsmaudit_module_blocked",
          "hsmaudit_module_operation_requests_total", "hsmaudit_drain_records_stored_total",
          "hsmaudit_chain_verification_failures_total", "hsmaudit_drain_batch_duration_seconds_bucket",
          "hsmaudit_drain_record_latency_seconds_bucket", "hsmaudit_store_segments", "hsmaudit_archiver_runs_total",
          "hsmaudit_syslog_messages_received_total", "hsmaudit_syslog_spool_lines_total"})
        EXPECT_NE(r.body.find("\n" + std::string(family)), std::string::npos) << family << " missing from\n" << r.body;
    // The agent listens on loopback only, on the port it was told.
    EXPECT_NE(agent_->err().find("serving metrics on 127.0.0.1:" + std::to_string(port_)), std::string::npos)
        << agent_->err();
}

TEST_F(AgentMetrics, PrometheusScrapesTheAgentAndEveryExpressionEvaluates) {
    ASSERT_EQ(scrape_when_up().status, 200) << agent_->err();
    PrometheusServer prom(dir_, "127.0.0.1:" + std::to_string(port_));
    ASSERT_TRUE(prom.wait_scraped("hsmaudit_drain_records_stored_total")) << prom.log();
    // The drain works: stored records rise while Prometheus watches.
    const auto rate = prom.query("rate(hsmaudit_drain_records_stored_total{job=\"hsmaudit\"}[15s]) > 0");
    ASSERT_TRUE(rate);
    EXPECT_FALSE((*rate)["data"]["result"].empty()) << rate->dump();
    // Empty by design with this agent: no destination is configured (every hsmaudit_exporter_*
    // query), nothing fires (ALERTS), no chain fault (the failures-by-kind panel filters > 0).
    evaluate_all(prom,
                 {R"(hsmaudit_exporter_)", R"(^ALERTS\{)", R"(hsmaudit_chain_verification_failures_total.*> 0$)"});
}

}  // namespace
