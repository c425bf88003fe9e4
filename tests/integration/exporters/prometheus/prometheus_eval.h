// A real Prometheus (Debian's) on loopback scraping one target, and every PromQL expression of
// the dashboard and the rules evaluated through its HTTP API.
#pragma once

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/exporters/prometheus/prom_test_util.h"

namespace hsmaudit::testing::prom {

const std::string kDashboardDir = std::string(HSMAUDIT_SOURCE_DIR) + "/dashboards";

/// Prometheus scraping `target` (HOST:PORT) every second as job "hsmaudit", with the project's rules loaded.
class PrometheusServer {
public:
    PrometheusServer(const TempDir& dir, const std::string& target, const std::string& scheme_and_auth = "") {
        port_ = free_port();
        write(dir / "prom.yml",
              "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
              "rule_files: ['" +
                  kDashboardDir + "/prometheus/hsmaudit-rules.yml']\n" + "scrape_configs: [{job_name: hsmaudit, " +
                  scheme_and_auth + "static_configs: [{targets: ['" + target + "']}]}]\n",
              0644);
        process_.emplace(std::vector<std::string>{tool("prometheus"), "--config.file=" + (dir / "prom.yml"),
                                                  "--storage.tsdb.path=" + (dir / "tsdb"),
                                                  "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                         dir / "prometheus.out", dir / "prometheus.err");
        scratch_ = dir / "q";
    }
    ~PrometheusServer() {
        if (process_) {
            process_->signal(SIGTERM);
            if (!process_->wait(std::chrono::seconds(20))) process_->signal(SIGKILL);
        }
    }
    [[nodiscard]] std::string log() const { return process_ ? process_->err() : ""; }

    /// The API's JSON answer to an instant query (nullopt if Prometheus did not answer).
    std::optional<nlohmann::json> query(const std::string& promql) {
        const auto r = http_get("http://127.0.0.1:" + std::to_string(port_) + "/api/v1/query", scratch_,
                                {"-G", "--data-urlencode", "query=" + promql});
        if (r.status == 0) return std::nullopt;
        try {
            return nlohmann::json::parse(r.body);
        } catch (const nlohmann::json::exception&) {
            return std::nullopt;
        }
    }

    /// Polls until `up{job="hsmaudit"} == 1` and `name` has been scraped twice (rates need two samples).
    bool wait_scraped(const std::string& name, std::chrono::seconds limit = std::chrono::seconds(90)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!process_->running()) return false;
            auto up = query("up{job=\"hsmaudit\"} == 1");
            auto n = query("count_over_time(" + name + "[1m]) >= 3");
            if (up && n && !(*up)["data"]["result"].empty() && !(*n)["data"]["result"].empty()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        return false;
    }

private:
    int port_ = 0;
    std::string scratch_;
    std::optional<Process> process_;
};

struct Expression {
    std::string where;  // "dashboard panel 'Ring fill' A", "rule instance:..."
    std::string promql;
    bool recording_or_panel = true;  // false: an alert condition (usually empty when nothing is wrong)
};

/// Every query of the dashboard, with Grafana's variables given concrete values.
inline std::vector<Expression> dashboard_expressions() {
    std::vector<Expression> out;
    const auto dash = nlohmann::json::parse(read(kDashboardDir + "/grafana/hsmaudit.json"));
    for (const auto& p : dash["panels"]) {
        if (!p.contains("targets")) continue;
        for (const auto& t : p["targets"]) {
            std::string e = t["expr"];
            e = std::regex_replace(e, std::regex(R"(\$__rate_interval)"), "15s");
            e = std::regex_replace(e, std::regex(R"(\$job)"), "hsmaudit");
            e = std::regex_replace(e, std::regex(R"(\$instance)"), ".+");
            out.push_back(
                {"dashboard panel '" + p["title"].get<std::string>() + "' " + t["refId"].get<std::string>(), e, true});
        }
    }
    return out;
}

/// Every rule's expression (recording rules shortened to a 15 s window: the test runs for seconds).
inline std::vector<Expression> rule_expressions() {
    std::vector<Expression> out;
    const YAML::Node rules = YAML::LoadFile(kDashboardDir + "/prometheus/hsmaudit-rules.yml");
    for (const auto& g : rules["groups"])
        for (const auto& r : g["rules"]) {
            std::string e = r["expr"].as<std::string>();
            const bool record = static_cast<bool>(r["record"]);
            if (record) e = std::regex_replace(e, std::regex(R"(\[(5m|1h)\])"), "[15s]");
            out.push_back({record ? "rule " + r["record"].as<std::string>() : "alert " + r["alert"].as<std::string>(),
                           e, record});
        }
    return out;
}

/// Evaluates every expression: none may fail; every panel query and recording rule must return
/// series unless it matches one of `may_be_empty` (regexes over the expression).
inline void evaluate_all(PrometheusServer& prom, const std::vector<std::string>& may_be_empty) {
    auto all = dashboard_expressions();
    auto rules = rule_expressions();
    all.insert(all.end(), rules.begin(), rules.end());
    ASSERT_GT(all.size(), 60u);
    std::size_t non_empty = 0;
    for (const auto& x : all) {
        const auto r = prom.query(x.promql);
        ASSERT_TRUE(r.has_value()) << x.where << ": no answer from Prometheus\n" << prom.log();
        ASSERT_EQ((*r)["status"], "success") << x.where << ": " << x.promql << "\n" << r->dump();
        const bool empty = (*r)["data"]["result"].empty();
        if (!empty) ++non_empty;
        if (!x.recording_or_panel || !empty) continue;
        bool allowed = false;
        for (const auto& re : may_be_empty) allowed = allowed || std::regex_search(x.promql, std::regex(re));
        EXPECT_TRUE(allowed) << x.where << " returned no series: " << x.promql;
    }
    EXPECT_GT(non_empty, all.size() / 2);
}

}  // namespace hsmaudit::testing::prom
