// The SNMP exporter against Debian's snmptrapd on loopback (labels integration, snmp): v2c and v3
// authPriv traps and informs, every notification checked by its HSMAUDIT-MIB name and varbinds,
// an inform retried until a late receiver acknowledges it, wrong v3 credentials refused by the
// receiver and counted by the agent, and a flapping condition held down to the configured count.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "base/config/config.h"
#include "exporters/snmp/snmp_exporter.h"
#include "tests/integration/exporters/snmp/snmp_test_support.h"
#include "tests/unit/exporters/snmp/snmp_events.h"

namespace hsmaudit::testing::snmp {
namespace {

using exporters::snmp::SnmpExporter;
namespace fs = std::filesystem;

constexpr const char* kAuth = "auth-pass-1234";
constexpr const char* kPriv = "priv-pass-5678";

class SnmpTrapTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(base_mib_dir().empty()) << kMissingMibs;
        dir_ = make_temp_dir();
        ASSERT_FALSE(dir_.empty());
        fs::create_directories(dir_ + "/state");
        write_file(dir_ + "/community", "public\n");
        write_file(dir_ + "/auth", std::string(kAuth) + "\n");
        write_file(dir_ + "/priv", std::string(kPriv) + "\n");
        write_file(dir_ + "/wrong-auth", "not-the-password\n");
        port_ = free_udp_port();
    }
    void TearDown() override {
        receiver_.reset();
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // One receiver named `r` on the test port; `extra` adds keys under it.
    std::string receiver_yaml(const std::string& r, const std::string& version, const std::string& notify,
                              const std::string& auth_file = "auth") {
        std::string y = "        " + r + ":\n          address: udp:127.0.0.1:" + std::to_string(port_) +
                        "\n          version: " + version + "\n          notify: " + notify +
                        "\n          timeout: 200ms\n          retries: 1\n          retry_interval: 300ms\n";
        if (version == "v2c") {
            y += "          community_file: " + dir_ + "/community\n";
        } else {
            y += "          user: hsmaudit\n          auth: SHA-256\n          auth_password_file: " + dir_ + "/" +
                 auth_file + "\n          priv: AES\n          priv_password_file: " + dir_ + "/priv\n";
        }
        return y;
    }

    std::unique_ptr<SnmpExporter> make_exporter(const std::string& receivers, const std::string& receiver_sections,
                                                const std::string& extra = "") {
        const std::string yaml = "exporters:\n  noc:\n    snmp:\n      receivers: " + receivers + "\n" + extra +
                                 "      receiver:\n" + receiver_sections;
        auto config = base::Config::parse(yaml, "test.yaml", exporters::snmp::config_keys());
        EXPECT_TRUE(config) << (config ? "" : config.error().describe());
        if (!config) return nullptr;
        auto options = exporters::snmp::options_from_config(*config, "noc", dir_ + "/state");
        EXPECT_TRUE(options) << (options ? "" : options.error().describe());
        if (!options) return nullptr;
        auto e = SnmpExporter::create(std::move(*options), nullptr, [this] { return now_ms_.load(); });
        EXPECT_TRUE(e) << (e ? "" : e.error().describe());
        if (!e) return nullptr;
        return std::move(*e);
    }

    // snmptrapd knows our user under our engine ID (traps) and under its own (informs).
    void start_receiver(const std::string& engine_id_hex) {
        const std::string conf = "createUser -e " + engine_id_hex + " hsmaudit SHA-256 " + kAuth + " AES " + kPriv +
                                 "\ncreateUser hsmaudit SHA-256 " + kAuth + " AES " + kPriv +
                                 "\nauthUser log,execute hsmaudit priv\nauthCommunity log,execute public\n";
        fs::create_directories(dir_ + "/trapd");
        receiver_ = std::make_unique<TrapReceiver>(dir_ + "/trapd", port_, conf);
        ASSERT_TRUE(receiver_->running()) << receiver_->errors();
    }

    // Sends `events`, then waits (bounded) until all are acknowledged; returns the count acknowledged.
    std::uint64_t deliver(SnmpExporter& e, const std::vector<agent::Event>& events) {
        EXPECT_TRUE(e.connect());
        EXPECT_TRUE(e.send(events));
        std::uint64_t acked = 0;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (acked < events.size() && std::chrono::steady_clock::now() < until) {
            auto a = e.acknowledged(std::chrono::milliseconds(100));
            EXPECT_TRUE(a);
            if (!a) break;
            acked = *a;
        }
        return acked;
    }

    std::vector<agent::Event> sample_events() {
        const auto app = appliance_events();
        return {
            alert_event(1, "ring.fill_warning", agent::Severity::warning, "ring 81% full (warning at 80%)"),
            alert_event(2, "module.blocked", agent::Severity::critical, "module 150123 blocked: ring at its reserve"),
            alert_event(3, "chain.record_mac_mismatch", agent::Severity::critical,
                        "hsm_150123_00000002.log:17: record 4711: MAC does not verify", 4711),
            alert_event(4, "exporter.down", agent::Severity::warning, "destination 'siem' is down: connection refused"),
            syslog_event(5, app.sensor(fan_event(2, true))),
            syslog_event(6, app.ntls_link_down("192.0.2.10", "app01", "closed by peer")),
            syslog_event(7, app.sensor(fan_event(2, false))),
            alert_event(8, "ring.fill_clear", agent::Severity::info, "ring back to 40%"),
        };
    }

    void check_sample(const std::vector<std::string>& got) {
        ASSERT_EQ(got.size(), 8u) << receiver_->log();
        const std::string p = "HSMAUDIT-MIB::";
        EXPECT_EQ(trap_name(got[0]), p + "hsmRingFillWarning");
        EXPECT_EQ(varbind(got[0], p + "hsmNotifyCondition.0"), "ring.fill");
        EXPECT_EQ(varbind(got[0], p + "hsmNotifySeverity.0"), "warning(3)");
        EXPECT_EQ(varbind(got[0], p + "hsmModuleSerial.0"), "150123");
        EXPECT_EQ(varbind(got[0], p + "hsmNotifyEventId.0"), "150123-alerts-1");
        EXPECT_NE(
            varbind(got[0], p + "hsmNotifyLogReference.0").find("[myLuna:- / alerts.jsonl:1 / 2026-01-15T10:00:01"),
            std::string::npos);
        EXPECT_EQ(trap_name(got[1]), p + "hsmModuleBlockedNotify");
        EXPECT_EQ(varbind(got[1], p + "hsmModuleBlocked.0"), "true(1)");
        EXPECT_EQ(varbind(got[1], p + "hsmNotifySeverity.0"), "critical(4)");
        EXPECT_EQ(trap_name(got[2]), p + "hsmChainVerificationFailure");
        EXPECT_EQ(varbind(got[2], p + "hsmNotifyAlertKind.0"), "chain.record_mac_mismatch");
        EXPECT_EQ(varbind(got[2], p + "hsmNotifyRecordSeq.0"), "4711");
        EXPECT_EQ(trap_name(got[3]), p + "hsmExporterDown");
        EXPECT_EQ(varbind(got[3], p + "hsmNotifyExporterName.0"), "siem");
        EXPECT_EQ(trap_name(got[4]), p + "hsmFanAlarm");
        EXPECT_EQ(varbind(got[4], p + "hsmNotifyCondition.0"), "sensor:FAN2");
        EXPECT_EQ(varbind(got[4], p + "hsmNotifySensorName.0"), "FAN2");
        EXPECT_EQ(varbind(got[4], p + "hsmNotifySensorType.0"), "fan(2)");
        EXPECT_EQ(varbind(got[4], p + "hsmNotifyValue.0"), "2500");
        EXPECT_EQ(varbind(got[4], p + "hsmNotifyThreshold.0"), "3000");
        EXPECT_NE(varbind(got[4], p + "hsmNotifyLogReference.0").find("/ ipmievd[811] / assert]"), std::string::npos);
        EXPECT_EQ(trap_name(got[5]), p + "hsmNtlsLinkDown");
        EXPECT_EQ(varbind(got[5], p + "hsmNotifyNtlsClient.0"), "192.0.2.10 app01");
        EXPECT_EQ(trap_name(got[6]), p + "hsmFanClear");
        EXPECT_EQ(varbind(got[6], p + "hsmNotifySeverity.0"), "cleared(1)");
        EXPECT_EQ(varbind(got[6], p + "hsmNotifyCondition.0"), "sensor:FAN2");
        EXPECT_EQ(trap_name(got[7]), p + "hsmRingFillClear");
        for (const auto& line : got) {
            // Varbinds 1 and 2 are sysUpTime.0 and snmpTrapOID.0, in that order.
            const auto up = line.find("SNMPv2-MIB::sysUpTime.0 = Timeticks:");
            const auto oid = line.find("SNMPv2-MIB::snmpTrapOID.0 = OID:");
            EXPECT_NE(up, std::string::npos) << line;
            EXPECT_LT(up, oid) << line;
            EXPECT_EQ(line.find("HSMAUDIT-MIB::"), line.find("HSMAUDIT-MIB::", oid)) << line;
        }
    }

    std::string dir_;
    int port_ = 0;
    std::atomic<std::int64_t> now_ms_{kT0};
    std::unique_ptr<TrapReceiver> receiver_;
};

TEST_F(SnmpTrapTest, V2cTrapsArriveWithTheirNamesAndVarbinds) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v2c", "trap"));
    ASSERT_TRUE(e);
    start_receiver(e->engine().engine_id_hex());
    const auto events = sample_events();
    EXPECT_EQ(deliver(*e, events), events.size());
    check_sample(receiver_->wait_for(8));
    EXPECT_EQ(e->probe().traps_sent, 8u);
}

