// hsmaudit status: reports built from status.json files as hsmauditd writes them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "agent/tools/status.h"
#include "mac/record.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kT0 = 1'795'500'000'000;

// What Service writes (agent/daemon/service.cpp, AgentStatus's to_json), as hand-written JSON.
std::string status_text(std::int64_t time_ms, std::uint64_t records, std::int64_t pid = 4242) {
    nlohmann::json j;
    j["schema"] = 1;
    j["time"] = mac::format_time(time_ms);
    j["pid"] = pid;
    j["started"] = mac::format_time(kT0 - 60'000);
    j["state_dir"] = "state/agent";
    j["drain"] = {
        {"entries", records + 3},        {"records", records},       {"seals", 1}, {"commits", 10}, {"faults", 2},
        {"acked_entry_no", records + 3}, {"last_seq", records + 100}};
    j["ring"] = {{"fill", 0.034}, {"fill_peak", 0.051}, {"seconds_to_reserve", 45.0}, {"blocked", false}};
    j["store"] = {{"dir", "state/agent/audit"},
                  {"durable_entry_no", records + 3},
                  {"open_segment", "hsm_150123_00000001.log"},
                  {"open_segment_bytes", 123456},
                  {"sealed_segments", 1},
                  {"bytes", 5 * 1024 * 1024},
                  {"encrypted", true}};
    j["alerts"] = {{"counts", {{"chain.record_mac_mismatch", 2}, {"ring.fill_warning", 1}}},
                   {"recent",
                    {{{"time", mac::format_time(kT0)},
                      {"kind", "ring.fill_warning"},
                      {"severity", "warning"},
                      {"message", "the ring is 51% full"}}}}};
    return j.dump(2);
}

class StatusTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hsmaudit-status-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write_status(const std::string& text) { std::ofstream(dir_ / "status.json") << text; }
    StatusSample sample(std::int64_t time_ms, std::uint64_t records, std::int64_t pid = 4242) {
        write_status(status_text(time_ms, records, pid));
        auto s = read_status_file(dir_.string());
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return s ? *s : StatusSample{};
    }
    fs::path dir_;
};

