// Issue 4's proofs with the real programs as separate processes: `hsmcore serve` (the module),
// `hsmcore load` (its clients), `hsmauditd` in connect mode (the agent), `hsmaudit verify`.
//  - at 20,000 ops/s for 60 s the ring stays below 5% and every record lands, verified, once;
//  - kill -9 of the agent 20 times under load: the trail verifies with no gap and no duplicate;
//  - with the agent stopped the module blocks at its reserve, and resumes once the agent is back.
// Waits are bounded polls that only fail a stuck test.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "../hsmcore/process.h"

namespace hsmaudit {
namespace {

namespace fs = std::filesystem;
using hsmcore::testing::Process;
using Clock = std::chrono::steady_clock;

const std::string kBin = HSMAUDIT_BINARY_DIR;
const std::string kHsmcore = kBin + "/hsmcore/hsmcore";
const std::string kHsmauditd = kBin + "/agent/hsmauditd";
const std::string kHsmaudit = kBin + "/agent/hsmaudit";

nlohmann::json json_of(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
}

class Pipeline : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hsmpipe_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        module_ = dir_ + "/module";
        state_ = dir_ + "/state";
    }
    void TearDown() override {
        agent_.reset();
        serve_.reset();
        if (!HasFailure()) fs::remove_all(dir_);
    }