TEST_F(SnmpTrapTest, V3AuthPrivTrapsFromOurPersistedEngine) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v3", "trap"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->engine().boots, 1u);
    start_receiver(e->engine().engine_id_hex());
    const auto events = sample_events();
    EXPECT_EQ(deliver(*e, events), events.size());
    check_sample(receiver_->wait_for(8));
    EXPECT_EQ(receiver_->log().find("Authentication failed"), std::string::npos);

    // A restart keeps the engine ID, increments the boots, and the receiver still accepts its traps.
    const auto id = e->engine().engine_id_hex();
    e.reset();
    auto again = make_exporter("nms", receiver_yaml("nms", "v3", "trap"));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->engine().engine_id_hex(), id);
    EXPECT_EQ(again->engine().boots, 2u);
    EXPECT_EQ(deliver(*again, {alert_event(9, "agent.started", agent::Severity::info, "hsmauditd started")}), 1u);
    const auto got = receiver_->wait_for(9);
    ASSERT_EQ(got.size(), 9u) << receiver_->log();
    EXPECT_EQ(trap_name(got[8]), "HSMAUDIT-MIB::hsmAgentStarted");
}

TEST_F(SnmpTrapTest, SeveralReceiversEachWithItsOwnVersion) {
    auto e = make_exporter("a, b", receiver_yaml("a", "v2c", "trap") + receiver_yaml("b", "v3", "inform"));
    ASSERT_TRUE(e);
    start_receiver(e->engine().engine_id_hex());
    EXPECT_EQ(deliver(*e, {alert_event(1, "store.quota_warning", agent::Severity::warning, "store at 90%")}), 1u);
    const auto got = receiver_->wait_for(2);
    ASSERT_EQ(got.size(), 2u) << receiver_->log();
    EXPECT_EQ(trap_name(got[0]), "HSMAUDIT-MIB::hsmStoreQuotaWarning");
    EXPECT_EQ(trap_name(got[1]), "HSMAUDIT-MIB::hsmStoreQuotaWarning");
    const auto stats = e->receiver_stats();
    ASSERT_EQ(stats.size(), 2u);
    EXPECT_EQ(stats[0].mode, "v2c trap");
    EXPECT_EQ(stats[1].mode, "v3 inform");
    EXPECT_EQ(stats[1].acknowledged, 1u);
}

