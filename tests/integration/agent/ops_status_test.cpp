// Operations (issue 16 item 4) against the real hsmauditd: `hsmaudit status`'s exit codes as a
// monitor reads them (0 healthy, 1 running but unhealthy, 2 usage or unreadable, 3 not running:
// no status.json, the agent's pid gone, or status.json stale), and /health and /ready beside
// /metrics (200 while the agent runs; the 503 cases are the endpoint's tests with injected checks,
// tests/integration/exporters/prometheus/endpoint_test.cpp). The agent's stderr is a file and
// JOURNAL_STREAM names another stream: its log stays text, exactly as before.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "daemon_harness.h"
#include "tests/integration/common/ports.h"

namespace {

using namespace hsmaudit::testing;
using nlohmann::json;

const std::string kCurl = "/usr/bin/curl";

class OpsStatus : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(fs::exists(kHsmaudit)) << kHsmaudit << " is not built";
        ASSERT_TRUE(fs::exists(kCurl)) << "curl is not installed";
        ASSERT_TRUE(dir_.ok());
        // Not journald's stream (stderr is a file): the agent must keep its text log.
        ::setenv("JOURNAL_STREAM", "1:1", 1);
    }
    void TearDown() override { ::unsetenv("JOURNAL_STREAM"); }

    void start(const std::string& extra = "") {
        spit(dir_ / "hsmauditd.yaml", "agent:\n  state_dir: " + (dir_ / "state") +
                                          "\n  status_interval: 100ms\n"
                                          "module:\n  mode: embedded\n  dir: " +
                                          (dir_ / "module") +
                                          "\n  ring_size: 1MiB\n  workload:\n    rate: 200\n"
                                          "metrics:\n  enabled: true\n  listen: 127.0.0.1:0\n" +
                                          extra);
        daemon_.emplace(dir_ / "hsmauditd.yaml", dir_ / "hsmauditd.log", "", 0);
        std::smatch m;
        const std::regex serving(R"(serving metrics on 127\.0\.0\.1:0 \(port (\d+)\))");
        ASSERT_TRUE(eventually([&] {
            const std::string log = daemon_->log();
            if (!std::regex_search(log, m, serving)) return false;
            port_ = std::stoi(m[1]);
            return true;
        })) << daemon_->log();
    }
    CommandResult status(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {kHsmaudit, "status", "--state-dir", dir_ / "state"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_command(args, dir_.path());
    }
    /// GET http://127.0.0.1:<port><path>: the HTTP code and the body.
    std::pair<int, std::string> get(const std::string& path) {
        const auto r = run_command({kCurl, "-s", "--max-time", "10", "-o", dir_ / "body", "-w", "%{http_code}",
                                    "http://127.0.0.1:" + std::to_string(port_) + path},
                                   dir_.path());
        return {std::atoi(r.out.c_str()), slurp(dir_ / "body")};
    }

    TempDir dir_;
    std::optional<Daemon> daemon_;
    int port_ = 0;
};

