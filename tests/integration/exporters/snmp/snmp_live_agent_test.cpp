// A live hsmauditd (embedded module) sending its alerts as SNMP traps to Debian's snmptrapd on
// loopback (labels integration, snmp): the traps carry the agent's state from its status snapshot,
// hsmRingUsedRecords and hsmModuleBootCounter included, with the values status.json reports.
//   Run 1: acknowledgements paused from the start (store.min_free larger than any disk), so the
//          workload fills the ring: hsmRingFillWarning carries the unacknowledged records.
//   Run 2: the module was started by someone else while the agent was down (`hsmcore serve`, boot
//          counter + 1), then by the agent (+ 1 again, its own doing: no alert since issue 16):
//          hsmModuleBootChange carries the first new counter.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/api/agent_status.h"
#include "tests/integration/common/process.h"
#include "tests/integration/exporters/snmp/snmp_test_support.h"

namespace hsmaudit::testing::snmp {
namespace {

namespace fs = std::filesystem;

const std::string kHsmauditd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmauditd";
const std::string kHsmcore = std::string(HSMAUDIT_BINARY_DIR) + "/hsmcore/hsmcore";

/// Polls `done` every 20 ms up to `limit` (a safety net for a broken agent, not a wait for readiness).
template <class F>
bool eventually(F done, std::chrono::seconds limit = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

/// The leading number of a logged varbind value ("4711 records" -> 4711); nullopt if none.
std::optional<std::uint64_t> number_of(const std::string& value) {
    if (value.empty() || value[0] < '0' || value[0] > '9') return std::nullopt;
    return std::stoull(value);
}

class SnmpLiveAgent : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_FALSE(base_mib_dir().empty()) << kMissingMibs;
        dir_ = make_temp_dir();
        ASSERT_FALSE(dir_.empty());
        write_file(dir_ + "/community", "public\n");
        port_ = free_udp_port();
        fs::create_directories(dir_ + "/trapd");
        trapd_ = std::make_unique<TrapReceiver>(dir_ + "/trapd", port_, "authCommunity log,execute public\n");
        ASSERT_TRUE(trapd_->running()) << trapd_->errors();
    }
    void TearDown() override {
        if (agent_ && agent_->running()) {
            agent_->signal(SIGKILL);
            (void)agent_->wait(std::chrono::seconds(10));
        }
        agent_.reset();
        trapd_.reset();
        if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
    }

    std::string config(unsigned workload_rate, bool pause_acks) const {
        std::string y = "agent:\n  state_dir: " + dir_ + "/state\n  status_interval: 100ms\n  log_level: info\n" +
                        "module:\n  mode: embedded\n  dir: " + dir_ +
                        "/module\n  serial: \"150999\"\n  ring_size: 64KiB\n  workload:\n    rate: " +
                        std::to_string(workload_rate) +
                        "\nalerts:\n  ring_fill_warning: 0.3\n  ring_fill_critical: 0.9\n  status_interval: 50ms\n" +
                        "store:\n  quota_check_interval: 100ms\n";
        // More free space than any file system has: retention pauses acknowledgements at once.
        if (pause_acks) y += "  min_free: 1024TiB\n";
        y += "exporters:\n  noc:\n    type: snmp\n    streams: alerts\n    snmp:\n      receivers: trapd\n"
             "      receiver:\n        trapd:\n          address: udp:127.0.0.1:" +
             std::to_string(port_) + "\n          version: v2c\n          community_file: " + dir_ + "/community\n";
        return y;
    }

    void start_agent(const std::string& yaml, int run) {
        write_file(dir_ + "/agent.yaml", yaml);
        const std::string log = dir_ + "/agent." + std::to_string(run) + ".log";
        log_ = log;
        agent_ = std::make_unique<Process>(std::vector<std::string>{kHsmauditd, "-c", dir_ + "/agent.yaml"}, log, log);
    }

    void stop_agent() {
        agent_->signal(SIGTERM);
        const auto code = agent_->wait(std::chrono::seconds(60));
        ASSERT_TRUE(code.has_value()) << "hsmauditd did not stop; log:\n" << Process::slurp(log_);
        EXPECT_EQ(*code, 0) << Process::slurp(log_);
        agent_.reset();
    }

    /// status.json read back as the agent wrote it (nullopt while missing or mid-replace).
    std::optional<agent::AgentStatus> status() const {
        const auto j = nlohmann::json::parse(Process::slurp(dir_ + "/state/status.json"), nullptr, false);
        if (j.is_discarded()) return std::nullopt;
        try {
            return j.get<agent::AgentStatus>();
        } catch (const agent::AgentStatusError&) {
            return std::nullopt;
        }
    }

