#include "hsmcore/appliance/syslog_format.h"

#include <gtest/gtest.h>

#include <regex>

#include "hsmcore/appliance/appliance_events.h"
#include "hsmcore/appliance/errc.h"
#include "hsmcore/appliance/syslog_sender.h"

namespace hsmaudit::appliance {
namespace {

using namespace std::chrono;

// 2026-11-24T06:29:00.012345Z
const system_clock::time_point kT0 = sys_days{year{2026} / 11 / 24} + 6h + 29min + 12345us;

TEST(SyslogFormat, PriIsFacilityTimesEightPlusSeverity) {
    EXPECT_EQ(pri(Facility::local5, Severity::informational), 174);
    EXPECT_EQ(pri(Facility::kern, Severity::emergency), 0);
    EXPECT_EQ(pri(Facility::daemon, Severity::critical), 26);
    EXPECT_EQ(pri(Facility::local3, Severity::notice), 157);
}

TEST(SyslogFormat, Rfc3339IsUtcWithMicroseconds) {
    EXPECT_EQ(format_rfc3339(kT0), "2026-11-24T06:29:00.012345Z");
    EXPECT_EQ(format_rfc3339(sys_days{year{2012} / 2 / 29} + 23h + 59min + 59s + 999999us),
              "2012-02-29T23:59:59.999999Z");
    EXPECT_EQ(format_rfc3339(system_clock::time_point{}), "1970-01-01T00:00:00.000000Z");
}

TEST(SyslogFormat, FullMessageWithEscapedStructuredData) {
    SyslogRecord r;
    r.facility = Facility::local5;
    r.severity = Severity::warning;
    r.timestamp = kT0;
    r.hostname = "myLuna";
    r.app_name = "lunash";
    r.procid = "2345";
    r.msgid = "LOGINFAIL";
    r.structured_data.push_back({"login@32473", {{"user", "a\"b\\c]d"}, {"from", "10.0.0.9"}}});
    r.msg = "HSM Admin Login: incorrect password or PED key";
    EXPECT_EQ(format_rfc5424(r),
              "<172>1 2026-11-24T06:29:00.012345Z myLuna lunash 2345 LOGINFAIL "
              "[login@32473 user=\"a\\\"b\\\\c\\]d\" from=\"10.0.0.9\"] "
              "HSM Admin Login: incorrect password or PED key");
}

TEST(SyslogFormat, HeaderFieldsAreMadeConformant) {
    SyslogRecord r;
    r.timestamp = kT0;
    r.hostname = "my host\n";
    r.app_name = std::string(60, 'a');
    r.msg = "";
    const std::string out = format_rfc5424(r);
    EXPECT_EQ(out, "<174>1 2026-11-24T06:29:00.012345Z my_host_ " + std::string(48, 'a') + " - - -");
}

TEST(SyslogFormat, OctetCountingFrame) {
    EXPECT_EQ(frame_octet_counting("<13>1 - - - - - - hi"), "20 <13>1 - - - - - - hi");
    EXPECT_EQ(frame_octet_counting(""), "0 ");
}

TEST(SyslogDestination, ParsesTheThreeKinds) {
    auto u = SyslogDestination::parse("unix:/run/hsm/syslog.sock");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->kind, SyslogDestination::Kind::unix_datagram);
    EXPECT_EQ(u->path, "/run/hsm/syslog.sock");
    auto d = SyslogDestination::parse("udp:127.0.0.1:514");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->kind, SyslogDestination::Kind::udp);
    EXPECT_EQ(d->port, 514);
    EXPECT_EQ(d->to_string(), "udp:127.0.0.1:514");
    auto t = SyslogDestination::parse("tcp:[::1]:601");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->host, "::1");
    EXPECT_EQ(t->to_string(), "tcp:[::1]:601");
    auto l = SyslogDestination::parse("tcp:localhost:601");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->host, "127.0.0.1");
}

