// The real hsmauditd under a stand-in service manager: the test is systemd's end of NOTIFY_SOCKET.
//   - Lifecycle: READY=1, WATCHDOG=1 (repeatedly), SIGHUP -> RELOADING=1 then READY=1, SIGTERM ->
//     STOPPING=1 and exit 0, every message from the main pid (NotifyAccess=main); afterwards the trail
//     verifies offline and holds exactly the records status.json says were stored.
//   - Reload: a broken file is refused (the agent says which file and line, keeps running and draining)
//     and a later SIGTERM still stops it cleanly; a valid change to rotation.max_segment_bytes applies
//     at once (a sealed segment appears in ready_for_archive/).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "daemon_harness.h"

namespace {

using namespace hsmaudit::testing;
using nlohmann::json;

constexpr std::uint64_t kWatchdogUsec = 2'000'000;

/// An embedded module with a small ring and a 500 ops/s workload; nothing rotates unless told to.
std::string agent_config(const TempDir& dir, const std::string& max_segment_bytes = "64MiB") {
    return "agent:\n"
           "  state_dir: " +
           (dir / "state") +
           "\n"
           "  log_level: info\n"
           "  status_interval: 100ms\n"
           "module:\n"
           "  mode: embedded\n"
           "  dir: " +
           (dir / "module") +
           "\n"
           "  serial: \"150777\"\n"
           "  ring_size: 1MiB\n"
           "  workload:\n"
           "    rate: 500\n"
           "rotation:\n"
           "  period: never\n"
           "  max_segment_bytes: " +
           max_segment_bytes +
           "\n"
           "store:\n"
           "  encrypt: true\n";
}

class HsmauditdService : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(fs::exists(kHsmaudit)) << kHsmaudit << " is not built";
        ASSERT_TRUE(dir_.ok());
        listener_.emplace(dir_ / "notify");
        ASSERT_TRUE(listener_->ok()) << "cannot bind " << (dir_ / "notify");
        config_ = dir_ / "hsmauditd.yaml";
    }

    /// Starts the agent and waits for READY=1; returns the index of that message.
    std::size_t start(const std::string& yaml) {
        spit(config_, yaml);
        daemon_.emplace(config_, dir_ / "hsmauditd.log", listener_->path(), kWatchdogUsec);
        const auto ready = listener_->wait_for(field_is("READY", "1"));
        EXPECT_TRUE(ready.has_value()) << "no READY=1; agent log:\n" << daemon_->log();
        return ready.value_or(0);
    }

    /// SIGHUP, then RELOADING=1 and the READY=1 after it; returns that READY message.
    NotifyMessage reload(std::size_t from) {
        EXPECT_TRUE(daemon_->signal(SIGHUP));
        const auto reloading = listener_->wait_for(field_is("RELOADING", "1"), from);
        EXPECT_TRUE(reloading.has_value()) << "no RELOADING=1 after SIGHUP; log:\n" << daemon_->log();
        if (!reloading) return {};
        const auto ready = listener_->wait_for(field_is("READY", "1"), *reloading + 1);
        EXPECT_TRUE(ready.has_value()) << "no READY=1 after RELOADING=1; log:\n" << daemon_->log();
        if (!ready) return {};
        last_ = *ready;
        return listener_->messages()[*ready];
    }

    /// SIGTERM, STOPPING=1, exit 0.
    void stop() {
        ASSERT_TRUE(daemon_->signal(SIGTERM));
        EXPECT_TRUE(listener_->wait_for(field_is("STOPPING", "1"), last_).has_value()) << "no STOPPING=1; log:\n"
                                                                                       << daemon_->log();
        const auto code = daemon_->wait_exit();
        ASSERT_TRUE(code.has_value()) << "hsmauditd did not exit after SIGTERM; log:\n" << daemon_->log();
        EXPECT_EQ(*code, 0) << daemon_->log();
    }

    json verify_trail() {
        const auto r = run_command(
            {kHsmaudit, "verify", "--json", "--key", dir_ / "module/audit.key", dir_ / "state/audit"}, dir_.path());
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        return json::parse(r.out, nullptr, false);
    }

    TempDir dir_;
    std::optional<NotifyListener> listener_;
    std::optional<Daemon> daemon_;
    std::string config_;
    std::size_t last_ = 0;
};

TEST_F(HsmauditdService, NotifiesReadyWatchdogReloadingStopping) {
    const std::size_t ready = start(agent_config(dir_));
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(listener_->messages()[ready].fields.count("STATUS"), 0u) << "READY=1 comes with a STATUS= line";

    // The watchdog keeps coming while the drain is healthy; wait for two, after READY=1.
    auto wd1 = listener_->wait_for(field_is("WATCHDOG", "1"), ready + 1);
    ASSERT_TRUE(wd1.has_value()) << "no WATCHDOG=1 although WATCHDOG_USEC/WATCHDOG_PID are set; log:\n"
                                 << daemon_->log();
    auto wd2 = listener_->wait_for(field_is("WATCHDOG", "1"), *wd1 + 1);
    ASSERT_TRUE(wd2.has_value()) << "only one WATCHDOG=1";

    const NotifyMessage after_reload = reload(*wd2 + 1);
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(after_reload.fields.count("STATUS"), 0u);
    EXPECT_TRUE(daemon_->running()) << "the agent must survive SIGHUP";
    // Still watched after the reload.
    ASSERT_TRUE(listener_->wait_for(field_is("WATCHDOG", "1"), last_ + 1).has_value());

    stop();
    ASSERT_FALSE(HasFailure());

    // NotifyAccess=main: every message came from the process systemd started, none from a helper.
    ASSERT_FALSE(listener_->messages().empty());
    for (const auto& m : listener_->messages()) EXPECT_EQ(m.pid, daemon_->pid());
    // Nothing after STOPPING=1 claims to be ready again.
    const auto stopping = listener_->wait_for(field_is("STOPPING", "1"), 0, std::chrono::milliseconds(0));
    ASSERT_TRUE(stopping.has_value());
    for (std::size_t i = *stopping; i < listener_->messages().size(); ++i)
        EXPECT_FALSE(listener_->messages()[i].has("READY", "1"));

    // What was stored is a valid trail, and status.json tells its size truthfully.
    const json report = verify_trail();
    ASSERT_TRUE(report.is_object());
    EXPECT_EQ(report.value("verdict", ""), "verified");
    const json status = json::parse(slurp(dir_ / "state/status.json"), nullptr, false);
    ASSERT_TRUE(status.is_object()) << "status.json is not JSON";
    const auto stored = status["drain"]["records"].get<std::uint64_t>();
    EXPECT_GT(stored, 0u) << "the workload ran at 500 ops/s; nothing was drained";
    EXPECT_EQ(report["records"].get<std::uint64_t>(), stored);
    EXPECT_EQ(report.value("faults_total", 1), 0);
}