    /// The first notification named `name` (HSMAUDIT-MIB::...) snmptrapd logged after the first
    /// `from`; "" if none within the limit.
    std::string wait_for_trap(const std::string& name, std::size_t from = 0) const {
        std::string found;
        (void)eventually([&] {
            const auto all = trapd_->notifications();
            for (std::size_t i = from; i < all.size(); ++i)
                if (trap_name(all[i]) == "HSMAUDIT-MIB::" + name) {
                    found = all[i];
                    return true;
                }
            return false;
        });
        return found;
    }

    std::string dir_;
    std::string log_;
    int port_ = 0;
    std::unique_ptr<TrapReceiver> trapd_;
    std::unique_ptr<Process> agent_;
};

TEST_F(SnmpLiveAgent, TrapsCarryTheRingUsedRecordsAndTheModuleBootCounter) {
    // Run 1: nothing acknowledged, the ring fills.
    start_agent(config(60, true), 1);
    const std::string fill = wait_for_trap("hsmRingFillWarning");
    ASSERT_FALSE(fill.empty()) << "no hsmRingFillWarning; snmptrapd logged:\n"
                               << trapd_->log() << "\nagent log:\n"
                               << Process::slurp(log_);
    const auto used = number_of(varbind(fill, "HSMAUDIT-MIB::hsmRingUsedRecords.0"));
    ASSERT_TRUE(used.has_value()) << fill;
    // The snapshot the trap was built from had the ring at >= 30% of 64 KiB, so records were
    // waiting; nothing is acknowledged meanwhile, so the agent's later reports hold at least as many.
    EXPECT_GT(*used, 0u) << fill;
    std::optional<agent::AgentStatus> later;
    ASSERT_TRUE(eventually([&] {
        later = status();
        return later && later->ring && later->ring->used_records >= *used && later->module.boot != 0;
    })) << "status.json never reported the ring holding "
        << *used << " records";
    EXPECT_EQ(varbind(fill, "HSMAUDIT-MIB::hsmModuleSerial.0"), "150999");
    EXPECT_TRUE(later->drain && later->drain->acks_paused);
    const std::uint32_t first_boot = later->module.boot;
    stop_agent();
    ASSERT_FALSE(HasFailure());

    // Run 2: the module restarts while the agent is down (`hsmcore serve` opens it: boot + 1), then
    // the agent starts it again (its own start of an embedded module: not an alert). The drain sees
    // the first change.
    const std::size_t run1_traps = trapd_->notifications().size();
    {
        Process serve({kHsmcore, "serve", "--dir", dir_ + "/module"}, dir_ + "/serve.out", dir_ + "/serve.err");
        ASSERT_TRUE(eventually([&] { return fs::exists(dir_ + "/module/control.sock") || !serve.running(); }));
        ASSERT_TRUE(serve.running()) << Process::slurp(dir_ + "/serve.err");
        serve.signal(SIGTERM);
        ASSERT_EQ(serve.wait(std::chrono::seconds(30)), 0) << Process::slurp(dir_ + "/serve.err");
    }
    start_agent(config(0, false), 2);
    const std::string boot = wait_for_trap("hsmModuleBootChange", run1_traps);
    ASSERT_FALSE(boot.empty()) << "no hsmModuleBootChange; snmptrapd logged:\n"
                               << trapd_->log() << "\nagent log:\n"
                               << Process::slurp(log_);
    const auto counter = number_of(varbind(boot, "HSMAUDIT-MIB::hsmModuleBootCounter.0"));
    ASSERT_TRUE(counter.has_value()) << boot;
    // The varbind is the module's boot now (the status snapshot): the agent's own start, after
    // hsmcore serve's.
    EXPECT_EQ(*counter, first_boot + 2u) << boot;
    ASSERT_TRUE(eventually([&] {
        later = status();
        return later && later->module.boot != first_boot;
    }));
    EXPECT_EQ(later->module.boot, *counter);
    // The alert's own text names the change the agent did not cause: hsmcore serve's start.
    EXPECT_NE(varbind(boot, "HSMAUDIT-MIB::hsmNotifyText.0")
                  .find("from " + std::to_string(first_boot) + " to " + std::to_string(first_boot + 1)),
              std::string::npos)
        << boot;
    stop_agent();
    // ...and only that one: the agent's own start raised none (every alert is sent before the stop).
    std::size_t boot_traps = 0;
    const auto all = trapd_->notifications();
    for (std::size_t i = run1_traps; i < all.size(); ++i)
        if (trap_name(all[i]) == "HSMAUDIT-MIB::hsmModuleBootChange") ++boot_traps;
    EXPECT_EQ(boot_traps, 1u) << trapd_->log();
}

}  // namespace
}  // namespace hsmaudit::testing::snmp
