// Unit tests of the SNMP exporter's parts that need no receiver: hold-down, syslog rules (the
// built-in ones against what the appliance emulator really emits), the alert table, the engine
// state file, and the configuration (nested receivers, 0600 credential files).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/config/config.h"
#include "exporters/snmp/alert_map.h"
#include "exporters/snmp/engine.h"
#include "exporters/snmp/errc.h"
#include "exporters/snmp/holddown.h"
#include "exporters/snmp/rules.h"
#include "exporters/snmp/snmp_exporter.h"
#include "tests/support/agent_status_sample.h"
#include "tests/unit/exporters/snmp/snmp_events.h"

namespace hsmaudit::testing::snmp {
namespace {

namespace s = exporters::snmp;
namespace fs = std::filesystem;
using Verdict = s::HoldDown::Verdict;

s::Notification note(std::string_view def, s::Action action, std::string condition,
                     s::NotifySeverity sev = s::NotifySeverity::warning) {
    s::Notification n;
    n.def = s::find_notification(def);
    n.action = action;
    n.condition = std::move(condition);
    n.severity = action == s::Action::clear ? s::NotifySeverity::cleared : sev;
    return n;
}

std::string temp_dir() {
    std::string t = (fs::temp_directory_path() / "hsmaudit-snmp-unit-XXXXXX").string();
    return ::mkdtemp(t.data()) != nullptr ? t : std::string();
}

// ---- hold-down

TEST(SnmpHoldDown, DuplicatesAreDroppedAndAClearOfAnUnknownConditionIsSent) {
    s::HoldDown h(std::chrono::seconds(60), 5);
    auto raise = note("hsmFanAlarm", s::Action::raise, "sensor:FAN1");
    auto clear = note("hsmFanClear", s::Action::clear, "sensor:FAN1");
    auto other_clear = note("hsmFanClear", s::Action::clear, "sensor:FAN2");
    EXPECT_EQ(h.offer(other_clear, kT0), Verdict::send);  // the NMS may hold its raise from before a restart
    EXPECT_EQ(h.offer(raise, kT0), Verdict::send);
    auto again = raise;
    EXPECT_EQ(h.offer(again, kT0 + 1), Verdict::duplicate);
    auto critical = note("hsmFanAlarm", s::Action::raise, "sensor:FAN1", s::NotifySeverity::critical);
    EXPECT_EQ(h.offer(critical, kT0 + 2), Verdict::send);  // another level is a change
    EXPECT_EQ(h.offer(clear, kT0 + 3), Verdict::send);
    auto clear2 = clear;
    EXPECT_EQ(h.offer(clear2, kT0 + 4), Verdict::duplicate);
}

TEST(SnmpHoldDown, FlappingIsLimitedAndTheLatestStateFollowsWhenTheWindowEnds) {
    s::HoldDown h(std::chrono::seconds(60), 2);
    int sent = 0;
    for (int i = 0; i < 10; ++i) {
        auto r = note("hsmFanAlarm", s::Action::raise, "sensor:FAN1");
        auto c = note("hsmFanClear", s::Action::clear, "sensor:FAN1");
        sent += h.offer(r, kT0 + i) == Verdict::send;
        sent += h.offer(c, kT0 + i) == Verdict::send;
    }
    auto last = note("hsmFanAlarm", s::Action::raise, "sensor:FAN1");
    sent += h.offer(last, kT0 + 20) == Verdict::send;
    EXPECT_EQ(sent, 2);
    EXPECT_TRUE(h.due(kT0 + 59'999).empty());
    ASSERT_EQ(h.next_due(), kT0 + 60'000);
    auto due = h.due(kT0 + 60'000);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].def->name, "hsmFanAlarm");
    EXPECT_EQ(due[0].get("hsmNotifySuppressed"), "18");
    EXPECT_TRUE(h.due(kT0 + 200'000).empty());
    // It goes away later: the clear is sent.
    auto c = note("hsmFanClear", s::Action::clear, "sensor:FAN1");
    EXPECT_EQ(h.offer(c, kT0 + 200'000), Verdict::send);
}

TEST(SnmpHoldDown, FlappingBackToTheNotifiedStateSendsNothingMore) {
    s::HoldDown h(std::chrono::seconds(10), 1);
    auto r = note("hsmNtlsLinkDown", s::Action::raise, "ntls:a");
    EXPECT_EQ(h.offer(r, kT0), Verdict::send);
    auto c = note("hsmNtlsLinkUp", s::Action::clear, "ntls:a");
    EXPECT_EQ(h.offer(c, kT0 + 1), Verdict::held);
    auto r2 = note("hsmNtlsLinkDown", s::Action::raise, "ntls:a");
    EXPECT_EQ(h.offer(r2, kT0 + 2), Verdict::held);
    EXPECT_TRUE(h.due(kT0 + 10'000).empty());
    // The held count goes with the next one sent.
    auto c2 = note("hsmNtlsLinkUp", s::Action::clear, "ntls:a");
    EXPECT_EQ(h.offer(c2, kT0 + 20'000), Verdict::send);
    EXPECT_EQ(c2.get("hsmNotifySuppressed"), "2");
}

// ---- rules

s::RuleSet default_rules() {
    auto r = s::RuleSet::parse(s::RuleSet::default_rules_yaml(), "<built-in>");
    EXPECT_TRUE(r) << (r ? "" : r.error().describe());
    return r ? *r : s::RuleSet{};
}

TEST(SnmpRules, BuiltInRulesMatchWhatTheApplianceSends) {
    const auto rules = default_rules();
    const auto app = appliance_events();
    struct Case {
        appliance::SensorEvent sensor;
        std::string_view raise;
        std::string_view clear;
    };
    appliance::SensorEvent temp = fan_event(1, true);
    temp.sensor = "CPU_TEMP";
    temp.kind = appliance::SensorKind::cpu_temperature;
    temp.unit = "C";
    temp.value = 91;
    temp.threshold = 90;
    temp.level = appliance::SensorLevel::critical;
    appliance::SensorEvent psu = temp;
    psu.sensor = "PSU2";
    psu.kind = appliance::SensorKind::psu;
    psu.unit = "V";
    psu.value = 0;
    psu.present = false;
    appliance::SensorEvent disk = temp;
    disk.sensor = "DISK0";
    disk.kind = appliance::SensorKind::disk;
    disk.unit = "sectors";
    for (const auto& [event, name] :
         std::vector<std::pair<appliance::SensorEvent, std::string_view>>{{fan_event(1, true), "hsmFanAlarm"},
                                                                          {temp, "hsmTemperatureAlarm"},
                                                                          {psu, "hsmPowerSupplyAlarm"},
                                                                          {disk, "hsmDiskAlarm"}}) {
        const auto e = syslog_event(1, app.sensor(event));
        const auto n = rules.apply(e.syslog);
        ASSERT_TRUE(n) << e.syslog.msg;
        EXPECT_EQ(n->def->name, name);
        EXPECT_EQ(n->action, s::Action::raise);
        EXPECT_EQ(n->condition, "sensor:" + event.sensor);
        EXPECT_EQ(n->get("hsmNotifySensorName"), event.sensor);
        // Cleared to normal: the matching clear, same condition.
        auto cleared = event;
        cleared.type = appliance::SensorEvent::Type::cleared;
        cleared.previous_level = event.level;
        cleared.level = appliance::SensorLevel::normal;
        const auto c = rules.apply(syslog_event(2, app.sensor(cleared)).syslog);
        ASSERT_TRUE(c);
        EXPECT_EQ(c->action, s::Action::clear);
        EXPECT_EQ(c->condition, n->condition);
        EXPECT_EQ(c->severity, s::NotifySeverity::cleared);
    }
    EXPECT_EQ(rules.apply(syslog_event(3, app.sensor(temp)).syslog)->severity, s::NotifySeverity::critical);
    // A reading change is not a notification.
    auto reading = fan_event(1, true);
    reading.type = appliance::SensorEvent::Type::reading_changed;
    reading.level = appliance::SensorLevel::normal;
    EXPECT_FALSE(rules.apply(syslog_event(4, app.sensor(reading)).syslog));
    // NTLS links: down raises, up clears, one condition per client.
    const auto down = rules.apply(syslog_event(5, app.ntls_link_down("192.0.2.10", "app01", "closed")).syslog);
    ASSERT_TRUE(down);
    EXPECT_EQ(down->def->name, "hsmNtlsLinkDown");
    EXPECT_EQ(down->condition, "ntls:192.0.2.10/app01");
    const auto up = rules.apply(syslog_event(6, app.ntls_link_up("192.0.2.10", "app01")).syslog);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->def->name, "hsmNtlsLinkUp");
    EXPECT_EQ(up->condition, down->condition);
    EXPECT_FALSE(rules.apply(syslog_event(7, app.ntls_startup()).syslog));
    EXPECT_FALSE(
        rules.apply(syslog_event(8, app.login(appliance::LoginRole::admin, "admin", "10.0.0.9", false)).syslog));
}

TEST(SnmpRules, TextFallbackForLinesWithoutStructuredData) {
    const auto rules = default_rules();
    agent::SyslogFields f;
    f.app = "NTLS";
    f.host = "myLuna";
    f.severity = 5;
    f.msg = "notice : 0 : NTLS Client \"app02\" Disconnected. Link down : 192.0.2.11 (closed by peer)";
    const auto n = rules.apply(f);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->def->name, "hsmNtlsLinkDown");
    EXPECT_EQ(n->condition, "ntls:192.0.2.11/app02");
    EXPECT_EQ(n->get("hsmNotifyNtlsClient"), "192.0.2.11 app02");
}

TEST(SnmpRules, AUserRuleWithCapturesAndItsErrors) {
    auto r = s::RuleSet::parse(R"(rules:
  - name: cpu-text
    match: {app: "sysmon", msg: 'CPU usage (\d+)% above (\d+)%.*'}
    notification: hsmCpuAlarm
    action: raise
    severity: critical
    condition: "cpu"
    values: {hsmNotifyValue: "{1}", hsmNotifyThreshold: "{2}", hsmNotifySensorName: CPU}
)",
                               "rules.yaml");
    ASSERT_TRUE(r) << r.error().describe();
    agent::SyslogFields f;
    f.app = "sysmon";
    f.msg = "CPU usage 97% above 90% for 60 s";
    const auto n = r->apply(f);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->def->name, "hsmCpuAlarm");
    EXPECT_EQ(n->get("hsmNotifyValue"), "97");
    EXPECT_EQ(n->get("hsmNotifyThreshold"), "90");
    EXPECT_EQ(n->severity, s::NotifySeverity::critical);
    EXPECT_EQ(n->get("hsmNotifyAlertKind"), "rule:cpu-text");

    const std::pair<const char*, const char*> bad[] = {
        {"rules:\n  - name: x\n    match: {app: a}\n    notification: hsmNoSuch\n    action: raise\n    condition: c\n",
         "rules.yaml:4:19: 'hsmNoSuch' is not a notification"},
        {"rules:\n  - name: x\n    match: {bogus: a}\n    notification: hsmCpuAlarm\n    action: raise\n    condition: "
         "c\n",
         "rules.yaml:3:13: unknown field 'bogus'"},
        {"rules:\n  - name: x\n    match: {app: '('}\n    notification: hsmCpuAlarm\n    action: raise\n    condition: "
         "c\n",
         "rules.yaml:3:18: bad regular expression"},
        {"rules:\n  - name: x\n    match: {app: a}\n    notification: hsmCpuAlarm\n    action: raise\n",
         "needs 'condition:'"},
        {"rules:\n  - name: x\n    match: {app: a}\n    notification: hsmCpuAlarm\n    action: raise\n    condition: "
         "c\n"
         "    values: {hsmRingFillPercent: '1'}\n",
         "'hsmRingFillPercent' is not an object of hsmCpuAlarm"},
        {"rules:\n  - name: x\n    match: {app: a}\n    notification: hsmCpuAlarm\n    action: raise\n    condition: "
         "c\n"
         "    values: {hsmNotifyEventId: '1'}\n",
         "is set by the exporter"},
        {"rules:\n  - name: x\n    match: {app: a}\n    notification: hsmCpuAlarm\n    action: raise\n    condition: "
         "'{nope}'\n",
         "unknown field {nope}"},
    };
    for (const auto& [yaml, expected] : bad) {
        auto e = s::RuleSet::parse(yaml, "rules.yaml");
        ASSERT_FALSE(e) << yaml;
        EXPECT_EQ(e.error().code, s::errc::rules_error);
        EXPECT_NE(e.error().message.find(expected), std::string::npos) << e.error().message;
    }
}

TEST(SnmpRules, TheSampleRulesFileParsesAndMatches) {
    auto r = s::RuleSet::load(std::string(HSMAUDIT_SOURCE_DIR) + "/config/examples/snmp-rules.yaml");
    ASSERT_TRUE(r) << r.error().describe();
    agent::SyslogFields f;
    f.app = "sysmon";
    f.msg = "CPU usage 12% back below 80% (1 min average)";
    const auto n = r->apply(f);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->def->name, "hsmCpuClear");
    const auto app = appliance_events();
    const auto login =
        r->apply(syslog_event(1, app.login(appliance::LoginRole::admin, "admin", "10.0.0.9", false)).syslog);
    ASSERT_TRUE(login);
    EXPECT_EQ(login->def->name, "hsmSyslogEvent");
    EXPECT_EQ(login->action, s::Action::event);
}

// ---- alerts

TEST(SnmpAlertMap, EveryKindTheAgentRaisesHasANotification) {
    const std::pair<const char*, const char*> cases[] = {
        {"ring.fill_warning", "hsmRingFillWarning"},
        {"ring.fill_critical", "hsmRingFillCritical"},
        {"ring.fill_clear", "hsmRingFillClear"},
        {"ring.predicted_full", "hsmRingPredictedFull"},
        {"ring.predicted_full_clear", "hsmRingPredictedFullClear"},
        {"module.blocked", "hsmModuleBlockedNotify"},
        {"module.resumed", "hsmModuleResumedNotify"},
        {"chain.record_mac_mismatch", "hsmChainVerificationFailure"},
        {"chain.sequence_gap", "hsmChainSequenceGap"},
        {"module.boot_changed", "hsmModuleBootChange"},
        {"module.clock_backwards", "hsmModuleClockDrift"},
        {"store.quota_warning", "hsmStoreQuotaWarning"},
        {"store.quota_full", "hsmStoreQuotaFull"},
        {"store.quota_clear", "hsmStoreQuotaClear"},
        {"exporter.down", "hsmExporterDown"},
        {"exporter.up", "hsmExporterUp"},
        {"agent.started", "hsmAgentStarted"},
        {"agent.stopping", "hsmAgentStopping"},
        {"archive.failed", "hsmAgentAlert"},
        {"drain.acks_paused", "hsmAgentAlert"},
    };
    for (const auto& [kind, name] : cases) {
        agent::Alert a{kind, agent::Severity::warning, "siem: down", 0, kT0};
        const auto n = s::map_alert(a);
        ASSERT_NE(n.def, nullptr) << kind;
        EXPECT_EQ(n.def->name, name) << kind;
    }
    // Raise and clear of one condition agree.
    EXPECT_EQ(s::map_alert({"ring.fill_critical", agent::Severity::critical, "", 0, 0}).condition,
              s::map_alert({"ring.fill_clear", agent::Severity::info, "", 0, 0}).condition);
    EXPECT_EQ(s::map_alert({"drain.acks_paused", agent::Severity::critical, "", 0, 0}).condition,
              s::map_alert({"drain.acks_resumed", agent::Severity::info, "", 0, 0}).condition);
    const auto down = s::map_alert({"exporter.down", agent::Severity::warning, "exporters.kafka1: broker down", 0, 0});
    EXPECT_EQ(down.condition, "exporter:kafka1");
    EXPECT_EQ(down.get("hsmNotifyExporterName"), "kafka1");
    // The runner's own wording (agent/engine/export/runner.cpp).
    const auto runner =
        s::map_alert({"exporter.up", agent::Severity::info, "destination 'siem-2' is delivering again", 0, 0});
    EXPECT_EQ(runner.condition, "exporter:siem-2");
    EXPECT_EQ(s::map_alert({"retention.x_clear", agent::Severity::info, "", 0, 0}).action, s::Action::clear);
}

// ---- engine state

TEST(SnmpEngine, StableIdAndBootsIncrementedPerStart) {
    const auto dir = temp_dir();
    auto a = s::load_and_boot(dir, {}, 32473);
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->boots, 1u);
    ASSERT_EQ(a->engine_id.size(), 13u);
    EXPECT_EQ(a->engine_id_hex().substr(0, 12), "0x80007ed905");  // 0x80 | PEN 32473, format 5
    auto b = s::load_and_boot(dir, {}, 32473);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->engine_id, a->engine_id);
    EXPECT_EQ(b->boots, 2u);
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/snmp-engine.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // A configured ID replaces it and restarts the boots.
    auto id = s::parse_engine_id("0x8000000001020304");
    ASSERT_TRUE(id);
    auto c = s::load_and_boot(dir, *id, 32473);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->engine_id_hex(), "0x8000000001020304");
    EXPECT_EQ(c->boots, 1u);
    // A damaged file is an error, not a silent new identity.
    std::ofstream(dir + "/snmp-engine.json") << "{\"engine_id\": 12";
    auto d = s::load_and_boot(dir, {}, 32473);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, s::errc::state_error);
    fs::remove_all(dir);
    EXPECT_FALSE(s::parse_engine_id("0x80"));
    EXPECT_FALSE(s::parse_engine_id("zz00000000"));
}

// ---- configuration

class SnmpConfig : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = temp_dir();
        write(dir_ + "/auth", "auth-pass-1234\n", 0600);
        write(dir_ + "/priv", "priv-pass-5678\n", 0600);
        write(dir_ + "/community", "public\n", 0600);
    }
    void TearDown() override { fs::remove_all(dir_); }
    static void write(const std::string& p, const std::string& text, unsigned mode) {
        std::ofstream(p) << text;
        ::chmod(p.c_str(), mode);
    }
    Result<s::SnmpOptions> options(const std::string& yaml) {
        auto c = base::Config::parse(yaml, "hsmauditd.yaml", s::config_keys());
        if (!c) return std::move(c).error();
        return s::options_from_config(*c, "noc", dir_);
    }
    std::string dir_;
};

TEST_F(SnmpConfig, NestedReceiversWithDefaults) {
    auto o = options(
        "exporters:\n  noc:\n    snmp:\n      receivers: a,b\n      receiver:\n        a:\n"
        "          address: udp:127.0.0.1:162\n          user: hsmaudit\n          auth_password_file: " +
        dir_ + "/auth\n          priv_password_file: " + dir_ +
        "/priv\n        b:\n          address: udp:127.0.0.1:1162\n          version: v2c\n"
        "          notify: inform\n          community_file: " +
        dir_ + "/community\n");
    ASSERT_TRUE(o) << o.error().describe();
    ASSERT_EQ(o->receivers.size(), 2u);
    EXPECT_TRUE(o->receivers[0].v3);
    EXPECT_FALSE(o->receivers[0].inform);
    EXPECT_EQ(o->receivers[0].auth, "SHA-256");
    EXPECT_EQ(o->receivers[0].priv, "AES");
    EXPECT_EQ(o->receivers[0].auth_password, "auth-pass-1234");
    EXPECT_EQ(o->receivers[0].timeout, std::chrono::seconds(1));
    EXPECT_FALSE(o->receivers[1].v3);
    EXPECT_TRUE(o->receivers[1].inform);
    EXPECT_EQ(o->receivers[1].community, "public");
    EXPECT_EQ(o->holddown, std::chrono::seconds(60));
    EXPECT_EQ(o->flap_limit, 2u);
    EXPECT_GT(o->rules.rules().size(), 10u);  // the built-in rules
}

TEST_F(SnmpConfig, ErrorsNameTheKeyOrFile) {
    write(dir_ + "/open", "public\n", 0644);
    const std::string head = "exporters:\n  noc:\n    snmp:\n      receivers: a\n      receiver:\n        a:\n";
    const std::pair<std::string, std::string> cases[] = {
        {head + "          version: v2c\n", "exporters.noc.snmp.receiver.a.address is required"},
        {head + "          address: udp:127.0.0.1:162\n          version: v2c\n          community_file: " + dir_ +
             "/open\n",
         "exporters.noc.snmp.receiver.a.community_file"},
        {head + "          address: udp:127.0.0.1:162\n          user: u\n          auth: MD5\n", "expected one of"},
        {head + "          address: udp:127.0.0.1:162\n", "user is required"},
        {"exporters:\n  noc:\n    snmp:\n      receivers: ''\n", "name at least one receiver"},
    };
    for (const auto& [yaml, expected] : cases) {
        auto o = options(yaml);
        ASSERT_FALSE(o) << yaml;
        EXPECT_NE(o.error().message.find(expected), std::string::npos) << o.error().message;
    }
    // The refused community file names its mode.
    auto o = options(cases[1].first);
    ASSERT_FALSE(o);
    EXPECT_NE(o.error().message.find("644"), std::string::npos) << o.error().message;
}

// ---- varbinds from the agent's status snapshot

// The candidates: every alert kind the agent raises (with a record's seq, as chain and clock alerts
// carry), every syslog line the built-in and the sample rules map, and a memory rule of our own
// (no built-in one exists).
std::vector<agent::Event> every_kind_of_event() {
    std::vector<agent::Event> out;
    std::uint64_t pos = 0;
    for (const char* kind : {"ring.fill_warning",
                             "ring.fill_critical",
                             "ring.fill_clear",
                             "ring.predicted_full",
                             "ring.predicted_full_clear",
                             "module.blocked",
                             "module.resumed",
                             "module.boot_changed",
                             "module.clock_backwards",
                             "chain.record_mac_mismatch",
                             "chain.sequence_gap",
                             "store.quota_warning",
                             "store.quota_full",
                             "store.quota_clear",
                             "drain.acks_paused",
                             "exporter.down",
                             "exporter.up",
                             "agent.started",
                             "agent.stopping",
                             "archive.failed"})
        out.push_back(alert_event(++pos, kind, agent::Severity::warning, "destination 'siem': test", 4711));
    const auto app = appliance_events();
    appliance::SensorEvent temp = fan_event(1, true);
    temp.sensor = "CPU_TEMP";
    temp.kind = appliance::SensorKind::cpu_temperature;
    temp.unit = "C";
    temp.value = 91;
    temp.threshold = 90;
    appliance::SensorEvent psu = temp;
    psu.sensor = "PSU2";
    psu.kind = appliance::SensorKind::psu;
    psu.unit = "V";
    psu.value = 11;
    psu.threshold = 12;
    appliance::SensorEvent disk = temp;
    disk.sensor = "DISK0";
    disk.kind = appliance::SensorKind::disk;
    disk.unit = "sectors";
    for (auto sensor : {fan_event(1, true), temp, psu, disk}) {
        out.push_back(syslog_event(++pos, app.sensor(sensor)));
        sensor.type = appliance::SensorEvent::Type::cleared;
        sensor.previous_level = sensor.level;
        sensor.level = appliance::SensorLevel::normal;
        out.push_back(syslog_event(++pos, app.sensor(sensor)));
    }
    out.push_back(syslog_event(++pos, app.ntls_link_down("192.0.2.10", "app01", "closed")));
    out.push_back(syslog_event(++pos, app.ntls_link_up("192.0.2.10", "app01")));
    out.push_back(syslog_event(++pos, app.login(appliance::LoginRole::admin, "admin", "10.0.0.9", false)));
    for (const char* msg : {"CPU usage 97% above 90% for 60 s", "CPU usage 12% back below 80% (1 min average)",
                            "Memory usage 95% above 90%", "Memory usage 40% back below 80%"}) {
        agent::Event e = alert_event(++pos, "", agent::Severity::info, "");
        e.stream = agent::Stream::syslog;
        e.syslog.app = "sysmon";
        e.syslog.host = "myLuna";
        e.syslog.peer = "192.0.2.7:514";
        e.syslog.msg = msg;
        e.event_id = agent::make_event_id(e);
        out.push_back(std::move(e));
    }
    return out;
}

constexpr const char* kMemoryRules = R"(rules:
  - name: memory-high
    match: {app: "sysmon", msg: 'Memory usage (\d+)% above (\d+)%.*'}
    notification: hsmMemoryAlarm
    action: raise
    condition: "sensor:memory"
    values: {hsmNotifySensorName: memory, hsmNotifySensorType: "6", hsmNotifyValue: "{1}", hsmNotifyThreshold: "{2}",
             hsmNotifyUnit: percent}
  - name: memory-normal
    match: {app: "sysmon", msg: 'Memory usage (\d+)% back below (\d+)%.*'}
    notification: hsmMemoryClear
    action: clear
    condition: "sensor:memory"
    values: {hsmNotifySensorName: memory, hsmNotifySensorType: "6", hsmNotifyValue: "{1}", hsmNotifyThreshold: "{2}",
             hsmNotifyUnit: percent}
)";

TEST(SnmpStatusVarbinds, EveryVarbindOfEveryNotificationIsFilledFromARealStatusSnapshot) {
    // The snapshot as a reader gets it: built, written as status.json would be, read back.
    const nlohmann::json written = full_agent_status();
    const auto status = std::make_shared<const agent::AgentStatus>(written.get<agent::AgentStatus>());
    ASSERT_EQ(*status, full_agent_status());

    const auto dir = temp_dir();
    s::SnmpOptions o;
    o.name = "noc";
    o.state_dir = dir;
    o.base = *s::parse_oid(s::kDefaultEnterpriseOid);
    s::ReceiverConfig r;
    r.name = "nms";
    r.address = "udp:127.0.0.1:9";  // never sent to: only notification_for() runs
    r.v3 = false;
    r.community = "public";
    o.receivers.push_back(r);
    auto mine = s::RuleSet::parse(kMemoryRules, "memory.yaml");
    ASSERT_TRUE(mine) << mine.error().describe();
    auto sample = s::RuleSet::load(std::string(HSMAUDIT_SOURCE_DIR) + "/config/examples/snmp-rules.yaml");
    ASSERT_TRUE(sample) << sample.error().describe();
    ASSERT_TRUE(mine->append(*sample));
    ASSERT_TRUE(mine->append(default_rules()));
    o.rules = std::move(*mine);
    auto e = s::SnmpExporter::create(
        // NOLINTNEXTLINE(performance-no-automatic-move): the provider hands out copies of one snapshot
        std::move(o), [status] { return status; }, [] { return kT0; });
    ASSERT_TRUE(e) << e.error().describe();

    std::map<std::string, s::Notification, std::less<>> by_name;
    for (const auto& event : every_kind_of_event())
        if (auto n = (*e)->notification_for(event)) by_name.emplace(std::string(n->def->name), std::move(*n));

    // Driven by the MIB's table: every notification it defines, every object it carries.
    for (const auto& def : s::mib_notifications()) {
        const auto it = by_name.find(def.name);
        ASSERT_NE(it, by_name.end()) << def.name << ": no agent event maps to it (add one to every_kind_of_event)";
        const s::Notification& n = it->second;
        for (const auto object : def.objects) {
            if (object == "hsmNotifyTime") {  // the sender renders the notification's time
                EXPECT_NE(n.time_ms, 0) << def.name;
                continue;
            }
            EXPECT_FALSE(n.get(object).empty()) << def.name << ": " << object << " is not filled";
        }
    }
    // The objects that come from the status carry the snapshot's values, not defaults.
    const auto& fill = by_name.at("hsmRingFillWarning");
    EXPECT_EQ(fill.get("hsmRingUsedRecords"), "4711");
    EXPECT_EQ(fill.get("hsmRingFillPercent"), "42");
    EXPECT_EQ(fill.get("hsmRingSecondsToFull"), "37");
    EXPECT_EQ(fill.get("hsmModuleSerial"), "150123");
    EXPECT_EQ(by_name.at("hsmModuleBootChange").get("hsmModuleBootCounter"), "7");
    EXPECT_EQ(by_name.at("hsmChainVerificationFailure").get("hsmChainFaults"), "2");
    EXPECT_EQ(by_name.at("hsmStoreQuotaWarning").get("hsmStoreUsed"), "3000");
    EXPECT_EQ(by_name.at("hsmStoreQuotaWarning").get("hsmStoreQuota"), "4000");
    EXPECT_EQ(by_name.at("hsmStoreQuotaWarning").get("hsmDrainPaused"), "1");
    EXPECT_EQ(by_name.at("hsmModuleResumedNotify").get("hsmModuleBlocked"), "2");  // the alert is newer
    // Every object the exporter's status table names is one the MIB defines.
    for (const auto& v : s::status_varbinds()) EXPECT_NE(s::find_object(v.object), nullptr) << v.object;
    fs::remove_all(dir);
}

TEST(SnmpStatusVarbinds, WithoutASnapshotTheStateVarbindsAreLeftToTheSenderDefaults) {
    const auto dir = temp_dir();
    s::SnmpOptions o;
    o.name = "noc";
    o.state_dir = dir;
    o.base = *s::parse_oid(s::kDefaultEnterpriseOid);
    s::ReceiverConfig r;
    r.name = "nms";
    r.address = "udp:127.0.0.1:9";
    r.v3 = false;
    r.community = "public";
    o.receivers.push_back(r);
    auto e = s::SnmpExporter::create(
        std::move(o), [] { return std::shared_ptr<const agent::AgentStatus>(); }, [] { return kT0; });
    ASSERT_TRUE(e) << e.error().describe();
    const auto n = (*e)->notification_for(alert_event(1, "ring.fill_warning", agent::Severity::warning, "81%"));
    ASSERT_TRUE(n);
    EXPECT_EQ(n->get("hsmRingUsedRecords"), "");
    EXPECT_EQ(n->get("hsmRingSecondsToFull"), "-1");
    EXPECT_EQ(n->get("hsmModuleSerial"), "150123");  // the event's own
    fs::remove_all(dir);
}

}  // namespace
}  // namespace hsmaudit::testing::snmp
