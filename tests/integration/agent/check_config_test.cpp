// The real `hsmauditd --check-config` (issue 16, item 2) and hsmauditd's exit codes:
//   - broken configurations exit 2 with file:line and the key on stderr, before any module is
//     touched (the one load path, agent/daemon/agent_config.h; every case is a unit test there);
//   - a FIFO as the configuration is refused at once (bounded: the test kills it after 10 s);
//   - a configuration it accepts starts (the embedded default, READY=1, SIGTERM, exit 0);
//   - a start failure that may pass on retry (the module not reachable) exits 1 although the
//     configuration checked OK: the unit's RestartPreventExitStatus=2 keeps retrying only that.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "daemon_harness.h"

namespace {

using namespace hsmaudit::testing;

class CheckConfig : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(dir_.ok());
    }
    CommandResult check(const std::string& config) {
        return run_command({kHsmauditd, "-c", config, "--check-config"}, dir_.path());
    }
    /// Expects exit 2 and stderr naming "<config>:<line>" and `key`.
    void expect_refused(const std::string& yaml, int line, const std::string& key) {
        const std::string config = dir_ / "broken.yaml";
        spit(config, yaml);
        const auto r = check(config);
        EXPECT_EQ(r.exit_code, 2) << yaml << r.out << r.err;
        EXPECT_NE(r.err.find(config + ":" + std::to_string(line) + ":"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("configuration OK"), std::string::npos) << r.out;
    }
    /// The shipped default (config/hsmauditd.yaml: embedded module, built-in workload) with its
    /// state under this test's directory.
    std::string embedded_default() {
        std::string yaml = slurp(std::string(HSMAUDIT_SOURCE_DIR) + "/config/hsmauditd.yaml");
        for (const auto& [from, to] :
             {std::pair<std::string, std::string>{"state_dir: state/agent", "state_dir: " + (dir_ / "state")},
              {"dir: state/module", "dir: " + (dir_ / "module")}}) {
            const auto at = yaml.find(from);
            EXPECT_NE(at, std::string::npos) << "config/hsmauditd.yaml no longer says " << from;
            if (at != std::string::npos) yaml.replace(at, from.size(), to);
        }
        return yaml;
    }

    TempDir dir_;
};

TEST_F(CheckConfig, BrokenConfigurationsExit2NamingFileLineAndKey) {
    // A destination's port out of range.
    expect_refused("exporters:\n  siem:\n    type: relp\n    relp:\n      target: 127.0.0.1:70000\n", 5,
                   "exporters.siem.relp.target");
    // UDP syslog without allow_loss.
    expect_refused(
        "exporters:\n  s:\n    type: syslog\n    streams: syslog\n    syslog:\n      target: 127.0.0.1:514\n"
        "      protocol: udp\n",
        7, "exporters.s.syslog.protocol");
    // A missing metrics web config.
    expect_refused("metrics:\n  enabled: true\n  web_config: " + (dir_ / "absent.yml") + "\n", 3, "metrics.web_config");
    // A second store: section turning encryption off.
    expect_refused("store:\n  encrypt: true\nstore:\n  encrypt: false\n", 3, "duplicate key 'store'");
    // A typo, with the key meant.
    expect_refused("store:\n  qouta: 10GB\n", 2, "did you mean store.quota?");
}

TEST_F(CheckConfig, EmptyDevicesAndOversizedFilesExit2) {
    spit(dir_ / "empty.yaml", "# nothing but a comment\n");
    for (const std::string& config : {dir_ / "empty.yaml", std::string("/dev/zero"), dir_.path()}) {
        const auto r = check(config);
        EXPECT_EQ(r.exit_code, 2) << config << ": " << r.err;
        EXPECT_NE(r.err.find(config + ": the configuration is"), std::string::npos) << r.err;
    }
    spit(dir_ / "big.yaml", "agent:\n  log_level: info\n" + std::string(std::size_t{1} << 20, '#') + "\n");
    const auto r = check(dir_ / "big.yaml");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("larger than 1 MiB"), std::string::npos) << r.err;
}

TEST_F(CheckConfig, AFifoIsRefusedWithoutBlocking) {
    const std::string fifo = dir_ / "fifo.yaml";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // Bounded: no writer ever opens the FIFO, so a blocking open would hang (killed after 10 s).
    spit(dir_ / "log", "");
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int out = ::open((dir_ / "log").c_str(), O_WRONLY | O_TRUNC);
        ::dup2(out, 2);
        ::execl(kHsmauditd.c_str(), kHsmauditd.c_str(), "-c", fifo.c_str(), "--check-config", nullptr);
        ::_exit(127);
    }
    ASSERT_GT(pid, 0);
    int status = 0;
    const bool exited = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(10));
    if (!exited) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    ASSERT_TRUE(exited) << "hsmauditd --check-config blocked on a FIFO";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    EXPECT_NE(slurp(dir_ / "log").find(fifo + ": the configuration is a FIFO"), std::string::npos)
        << slurp(dir_ / "log");
}

TEST_F(CheckConfig, WhatItAcceptsStartsAndStopsWithExit0) {
    spit(dir_ / "agent.yaml", embedded_default());
    const auto r = check(dir_ / "agent.yaml");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("configuration OK"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_ / "module")) << "--check-config created the module";
    EXPECT_FALSE(fs::exists(dir_ / "state")) << "--check-config created the state directory";

    NotifyListener notify(dir_ / "notify");
    ASSERT_TRUE(notify.ok());
    Daemon agent(dir_ / "agent.yaml", dir_ / "agent.log", notify.path(), 0);
    ASSERT_TRUE(notify.wait_for([](const NotifyMessage& m) { return m.has("READY", "1"); }).has_value()) << agent.log();
    ASSERT_TRUE(agent.signal(SIGTERM));
    const auto code = agent.wait_exit();
    ASSERT_TRUE(code.has_value()) << agent.log();
    EXPECT_EQ(*code, 0) << agent.log();
}

TEST_F(CheckConfig, AStartFailureThatMayPassOnRetryExits1) {
    // A served module that is not there (yet): the configuration is valid, the start fails.
    const std::string yaml = "agent:\n  state_dir: " + (dir_ / "state") +
                             "\nmodule:\n  mode: connect\n  dir: " + (dir_ / "no-module") + "\n";
    spit(dir_ / "agent.yaml", yaml);
    const auto r = check(dir_ / "agent.yaml");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Daemon agent(dir_ / "agent.yaml", dir_ / "agent.log", "", 0);
    const auto code = agent.wait_exit();
    ASSERT_TRUE(code.has_value()) << "the agent did not give up on a missing module; log:\n" << agent.log();
    EXPECT_EQ(*code, 1) << agent.log();
    EXPECT_NE(agent.log().find("cannot start"), std::string::npos) << agent.log();
}

}  // namespace