TEST_F(SnmpTrapTest, InformIsRetriedUntilALateReceiverAcknowledges) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v2c", "inform"));
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(std::vector<agent::Event>{
        alert_event(1, "module.blocked", agent::Severity::critical, "module 150123 blocked")}));
    // No receiver yet: not acknowledged, and the timeouts are counted.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (e->probe().inform_timeouts < 2 && std::chrono::steady_clock::now() < until) {
        auto a = e->acknowledged(std::chrono::milliseconds(100));
        ASSERT_TRUE(a);
        EXPECT_EQ(*a, 0u);
    }
    EXPECT_GE(e->probe().inform_timeouts, 2u);
    EXPECT_EQ(e->probe().informs_acked, 0u);

    start_receiver(e->engine().engine_id_hex());
    std::uint64_t acked = 0;
    const auto until2 = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (acked == 0 && std::chrono::steady_clock::now() < until2)
        acked = *e->acknowledged(std::chrono::milliseconds(100));
    EXPECT_EQ(acked, 1u);
    EXPECT_EQ(e->probe().informs_acked, 1u);
    EXPECT_GE(e->probe().informs_sent, 3u);  // the first try and at least two more
    const auto got = receiver_->wait_for(1);
    ASSERT_GE(got.size(), 1u);
    EXPECT_EQ(trap_name(got[0]), "HSMAUDIT-MIB::hsmModuleBlockedNotify");
}

