// AgentStatus (agent/api/agent_status.h): to_json/from_json round-trip every field, the JSON keeps
// the shape status.json readers rely on, and a damaged or foreign document is refused with the
// field that is wrong.
#include <gtest/gtest.h>

#include "agent/api/agent_status.h"
#include "tests/support/agent_status_sample.h"

namespace hsmaudit::agent {
namespace {

using nlohmann::json;

TEST(AgentStatus, EveryFieldSurvivesARoundTripThroughJson) {
    const AgentStatus original = testing::full_agent_status();
    const json j = original;
    const AgentStatus back = j.get<AgentStatus>();
    EXPECT_EQ(back, original) << j.dump(2);
    // And through text, as status.json is.
    EXPECT_EQ(json::parse(j.dump()).get<AgentStatus>(), original);
    // A default (just started) status too: optional sections stay absent.
    AgentStatus bare;
    bare.time_ms = 1'768'471'200'000;
    bare.pid = 1;
    const json jb = bare;
    EXPECT_FALSE(jb.contains("ring"));
    EXPECT_FALSE(jb.contains("drain"));
    EXPECT_EQ(jb.get<AgentStatus>(), bare);
}

TEST(AgentStatus, TheJsonShapeIsWhatStatusJsonReadersUse) {
    const json j = testing::full_agent_status();
    EXPECT_EQ(j["schema"], kAgentStatusSchema);
    EXPECT_EQ(j["time"], "2026-01-15T10:00:00.000Z");
    EXPECT_EQ(j["started"], "2026-01-15T09:59:00.000Z");
    EXPECT_EQ(j["pid"], 4242);
    // tests/integration/agent: drain.records, ring.fill_peak, alerts.counts, exporters[].cursor.audit.
    EXPECT_EQ(j["drain"]["records"], 9'990u);
    EXPECT_EQ(j["ring"]["fill_peak"], 0.61);
    EXPECT_EQ(j["alerts"]["counts"]["ring.fill_warning"], 2u);
    EXPECT_EQ(j["exporters"][0]["cursor"]["audit"], 9'000u);
    EXPECT_EQ(j["alerts"]["recent"][1]["time"], "2026-01-15T09:59:59.000Z");
    // What the SNMP varbinds need and the agent did not write before the typed status.
    EXPECT_EQ(j["ring"]["used_records"], 4711u);
    EXPECT_EQ(j["module"]["boot"], 7u);
    EXPECT_EQ(j["drain"]["last_ack"], "2026-01-15T09:59:59.800Z");
    EXPECT_EQ(j["syslog"]["spool_write_errors"], 8u);
}

TEST(AgentStatus, DamagedOrForeignDocumentsNameWhatIsWrong) {
    const json good = testing::full_agent_status();
    auto error_of = [](const json& j) -> std::string {
        try {
            (void)j.get<AgentStatus>();
        } catch (const AgentStatusError& e) {
            return e.what();
        }
        return "(accepted)";
    };
    EXPECT_EQ(error_of(json::array()), "the document: expected an object, found array");
    EXPECT_NE(error_of(json{{"time", "2026-01-15T10:00:00.000Z"}}).find("no \"schema\" field"), std::string::npos);
    json j = good;
    j["schema"] = kAgentStatusSchema + 1;
    EXPECT_NE(error_of(j).find("newer hsmauditd"), std::string::npos) << error_of(j);
    j = good;
    j.erase("pid");
    EXPECT_EQ(error_of(j), "pid: missing");
    j = good;
    j["ring"]["used_records"] = "many";
    EXPECT_EQ(error_of(j), "ring.used_records: expected an unsigned integer, found string");
    j = good;
    j["exporters"][0]["lag_seconds"] = true;
    EXPECT_EQ(error_of(j), "exporters[0].lag_seconds: expected a number, found boolean");
    j = good;
    j["module"]["boot"] = 1ULL << 40;
    EXPECT_NE(error_of(j).find("module.boot: 1099511627776 is out of range"), std::string::npos);
    j = good;
    j["time"] = "2026-13-01T00:00:00.000Z";
    EXPECT_NE(error_of(j).find("time: '2026-13-01T00:00:00.000Z' is not a time"), std::string::npos);
    j = good;
    j["drain"] = 5;
    EXPECT_EQ(error_of(j), "drain: expected an object, found an integer");
    // Unknown fields (a newer agent's additions within the same schema) are ignored.
    j = good;
    j["ring"]["something_new"] = 1;
    EXPECT_EQ(error_of(j), "(accepted)");
}

TEST(AgentStatus, TimesFormatAndParseBothWays) {
    for (const std::int64_t t : {0LL, 1'768'471'200'123LL, 4'102'444'799'999LL}) {
        const auto text = format_status_time(t);
        ASSERT_EQ(text.size(), 24u) << text;
        EXPECT_EQ(parse_status_time(text), t) << text;
    }
    EXPECT_FALSE(parse_status_time("2026-01-15 10:00:00.000Z"));
    EXPECT_FALSE(parse_status_time("2026-02-30T10:00:00.000Z"));
}

}  // namespace
}  // namespace hsmaudit::agent
