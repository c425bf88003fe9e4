// The rules and the dashboard, checked with the real tools: promtool check rules, promtool test
// rules (every alert's unit tests in dashboards/tests/), and the dashboard convention checker
// (dashboards/check_dashboard.py) with its self-test, which proves it refuses broken dashboards.
#include <gtest/gtest.h>

#include "tests/integration/exporters/prometheus/prom_test_util.h"

namespace {

using namespace hsmaudit::testing::prom;
using hsmaudit::testing::run;

const std::string kDashboards = std::string(HSMAUDIT_SOURCE_DIR) + "/dashboards";

TEST(PrometheusRules, PromtoolCheckRules) {
    ASSERT_FALSE(tool("promtool").empty());
    TempDir dir;
    const auto [code, out] =
        run({tool("promtool"), "check", "rules", kDashboards + "/prometheus/hsmaudit-rules.yml"}, dir / "check");
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
}

TEST(PrometheusRules, PromtoolTestRulesCoversEveryAlert) {
    TempDir dir;
    std::vector<std::string> argv = {tool("promtool"), "test", "rules"};
    for (const auto& e : fs::directory_iterator(kDashboards + "/tests"))
        if (e.path().extension() == ".yml") argv.push_back(e.path().string());
    ASSERT_GT(argv.size(), 3u);
    const auto [code, out] = run(argv, dir / "test");
    EXPECT_EQ(code, 0) << out;
    // Every alert of the rules file has a test case.
    const std::string rules = read(kDashboards + "/prometheus/hsmaudit-rules.yml");
    std::string tests;
    for (std::size_t i = 3; i < argv.size(); ++i) tests += read(argv[i]);
    std::size_t alerts = 0;
    for (std::size_t p = rules.find("- alert: "); p != std::string::npos; p = rules.find("- alert: ", p + 1)) {
        const auto end = rules.find('\n', p);
        const std::string name = rules.substr(p + 9, end - p - 9);
        ++alerts;
        EXPECT_NE(tests.find("alertname: " + name + "\n"), std::string::npos) << name << " has no promtool test";
    }
    EXPECT_GE(alerts, 12u);
}

TEST(GrafanaDashboard, ConventionsHoldAndTheCheckerCanFail) {
    const std::string python = tool("python3");
    ASSERT_FALSE(python.empty());
    TempDir dir;
    const auto [code, out] =
        run({python, kDashboards + "/check_dashboard.py", "--self-test", kDashboards + "/grafana/hsmaudit.json"},
            dir / "check");
    EXPECT_EQ(code, 0) << out;
    // And on a dashboard exported with __inputs (the shape Grafana's "export for sharing" gives).
    write(dir / "bad.json", R"({"__inputs": [], "uid": "x", "templating": {"list": []}, "panels": []})");
    const auto [bad, bad_out] = run({python, kDashboards + "/check_dashboard.py", dir / "bad.json"}, dir / "bad");
    EXPECT_EQ(bad, 1) << bad_out;
    EXPECT_NE(bad_out.find("__inputs"), std::string::npos) << bad_out;
}

}  // namespace
