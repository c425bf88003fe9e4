// hsmaudit status: reports built from status.json files as hsmauditd writes them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace hsmaudit::agent::tools