TEST_F(SnmpTrapTest, WrongV3TrapCredentialsAreRejectedByTheReceiver) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v3", "trap", "wrong-auth"));
    ASSERT_TRUE(e);
    start_receiver(e->engine().engine_id_hex());
    // The agent cannot know a trap was refused: it is "acknowledged" once sent (docs/SNMP.md).
    EXPECT_EQ(deliver(*e, {alert_event(1, "ring.fill_critical", agent::Severity::critical, "ring 95%")}), 1u);
    EXPECT_EQ(e->probe().traps_sent, 1u);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (receiver_->log().find("Authentication failed for hsmaudit") == std::string::npos &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_NE(receiver_->log().find("Authentication failed for hsmaudit"), std::string::npos) << receiver_->log();
    EXPECT_TRUE(receiver_->notifications().empty());
}

TEST_F(SnmpTrapTest, WrongV3InformCredentialsAreRefusedAndCounted) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v3", "inform", "wrong-auth"));
    ASSERT_TRUE(e);
    start_receiver(e->engine().engine_id_hex());
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(
        e->send(std::vector<agent::Event>{alert_event(1, "ring.fill_critical", agent::Severity::critical, "95%")}));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (e->probe().inform_reports + e->probe().inform_timeouts == 0 && std::chrono::steady_clock::now() < until) {
        auto a = e->acknowledged(std::chrono::milliseconds(100));
        ASSERT_TRUE(a);
        EXPECT_EQ(*a, 0u);  // never acknowledged
    }
    // The receiver answers with an unauthenticated report, which net-snmp cannot trust and drops:
    // the agent counts the inform unanswered and names the likely cause.
    EXPECT_GE(e->probe().inform_reports + e->probe().inform_timeouts, 1u);
    EXPECT_EQ(e->probe().informs_acked, 0u);
    const auto stats = e->receiver_stats();
    ASSERT_EQ(stats.size(), 1u);
    EXPECT_GE(stats[0].reports + stats[0].timeouts, 1u);
    EXPECT_NE(stats[0].last_error.find("credentials"), std::string::npos) << stats[0].last_error;
    EXPECT_NE(receiver_->log().find("Authentication failed for hsmaudit"), std::string::npos) << receiver_->log();
    EXPECT_TRUE(receiver_->notifications().empty());
}

TEST_F(SnmpTrapTest, AFlappingSensorProducesTheConfiguredNumberOfTraps) {
    auto e = make_exporter("nms", receiver_yaml("nms", "v2c", "trap"), "      holddown: 60s\n      flap_limit: 2\n");
    ASSERT_TRUE(e);
    start_receiver(e->engine().engine_id_hex());
    const auto app = appliance_events();
    std::vector<agent::Event> flaps;
    std::uint64_t pos = 1;
    for (int i = 0; i < 10; ++i) {
        flaps.push_back(syslog_event(pos++, app.sensor(fan_event(3, true))));
        flaps.push_back(syslog_event(pos++, app.sensor(fan_event(3, false))));
    }
    flaps.push_back(syslog_event(pos++, app.sensor(fan_event(3, true))));  // ends raised
    EXPECT_EQ(deliver(*e, flaps), flaps.size());
    auto got = receiver_->wait_for(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // anything more would have arrived by now
    got = receiver_->notifications();
    ASSERT_EQ(got.size(), 2u) << receiver_->log();
    EXPECT_EQ(trap_name(got[0]), "HSMAUDIT-MIB::hsmFanAlarm");
    EXPECT_EQ(trap_name(got[1]), "HSMAUDIT-MIB::hsmFanClear");
    EXPECT_EQ(e->probe().held_down, 19u);

    // The window ends (injected clock): the latest state, raised, is sent once, with the count held back.
    now_ms_ += 61'000;
    EXPECT_TRUE(e->acknowledged(std::chrono::milliseconds(100)));
    got = receiver_->wait_for(3);
    ASSERT_EQ(got.size(), 3u) << receiver_->log();
    EXPECT_EQ(trap_name(got[2]), "HSMAUDIT-MIB::hsmFanAlarm");
    EXPECT_EQ(varbind(got[2], "HSMAUDIT-MIB::hsmNotifySuppressed.0"), "18");

    // It goes away: the clear is sent.
    EXPECT_EQ(deliver(*e, {syslog_event(pos++, app.sensor(fan_event(3, false)))}), 1u);
    got = receiver_->wait_for(4);
    ASSERT_EQ(got.size(), 4u) << receiver_->log();
    EXPECT_EQ(trap_name(got[3]), "HSMAUDIT-MIB::hsmFanClear");
}

}  // namespace
}  // namespace hsmaudit::testing::snmp