TEST_F(StatusTest, ARunningAgentWithTwoReportsGivesTheDrainRateAndEverythingElse) {
    const auto first = sample(kT0, 10'000);
    const auto second = sample(kT0 + 1000, 12'000);
    const auto r = make_status_report(dir_.string(), first, second, kT0 + 1200, 1000, true, {});
    EXPECT_TRUE(r.running);
    ASSERT_TRUE(r.records_per_s.has_value());
    EXPECT_DOUBLE_EQ(*r.records_per_s, 2000.0);
    EXPECT_EQ(r.age_ms, 200);
    EXPECT_DOUBLE_EQ(r.ring_fill, 0.034);
    ASSERT_TRUE(r.seconds_to_reserve.has_value());
    EXPECT_DOUBLE_EQ(*r.seconds_to_reserve, 45.0);
    EXPECT_EQ(r.sealed_segments, 1u);
    EXPECT_EQ(r.open_segment, "hsm_150123_00000001.log");
    EXPECT_EQ(r.faults, 2u);
    EXPECT_EQ(r.alert_counts.at("chain.record_mac_mismatch"), 2u);
    ASSERT_EQ(r.recent_alerts.size(), 1u);

    const std::string text = render_status_text(r);
    EXPECT_NE(text.find("running (pid 4242"), std::string::npos) << text;
    EXPECT_NE(text.find("3.4% full (peak 5.1%)"), std::string::npos) << text;
    EXPECT_NE(text.find("reserve predicted in 45 s"), std::string::npos) << text;
    EXPECT_NE(text.find("2000 records/s"), std::string::npos) << text;
    EXPECT_NE(text.find("5.0 MiB"), std::string::npos) << text;
    EXPECT_NE(text.find("1 sealed segment "), std::string::npos) << text;
    EXPECT_NE(text.find("exporters    none"), std::string::npos) << text;
    EXPECT_NE(text.find("2 faults found by online verification"), std::string::npos) << text;
    EXPECT_NE(text.find("the ring is 51% full"), std::string::npos) << text;

    const auto j = render_status_json(r);
    EXPECT_EQ(j["agent"]["running"], true);
    EXPECT_EQ(j["drain"]["records_per_s"], 2000.0);
    EXPECT_EQ(j["ring"]["seconds_to_reserve"], 45.0);
    EXPECT_TRUE(j["exporters"].is_array());
    EXPECT_TRUE(j["exporters"].empty());
    EXPECT_EQ(j["verification"]["faults"], 2);
    EXPECT_EQ(j["alerts"]["counts"]["ring.fill_warning"], 1);
}

TEST_F(StatusTest, AStaleStatusFileMeansTheAgentIsNotRunning) {
    const auto s = sample(kT0, 10'000);
    const auto r = make_status_report(dir_.string(), s, std::nullopt, kT0 + 10'000, 1000, true, {});
    EXPECT_FALSE(r.running);
    EXPECT_NE(r.not_running_reason.find("10 s ago"), std::string::npos) << r.not_running_reason;
    EXPECT_FALSE(r.records_per_s.has_value());
    const std::string text = render_status_text(r);
    EXPECT_NE(text.find("NOT RUNNING"), std::string::npos) << text;
    EXPECT_NE(text.find("last report"), std::string::npos) << text;
    EXPECT_EQ(render_status_json(r)["agent"]["running"], false);
    // Within three intervals it is still running.
    EXPECT_TRUE(make_status_report(dir_.string(), s, std::nullopt, kT0 + 2900, 1000, true, {}).running);
}

TEST_F(StatusTest, ADeadPidMeansTheAgentIsNotRunningEvenIfTheFileIsFresh) {
    const auto s = sample(kT0, 10'000);
    const auto r = make_status_report(dir_.string(), s, std::nullopt, kT0 + 100, 1000, false, {});
    EXPECT_FALSE(r.running);
    EXPECT_NE(r.not_running_reason.find("process 4242"), std::string::npos) << r.not_running_reason;
}

TEST_F(StatusTest, ARestartBetweenTheTwoReadsGivesNoRate) {
    const auto first = sample(kT0, 10'000);
    const auto second = sample(kT0 + 1000, 50, 4343);
    const auto r = make_status_report(dir_.string(), first, second, kT0 + 1100, 1000, true, {});
    EXPECT_FALSE(r.records_per_s.has_value());
    EXPECT_NE(r.rate_note.find("restarted"), std::string::npos);
}

TEST_F(StatusTest, NoRingPredictionMeansNotFilling) {
    auto j = nlohmann::json::parse(status_text(kT0, 1));
    j["ring"]["seconds_to_reserve"] = -1;
    write_status(j.dump());
    auto s = read_status_file(dir_.string());
    ASSERT_TRUE(s.has_value());
    const auto r = make_status_report(dir_.string(), *s, std::nullopt, kT0, 1000, true, {});
    EXPECT_FALSE(r.seconds_to_reserve.has_value());
    EXPECT_NE(render_status_text(r).find("not filling"), std::string::npos);
}

TEST_F(StatusTest, MissingOrDamagedStatusFilesAreErrorsNamingTheFile) {
    auto missing = read_status_file(dir_.string());
    ASSERT_FALSE(missing.has_value());
    EXPECT_NE(missing.error().message.find("status.json does not exist"), std::string::npos) << missing.error().message;
    write_status("{\"time\": \"yesterday\"");
    auto bad = read_status_file(dir_.string());
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("status.json is not a JSON object"), std::string::npos);
    write_status("{\"schema\": 1, \"time\": \"yesterday\", \"pid\": 1}");
    auto bad_time = read_status_file(dir_.string());
    ASSERT_FALSE(bad_time.has_value());
    EXPECT_NE(bad_time.error().message.find("time: 'yesterday' is not a time"), std::string::npos)
        << bad_time.error().message;
    // A JSON object hsmauditd did not write (no schema), or one of a newer agent.
    write_status("{\"time\": \"" + mac::format_time(kT0) + "\", \"pid\": 1}");
    auto foreign = read_status_file(dir_.string());
    ASSERT_FALSE(foreign.has_value());
    EXPECT_NE(foreign.error().message.find("no \"schema\" field"), std::string::npos) << foreign.error().message;
    write_status("{\"schema\": 99, \"time\": \"" + mac::format_time(kT0) + "\", \"pid\": 1}");
    auto newer = read_status_file(dir_.string());
    ASSERT_FALSE(newer.has_value());
    EXPECT_NE(newer.error().message.find("schema 99"), std::string::npos) << newer.error().message;
    // A field of the wrong type is an error naming the field (not a crash, not a silent 0).
    auto j = nlohmann::json::parse(status_text(kT0, 1));
    j["drain"]["records"] = -5;
    write_status(j.dump());
    auto odd = read_status_file(dir_.string());
    ASSERT_FALSE(odd.has_value());
    EXPECT_NE(odd.error().message.find("drain.records: expected an unsigned integer, found an integer"),
              std::string::npos)
        << odd.error().message;
    j = nlohmann::json::parse(status_text(kT0, 1));
    j["alerts"]["recent"][0]["time"] = "yesterday";
    write_status(j.dump());
    auto bad_alert = read_status_file(dir_.string());
    ASSERT_FALSE(bad_alert.has_value());
    EXPECT_NE(bad_alert.error().message.find("alerts.recent[0].time: 'yesterday' is not a time"), std::string::npos)
        << bad_alert.error().message;
    // Sections an agent did not write are absent from the report, not an error.
    write_status("{\"schema\": 1, \"time\": \"" + mac::format_time(kT0) + "\", \"pid\": 7}");
    auto bare = read_status_file(dir_.string());
    ASSERT_TRUE(bare.has_value()) << bare.error().message;
    const auto r = make_status_report(dir_.string(), *bare, std::nullopt, kT0, 1000, false, {});
    EXPECT_FALSE(r.has_ring);
    EXPECT_EQ(r.records, 0u);
    EXPECT_FALSE(render_status_text(r).empty());
}

TEST_F(StatusTest, RecentAlertsComeFromTheDurableAlertLog) {
    fs::create_directories(dir_ / "alerts");
    std::ofstream out(dir_ / "alerts" / "alerts.jsonl");
    for (int i = 0; i < 7; ++i)
        out << R"({"time":"2026-11-24T06:00:0)" << i << R"(.000Z","kind":"k)" << i
            << R"(","severity":"critical","message":"m)" << i << "\"}\n";
    out << "not json\n";
    out.close();
    const auto alerts = read_recent_alerts(dir_.string(), 5);
    ASSERT_EQ(alerts.size(), 5u);
    EXPECT_EQ(alerts.front().kind, "k2");
    EXPECT_EQ(alerts.back().kind, "k6");
    EXPECT_EQ(alerts.back().message, "m6");
    const auto s = sample(kT0, 1);
    const auto r = make_status_report(dir_.string(), s, std::nullopt, kT0, 1000, true, alerts);
    ASSERT_EQ(r.recent_alerts.size(), 5u);
    EXPECT_NE(render_status_text(r).find("critical k6: m6"), std::string::npos);
    EXPECT_TRUE(read_recent_alerts((dir_ / "nothing").string(), 5).empty());
}

TEST(PidAlive, OwnPidIsAliveAndNonsenseIsNot) {
    EXPECT_TRUE(pid_alive(::getpid()));
    EXPECT_FALSE(pid_alive(0));
    EXPECT_FALSE(pid_alive(-1));
}

// Issue 16 item 4: the exit code a monitor reads. 0 healthy, 1 running but unhealthy (each
// condition of assess_problems), 3 not running; 2 (usage, unreadable) is the CLI's, tested in
// tests/integration/agent/ops_status_test.cpp with the real program.
class StatusExitCode : public StatusTest {
protected:
    /// A healthy agent's report, changed by `edit`.
    StatusReport report(const std::function<void(nlohmann::json&)>& edit, std::int64_t now = kT0 + 100,
                        bool alive = true) {
        auto j = nlohmann::json::parse(status_text(kT0, 10'000));
        j["drain"]["faults"] = 0;
        j["drain"]["last_step"] = mac::format_time(kT0 - 20);
        edit(j);
        write_status(j.dump());
        auto s = read_status_file(dir_.string());
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return make_status_report(dir_.string(), s ? *s : StatusSample{}, std::nullopt, now, 1000, alive, {});
    }
    static std::string problems(const StatusReport& r) {
        std::string out;
        for (const auto& p : r.problems) out += p + "; ";
        return out;
    }
};

TEST_F(StatusExitCode, AHealthyRunningAgentIsZero) {
    const auto r = report([](auto&) {});
    EXPECT_TRUE(r.problems.empty()) << problems(r);
    EXPECT_EQ(status_exit_code(r), kStatusHealthy);
    EXPECT_NE(render_status_text(r).find("health       ok"), std::string::npos) << render_status_text(r);
    const auto j = render_status_json(r);
    EXPECT_EQ(j["health"]["state"], "healthy");
    EXPECT_EQ(j["health"]["exit_code"], 0);
}

TEST_F(StatusExitCode, EachUnhealthyConditionIsOneWithItsReason) {
    struct Case {
        const char* what;
        std::function<void(nlohmann::json&)> edit;
        const char* reason;
    };
    const std::vector<Case> cases = {
        {"drain failing", [](auto& j) { j["drain"]["failing"] = true; }, "the drain's last step failed"},
        {"drain stuck", [](auto& j) { j["drain"]["last_step"] = mac::format_time(kT0 - 31'000); },
         "the drain is stuck"},
        {"ring at the critical fill", [](auto& j) { j["ring"]["fill"] = 0.85; }, "ring is 85.0% full"},
        {"ring at a configured critical fill",
         [](auto& j) {
             j["ring"]["fill"] = 0.45;
             j["ring"]["fill_critical"] = 0.4;
         },
         "(critical at 40.0%)"},
        {"module blocked", [](auto& j) { j["ring"]["blocked"] = true; }, "the module is blocked"},
        {"verification faults", [](auto& j) { j["drain"]["faults"] = 3; }, "found 3 fault(s)"},
        {"acks paused", [](auto& j) { j["drain"]["acks_paused"] = true; }, "acknowledgements to the module are paused"},
        {"disk full",
         [](auto& j) {
             j["retention"] = {{"disk_full", true}};
         },
         "disk is full"},
        {"archiver stopped",
         [](auto& j) {
             j["archive"] = {{"stopped", true}};
         },
         "the archiver has stopped"},
        {"destination down",
         [](auto& j) {
             j["exporters"] = {{{"name", "siem"}, {"type", "relp"}, {"state", "down"}, {"last_error", "refused"}}};
         },
         "destination siem is down: refused"},
        {"destination held by a damaged store",
         [](auto& j) {
             j["exporters"] = {{{"name", "siem"}, {"state", "up"}, {"store_held", true}}};
         },
         "destination siem is held by a damaged store"},
        {"status not gathered", [](auto& j) { j["error"] = "cannot gather the status: boom"; }, "boom"},
        {"no drain", [](auto& j) { j.erase("drain"); }, "the drain has not started"},
    };
    for (const auto& c : cases) {
        const auto r = report(c.edit);
        EXPECT_TRUE(r.running) << c.what;
        EXPECT_EQ(status_exit_code(r), kStatusUnhealthy) << c.what;
        EXPECT_NE(problems(r).find(c.reason), std::string::npos) << c.what << ": " << problems(r);
        EXPECT_NE(render_status_text(r).find("UNHEALTHY: "), std::string::npos) << c.what;
        EXPECT_EQ(render_status_json(r)["health"]["state"], "unhealthy") << c.what;
    }
    // A destination that is up (or starting) is not a problem.
    const auto up = report([](auto& j) { j["exporters"] = {{{"name", "siem"}, {"state", "up"}}}; });
    EXPECT_EQ(status_exit_code(up), kStatusHealthy) << problems(up);
}

TEST_F(StatusExitCode, ADeadAgentIsThreeWhateverItsLastReportSaid) {
    // Stale: older than three status intervals (the agent's main loop or the agent is gone).
    const auto stale = report([](auto& j) { j["drain"]["failing"] = true; }, kT0 + 3001);
    EXPECT_FALSE(stale.running);
    EXPECT_EQ(status_exit_code(stale), kStatusNotRunning);
    EXPECT_EQ(render_status_json(stale)["health"]["state"], "not_running");
    // Fresh, but its pid is gone.
    const auto dead = report([](auto&) {}, kT0 + 100, false);
    EXPECT_EQ(status_exit_code(dead), kStatusNotRunning);
    EXPECT_EQ(render_status_json(dead)["health"]["exit_code"], 3);
}

// The shared definitions behind /health and /ready (agent/api/agent_health.h).
TEST(AgentHealth, LivenessAndReadinessFromTheSnapshot) {
    EXPECT_FALSE(assess_liveness(nullptr, kT0).ok);
    AgentStatus s;
    s.time_ms = kT0;
    s.drain = DrainStatus{};
    s.drain->last_step_ms = kT0 - 100;
    EXPECT_TRUE(assess_liveness(&s, kT0 + 500).ok);
    EXPECT_TRUE(assess_readiness(&s, kT0 + 500).ok);
    // The main loop stopped publishing.
    const auto stuck = assess_liveness(&s, kT0 + kMainLoopSilenceMs + 1);
    EXPECT_FALSE(stuck.ok);
    EXPECT_NE(stuck.reason.find("main loop is stuck"), std::string::npos) << stuck.reason;
    // The drain stopped stepping while the main loop goes on.
    s.drain->last_step_ms = kT0 - kDrainSilenceMs - 1;
    const auto drain = assess_liveness(&s, kT0);
    EXPECT_FALSE(drain.ok);
    EXPECT_NE(drain.reason.find("drain is stuck"), std::string::npos) << drain.reason;
    EXPECT_FALSE(assess_readiness(&s, kT0).ok);
    // Live but failing: not ready.
    s.drain->last_step_ms = kT0;
    s.drain->failing = true;
    EXPECT_TRUE(assess_liveness(&s, kT0).ok);
    const auto failing = assess_readiness(&s, kT0);
    EXPECT_FALSE(failing.ok);
    EXPECT_NE(failing.reason.find("last step failed"), std::string::npos) << failing.reason;
}

}  // namespace
}  // namespace hsmaudit::agent::tools