    std::pair<int, std::string> run(const std::vector<std::string>& argv) {
        return hsmcore::testing::run(argv, dir_ + "/cmd" + std::to_string(++commands_));
    }
    void init_module(const std::string& ring_size) {
        auto [code, out] = run({kHsmcore, "init", "--dir", module_, "--ring-size", ring_size});
        ASSERT_EQ(code, 0) << out;
    }
    void serve() {
        serve_ = std::make_unique<Process>(std::vector<std::string>{kHsmcore, "serve", "--dir", module_},
                                           dir_ + "/serve.out", dir_ + "/serve.err");
        ASSERT_TRUE(wait_for([&] { return fs::exists(module_ + "/control.sock"); })) << serve_->err();
    }
    void write_config() {
        std::ofstream(dir_ + "/agent.yaml") << "agent:\n  state_dir: " << state_ << "\n  status_interval: 200ms\n"
                                            << "module:\n  mode: connect\n  dir: " << module_ << "\n"
                                            << "alerts:\n  status_interval: 50ms\n"
                                            << "rotation:\n  max_segment_bytes: 8MiB\n";
    }
    /// Starts the agent and waits until it wrote its first status (it is draining by then).
    void start_agent() {
        fs::remove(state_ + "/status.json");
        agent_ = std::make_unique<Process>(std::vector<std::string>{kHsmauditd, "-c", dir_ + "/agent.yaml"},
                                           dir_ + "/agent.out", dir_ + "/agent.err");
        ASSERT_TRUE(wait_for([&] { return fs::exists(state_ + "/status.json"); })) << agent_->err();
    }
    void stop_agent() {
        agent_->signal(SIGTERM);
        auto code = agent_->wait(std::chrono::seconds(60));
        ASSERT_TRUE(code.has_value()) << "the agent did not stop";
        EXPECT_EQ(*code, 0) << agent_->err();
    }
    nlohmann::json module_status() {
        auto [code, out] = run({kHsmcore, "status", "--dir", module_, "--json"});
        EXPECT_EQ(code, 0) << out;
        return json_of(out);
    }
    /// Waits until the agent acknowledged everything the module holds.
    void wait_drained() {
        ASSERT_TRUE(wait_for([&] {
            auto s = module_status();
            return s.value("oldest_entry", 0) == s.value("next_entry", 1);
        }));
    }
    nlohmann::json verify() {
        auto [code, out] = run({kHsmaudit, "verify", "--json", "--key", module_ + "/audit.key", state_ + "/audit"});
        EXPECT_EQ(code, 0) << out.substr(0, 4000);
        return json_of(out.substr(0, out.rfind('}') + 1));
    }
    static bool wait_for(const std::function<bool()>& ready, std::chrono::seconds limit = std::chrono::seconds(60)) {
        const auto deadline = Clock::now() + limit;
        while (Clock::now() < deadline) {
            if (ready()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

    std::string dir_, module_, state_;
    int commands_ = 0;
    std::unique_ptr<Process> serve_, agent_;
};

TEST_F(Pipeline, At20000OpsPerSecondFor60SecondsTheRingStaysBelow5PercentAndEveryRecordVerifies) {
    ASSERT_NO_FATAL_FAILURE(init_module("16777216"));
    ASSERT_NO_FATAL_FAILURE(serve());
    write_config();
    ASSERT_NO_FATAL_FAILURE(start_agent());
    auto [code, out] =
        run({kHsmcore, "load", "--dir", module_, "--rate", "20000", "--duration", "60", "--threads", "4", "--json"});
    ASSERT_EQ(code, 0) << out;
    const auto load = json_of(out);
    std::cout << "load: " << load.dump() << "\n";
    ASSERT_NO_FATAL_FAILURE(wait_drained());
    ASSERT_NO_FATAL_FAILURE(stop_agent());
    const auto status = json_of(hsmcore::testing::Process::slurp(state_ + "/status.json"));
    const double peak = status["ring"].value("fill_peak", 1.0);
    std::cout << "ring peak fill seen by the agent (sampled every 50 ms): " << peak * 100 << "%\n";
    EXPECT_LT(peak, 0.05);
    EXPECT_EQ(status["alerts"]["counts"].size(), 0u) << status["alerts"].dump();
    const auto report = verify();
    const auto ms = module_status();
    EXPECT_EQ(report.value("verdict", ""), "verified");
    EXPECT_EQ(report.value("records", 0u), ms.value("next_seq", 0u) - 1) << "every record the module made, once";
    EXPECT_EQ(report.value("first_seq", 0u), 1u);
    EXPECT_GT(report.value("records", 0u), 600'000u) << "the load did not reach 10,000 records/s";
}

TEST_F(Pipeline, KillNineTheAgentTwentyTimesUnderLoadAndTheTrailHasNoGapAndNoDuplicate) {
    ASSERT_NO_FATAL_FAILURE(init_module("4194304"));
    ASSERT_NO_FATAL_FAILURE(serve());
    write_config();
    const unsigned seed = static_cast<unsigned>(std::random_device{}());
    std::cout << "crash schedule seed " << seed << "\n";
    std::mt19937 rng(seed);
    Process load({kHsmcore, "load", "--dir", module_, "--rate", "5000", "--duration", "600", "--threads", "2"},
                 dir_ + "/load.out", dir_ + "/load.err");
    for (int i = 0; i < 20; ++i) {
        ASSERT_NO_FATAL_FAILURE(start_agent());
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
        agent_->signal(SIGKILL);
        ASSERT_TRUE(agent_->wait(std::chrono::seconds(30)).has_value());
    }
    load.signal(SIGTERM);
    load.wait(std::chrono::seconds(30));
    ASSERT_NO_FATAL_FAILURE(start_agent());
    ASSERT_NO_FATAL_FAILURE(wait_drained());
    ASSERT_NO_FATAL_FAILURE(stop_agent());
    const auto report = verify();
    const auto ms = module_status();
    EXPECT_EQ(report.value("verdict", ""), "verified") << report.dump().substr(0, 3000);
    EXPECT_EQ(report.value("faults_total", 1u), 0u);
    EXPECT_EQ(report.value("records", 0u), ms.value("next_seq", 0u) - 1);
    EXPECT_EQ(report.value("last_seq", 0u), ms.value("next_seq", 0u) - 1);
}

TEST_F(Pipeline, TheModuleBlocksWithoutTheAgentAndResumesWhenItReturns) {
    ASSERT_NO_FATAL_FAILURE(init_module("262144"));
    ASSERT_NO_FATAL_FAILURE(serve());
    write_config();
    // No agent: the ring fills to its reserve and the module refuses cryptography.
    auto [code, out] = run({kHsmcore, "load", "--dir", module_, "--rate", "0", "--duration", "3", "--json"});
    ASSERT_EQ(code, 0) << out;
    EXPECT_GT(json_of(out).value("refused_log_full", 0u), 0u) << out;
    ASSERT_TRUE(module_status().value("blocked", false));
    const auto start = Clock::now();
    ASSERT_NO_FATAL_FAILURE(start_agent());
    ASSERT_TRUE(wait_for([&] { return !module_status().value("blocked", true); }, std::chrono::seconds(30)));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "the module resumed " << seconds << " s after the agent was started\n";
    EXPECT_LT(seconds, 1.0);
    ASSERT_NO_FATAL_FAILURE(wait_drained());
    ASSERT_NO_FATAL_FAILURE(stop_agent());
    EXPECT_EQ(verify().value("verdict", ""), "verified");
}

}  // namespace
}  // namespace hsmaudit
