// The fixture of issue 4's end-to-end proofs: the real programs as separate processes,
// `hsmcore serve` (the module), `hsmcore load` (its clients), `hsmauditd` in connect mode (the
// agent) and `hsmaudit verify`, in a temp dir. Waits are bounded polls that only fail a stuck test;
// every process started is stopped by its owner's destructor.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/integration/common/process.h"

namespace hsmaudit::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline const std::string kBin = HSMAUDIT_BINARY_DIR;
inline const std::string kHsmcore = kBin + "/hsmcore/hsmcore";
inline const std::string kHsmauditd = kBin + "/agent/hsmauditd";
inline const std::string kHsmaudit = kBin + "/agent/hsmaudit";

inline nlohmann::json json_of(const std::string& text) {
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
        return testing::run(argv, dir_ + "/cmd" + std::to_string(++commands_));
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

}  // namespace hsmaudit::testing