TEST_F(HsmauditdService, BrokenReloadIsRefusedThenValidReloadApplies) {
    const std::size_t ready = start(agent_config(dir_));
    ASSERT_FALSE(HasFailure());
    last_ = ready;
    const std::string ready_dir = dir_ / "state/audit/ready_for_archive";

    // A bad value for rotation.max_segment_bytes: refused, the agent says where.
    const std::string bad = agent_config(dir_, "lots");
    const auto bad_line =
        1 + std::count(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(bad.find("lots")), '\n');
    spit(config_, bad);
    NotifyMessage refused = reload(last_ + 1);
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(refused.fields["STATUS"].find("reload refused"), std::string::npos) << refused.fields["STATUS"];
    const std::string where = config_ + ":" + std::to_string(bad_line) + ":";
    EXPECT_NE(refused.fields["STATUS"].find(where), std::string::npos) << refused.fields["STATUS"];
    EXPECT_TRUE(eventually([&] { return daemon_->log().find(where) != std::string::npos; }))
        << "the agent's log does not name " << where << ":\n"
        << daemon_->log();

    // A YAML syntax error: refused too, naming the file and the line.
    spit(config_, "agent:\n  log_level: [info\n");
    refused = reload(last_ + 1);
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(refused.fields["STATUS"].find("reload refused"), std::string::npos) << refused.fields["STATUS"];
    EXPECT_NE(refused.fields["STATUS"].find(config_ + ":"), std::string::npos) << refused.fields["STATUS"];

    // Still running, still draining, still watched, and the old limit still holds: nothing sealed.
    EXPECT_TRUE(daemon_->running());
    ASSERT_TRUE(listener_->wait_for(field_is("WATCHDOG", "1"), last_ + 1).has_value())
        << "no WATCHDOG=1 after a refused reload";
    const auto records_now = [&] {
        const json s = json::parse(slurp(dir_ / "state/status.json"), nullptr, false);
        return s.is_object() && s.contains("drain") ? s["drain"]["records"].get<std::uint64_t>() : 0;
    };
    const std::uint64_t before = records_now();
    EXPECT_TRUE(eventually([&] { return records_now() > before; })) << "the drain stopped after a refused reload";
    EXPECT_EQ(count_files(ready_dir), 0u) << "a 64 MiB segment cannot have filled at 500 ops/s";

    // A valid file with a 4 KiB segment limit: applied at once, segments get sealed.
    spit(config_, agent_config(dir_, "4096"));
    const NotifyMessage applied = reload(last_ + 1);
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(applied.fields.at("STATUS").find("reload refused"), std::string::npos) << applied.fields.at("STATUS");
    EXPECT_TRUE(eventually([&] { return count_files(ready_dir) > 0; }))
        << "no sealed segment in " << ready_dir << " after lowering rotation.max_segment_bytes; log:\n"
        << daemon_->log();

    stop();
    ASSERT_FALSE(HasFailure());
    const json report = verify_trail();
    ASSERT_TRUE(report.is_object());
    EXPECT_GE(report["sealed_segments"].get<std::uint64_t>(), 1u);
    EXPECT_EQ(report.value("faults_total", 1), 0);
}

TEST_F(HsmauditdService, StopsCleanlyAfterRefusedReload) {
    const std::size_t ready = start(agent_config(dir_));
    ASSERT_FALSE(HasFailure());
    spit(config_, "module:\n  mode: sideways\n");
    const NotifyMessage refused = reload(ready + 1);
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(refused.fields.at("STATUS").find(config_ + ":2:"), std::string::npos) << refused.fields.at("STATUS");
    stop();
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(daemon_->log().find("stopping"), std::string::npos) << daemon_->log();
    EXPECT_EQ(verify_trail().value("faults_total", 1), 0);
}

TEST_F(HsmauditdService, NoNotifySocketNoWatchdogStillRunsAndStops) {
    // Outside systemd (NOTIFY_SOCKET unset) the agent runs and stops the same way.
    spit(config_, agent_config(dir_));
    daemon_.emplace(config_, dir_ / "hsmauditd.log", "", 0);
    ASSERT_TRUE(eventually([&] { return fs::exists(dir_ / "state/status.json") || !daemon_->running(); }));
    ASSERT_TRUE(daemon_->running()) << daemon_->log();
    ASSERT_TRUE(daemon_->signal(SIGTERM));
    const auto code = daemon_->wait_exit();
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << daemon_->log();
    EXPECT_FALSE(listener_->wait_for([](const NotifyMessage&) { return true; }, 0, std::chrono::milliseconds(0)))
        << "a message reached a socket nobody named";
}

}  // namespace