TEST_F(OpsStatus, HealthyIsZeroThenADeadAgentIsThree) {
    // No status.json at all: the agent never ran here.
    fs::create_directories(dir_ / "state");
    const auto never = status();
    EXPECT_EQ(never.exit_code, 3) << never.out << never.err;
    EXPECT_NE(never.err.find("not running: no status.json"), std::string::npos) << never.err;

    start();
    ASSERT_FALSE(HasFailure());
    CommandResult ok;
    ASSERT_TRUE(eventually([&] { return (ok = status()).exit_code == 0; })) << ok.exit_code << "\n"
                                                                            << ok.out << ok.err << daemon_->log();
    EXPECT_NE(ok.out.find("health       ok"), std::string::npos) << ok.out;
    const auto j = json::parse(status({"--json"}).out, nullptr, false);
    EXPECT_EQ(j["health"]["state"], "healthy") << j.dump();

    // /health and /ready beside /metrics, on the same listener.
    EXPECT_EQ(get("/health"), (std::pair<int, std::string>{200, "ok\n"}));
    EXPECT_EQ(get("/ready"), (std::pair<int, std::string>{200, "ok\n"}));
    EXPECT_EQ(get("/metrics").first, 200);

    // The log is text (stderr is a file, JOURNAL_STREAM names another stream): no <N> prefix,
    // no journal fields, the same lines as ever.
    const std::string log = daemon_->log();
    EXPECT_TRUE(
        std::regex_search(log, std::regex(R"(\n?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info draining module )")))
        << log;
    EXPECT_EQ(log.find("<6>"), std::string::npos) << log;
    EXPECT_EQ(log.find("HSMAUDIT_"), std::string::npos) << log;

    // Killed: its pid is gone, whatever the last status.json said.
    ASSERT_TRUE(daemon_->signal(SIGKILL));
    ASSERT_TRUE(daemon_->wait_exit().has_value());
    const auto dead = status();
    EXPECT_EQ(dead.exit_code, 3) << dead.out << dead.err;
    EXPECT_NE(dead.out.find("NOT RUNNING: process"), std::string::npos) << dead.out;

    // A stale status.json of a live pid (ours): a stuck agent that stopped writing it.
    auto st = json::parse(slurp(dir_ / "state/status.json"));
    st["pid"] = ::getpid();
    spit(dir_ / "state/status.json", st.dump());
    CommandResult stale;  // stale once older than 3 x agent.status_interval (100 ms)
    ASSERT_TRUE(eventually([&] { return (stale = status()).exit_code == 3; })) << stale.out << stale.err;
    EXPECT_NE(stale.out.find("was last written"), std::string::npos) << stale.out;

    // Unreadable status.json, and usage errors: 2.
    spit(dir_ / "state/status.json", "{not json");
    EXPECT_EQ(status().exit_code, 2);
    EXPECT_EQ(run_command({kHsmaudit, "status"}, dir_.path()).exit_code, 2);
    EXPECT_EQ(status({"--no-such-option"}).exit_code, 2);
}

// Issue 16 item 6 with the real agent: the first start against a freshly created embedded module,
// and a restart (which restarts the embedded module), raise no module.boot_changed.
TEST_F(OpsStatus, NoBootChangedAlertOnAFirstStartOrARestart) {
    for (int run = 0; run < 2; ++run) {
        start();
        ASSERT_FALSE(HasFailure());
        CommandResult ok;
        ASSERT_TRUE(eventually([&] { return (ok = status()).exit_code == 0; })) << ok.out << ok.err;
        const std::string log = daemon_->log();
        EXPECT_EQ(log.find("module.boot_changed"), std::string::npos) << "run " << run << ":\n" << log;
        EXPECT_NE(log.find(run == 0 ? "first seen boot" : "restarted with the agent"), std::string::npos) << log;
        ASSERT_TRUE(daemon_->signal(SIGTERM));
        ASSERT_EQ(daemon_->wait_exit().value_or(-1), 0) << log;
    }
    EXPECT_EQ(slurp(dir_ / "state/alerts/alerts.jsonl").find("module.boot_changed"), std::string::npos);
}

TEST_F(OpsStatus, ADestinationDownIsOneAndTheAgentStaysReady) {
    start(
        "exporters:\n  siem:\n    type: syslog\n    backoff_initial: 50ms\n    backoff_max: 200ms\n"
        "    syslog:\n      protocol: tcp\n      target: 127.0.0.1:" +
        std::to_string(free_port()) + "\n");
    ASSERT_FALSE(HasFailure());
    CommandResult r;
    ASSERT_TRUE(eventually([&] { return (r = status()).exit_code == 1; })) << r.exit_code << "\n"
                                                                           << r.out << r.err << daemon_->log();
    EXPECT_NE(r.out.find("UNHEALTHY: destination siem is down"), std::string::npos) << r.out;
    const auto j = json::parse(status({"--json"}).out, nullptr, false);
    EXPECT_EQ(j["health"]["exit_code"], 1) << j.dump();
    // Degraded, not dead and not unready: the drain keeps the module's ring empty meanwhile.
    EXPECT_EQ(get("/health").first, 200);
    EXPECT_EQ(get("/ready").first, 200);
    ASSERT_TRUE(daemon_->signal(SIGTERM));
    EXPECT_EQ(daemon_->wait_exit().value_or(-1), 0) << daemon_->log();
}

}  // namespace