TEST(SyslogDestination, BadDestinationsAreNamed) {
    const struct {
        const char* text;
        const char* says;
    } cases[] = {
        {"127.0.0.1:514", "scheme"},
        {"smtp:127.0.0.1:25", "not unix, udp or tcp"},
        {"udp:127.0.0.1", "HOST:PORT"},
        {"udp:127.0.0.1:0", "1..65535"},
        {"tcp:127.0.0.1:70000", "1..65535"},
        {"tcp:127.0.0.1:x", "1..65535"},
        {"udp:example.com:514", "not a numeric address"},
        {"unix:", "empty"},
        {"tcp::601", "HOST:PORT"},
    };
    for (const auto& c : cases) {
        auto r = SyslogDestination::parse(c.text);
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error().code, errc::invalid_argument) << c.text;
        EXPECT_NE(r.error().message.find(c.says), std::string::npos) << c.text << ": " << r.error().message;
    }
    EXPECT_FALSE(SyslogDestination::parse("unix:" + std::string(200, 'x')));
}

TEST(ApplianceEvents, LoginAndLinkMessagesFollowTheAppliance) {
    ApplianceEvents ev("myLuna", [] { return kT0; });
    const auto fail = format_rfc5424(ev.login(LoginRole::admin, "admin", "10.0.0.9", false));
    EXPECT_EQ(fail.rfind("<172>1 2026-11-24T06:29:00.012345Z myLuna lunash 2345 LOGINFAIL [login@32473 ", 0), 0u)
        << fail;
    EXPECT_NE(fail.find("HSM Admin Login: incorrect password or PED key"), std::string::npos);
    EXPECT_NE(fail.find("result=\"failure\""), std::string::npos);
    const auto audit_ok = format_rfc5424(ev.login(LoginRole::audit, "auditor", "10.0.0.7", true));
    EXPECT_EQ(audit_ok.rfind("<173>1 ", 0), 0u);
    EXPECT_NE(audit_ok.find("HSM Audit Login: auditor (audit) logged in from 10.0.0.7"), std::string::npos);
    const auto up = format_rfc5424(ev.ntls_link_up("192.0.2.10", "app01"));
    EXPECT_EQ(up.rfind("<174>1 2026-11-24T06:29:00.012345Z myLuna NTLS 1234 LINKUP ", 0), 0u) << up;
    const auto down = format_rfc5424(ev.ntls_link_down("192.0.2.10", "app01", "closed by peer"));
    EXPECT_EQ(down.rfind("<173>1 ", 0), 0u);
    EXPECT_NE(down.find("Link down : 192.0.2.10 (closed by peer)"), std::string::npos);
    const auto st = format_rfc5424(ev.ntls_startup());
    EXPECT_EQ(st, "<174>1 2026-11-24T06:29:00.012345Z myLuna NTLS 1234 STARTUP - info : 0 : Starting up NTLS........");
    const auto rs = format_rfc5424(ev.service_restart("cbs", "admin"));
    EXPECT_EQ(rs.rfind("<29>1 2026-11-24T06:29:00.012345Z myLuna systemd 1 RESTART ", 0), 0u) << rs;
}

// Every message must match the RFC 5424 header grammar (a regex of section 6).
TEST(ApplianceEvents, EveryMessageMatchesTheRfc5424Header) {
    const std::regex header(R"(^<([0-9]|[1-9][0-9]|1[0-8][0-9]|19[01])>1 \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z )"
                            R"([!-~]{1,255} [!-~]{1,48} [!-~]{1,128} [!-~]{1,32} (-|\[.*\])( .*)?$)");
    ApplianceEvents ev("my Luna", [] { return kT0; });
    SensorEvent se;
    se.sensor = "FAN1";
    se.kind = SensorKind::fan;
    se.type = SensorEvent::Type::asserted;
    se.level = SensorLevel::critical;
    se.value = 900;
    se.threshold = 1000;
    se.unit = "RPM";
    for (const auto& r : {ev.ntls_startup(), ev.ntls_link_up("a", "b"), ev.ntls_link_down("a", "b", "c"),
                          ev.login(LoginRole::monitor, "m", "x", true), ev.service_restart("s", "w"), ev.sensor(se)}) {
        const auto s = format_rfc5424(r);
        EXPECT_TRUE(std::regex_match(s, header)) << s;
    }
}

}  // namespace
}  // namespace hsmaudit::appliance
