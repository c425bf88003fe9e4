// The syslog header before CEF, LEEF and JSON (exporters.<name>.syslog_header): exact bytes for
// RFC 5424 and RFC 3164, parsed back with the syslog collector's parser (an independent reader),
// the appliance's host name and the event's time in it, the header counted in max_message_bytes,
// hostile host names, and the key's `auto` resolution and refusals.
#include <gtest/gtest.h>

#include <string>

#include "base/config/config.h"
#include "collectors/syslog/parser.h"
#include "exporters/formats/formatter.h"
#include "tests/unit/exporters/formats/test_events.h"

namespace hsmaudit::exporters::formats {
namespace {

using test::render;

FormatOptions with_header(FormatKind kind, SyslogHeader h) {
    FormatOptions o = test::options(kind);
    o.syslog_header = h;
    return o;
}

TEST(SyslogHeader, Rfc5424BeforeCefIsTheWholeBodyAfterAFixedHeader) {
    const agent::Event e = test::audit_event();  // usage, success: severity 6; local3 = 19
    const std::string body = render(test::options(FormatKind::cef), e);
    const std::string msg = render(with_header(FormatKind::cef, SyslogHeader::rfc5424), e);
    EXPECT_EQ(msg, "<158>1 2026-11-24T06:15:17.123Z hsm-a750.example.net hsmaudit - - - " + body);
    ASSERT_EQ(body.rfind("CEF:0|", 0), 0u) << body;
}

TEST(SyslogHeader, Rfc5424ParsesBackWithTheAppliancesHostAndTheEventsTime) {
    for (FormatKind kind : {FormatKind::cef, FormatKind::leef, FormatKind::json}) {
        for (const agent::Event& e :
             {test::audit_event(), test::failed_login_event(), test::syslog_event(), test::alert_event()}) {
            FormatOptions o = with_header(kind, SyslogHeader::rfc5424);
            o.app_name = "luna-audit";
            const std::string msg = render(o, e);
            const auto m = collectors::syslog::parse_message(msg);
            ASSERT_EQ(m.format, collectors::syslog::SyslogFormat::rfc5424) << msg;
            EXPECT_EQ(m.hostname, "hsm-a750.example.net") << msg;  // Event::host, not the syslog message's own
            EXPECT_EQ(m.app_name, "luna-audit");
            ASSERT_TRUE(m.timestamp.has_value()) << msg;
            EXPECT_EQ(m.timestamp->time_since_epoch().count(), e.time_ms * 1000) << msg;
            EXPECT_EQ(m.msg, render(test::options(kind), e)) << msg;
            const int facility = e.stream == agent::Stream::syslog ? e.syslog.facility : 19;
            EXPECT_EQ(m.facility, facility);
            EXPECT_EQ(m.severity, agent::syslog_severity(e));
        }
    }
}

TEST(SyslogHeader, Rfc3164HasNoYearASpacePaddedDayUtcAndATag) {
    agent::Event e = test::audit_event();
    e.time_ms = e.record.time_ms = 1793773517123;  // 2026-11-04T06:25:17.123Z
    const std::string body = render(test::options(FormatKind::leef), e);
    const std::string msg = render(with_header(FormatKind::leef, SyslogHeader::rfc3164), e);
    EXPECT_EQ(msg, "<158>Nov  4 06:25:17 hsm-a750.example.net hsmaudit: " + body);
    const auto m = collectors::syslog::parse_message(msg);
    ASSERT_EQ(m.format, collectors::syslog::SyslogFormat::rfc3164) << msg;
    EXPECT_EQ(m.hostname, "hsm-a750.example.net");
    EXPECT_EQ(m.app_name, "hsmaudit");
    EXPECT_EQ(m.msg, body);

    e.time_ms = e.record.time_ms = 1795500917123;  // 2026-11-24: two digits
    EXPECT_EQ(render(with_header(FormatKind::leef, SyslogHeader::rfc3164), e).substr(0, 21), "<158>Nov 24 06:15:17 ");
}

TEST(SyslogHeader, AppliancesSyslogKeepsItsFacilityAndTheHeaderNamesTheAppliance) {
    const agent::Event e = test::syslog_event();  // local5 (21), warning (4), from "myLuna"
    const std::string msg = render(with_header(FormatKind::cef, SyslogHeader::rfc5424), e);
    EXPECT_EQ(msg.rfind("<172>1 2026-11-24T06:15:19.250Z hsm-a750.example.net hsmaudit - - - CEF:0|", 0), 0u) << msg;
    EXPECT_NE(msg.find("shost=myLuna"), std::string::npos) << msg;  // the sender stays in the body
}

TEST(SyslogHeader, HostileHostNamesCannotBreakTheHeader) {
    agent::Event e = test::alert_event();
    e.host = "bad host:[x]\n" + std::string(300, 'h');
    const std::string m5424 = render(with_header(FormatKind::json, SyslogHeader::rfc5424), e);
    const auto p = collectors::syslog::parse_message(m5424);
    ASSERT_EQ(p.format, collectors::syslog::SyslogFormat::rfc5424) << m5424;
    EXPECT_EQ(p.hostname, "bad_host:[x]_" + std::string(242, 'h'));  // PRINTUSASCII, 255 at most
    EXPECT_EQ(p.msg, render(test::options(FormatKind::json), e));

    const std::string m3164 = render(with_header(FormatKind::json, SyslogHeader::rfc3164), e);
    const auto q = collectors::syslog::parse_message(m3164);
    ASSERT_EQ(q.format, collectors::syslog::SyslogFormat::rfc3164) << m3164;
    EXPECT_EQ(q.hostname, "bad_host__x__" + std::string(242, 'h'));  // letters, digits, . - _ only
    EXPECT_EQ(q.msg, render(test::options(FormatKind::json), e));

    e.host.clear();  // no host name: the NILVALUE, never an empty field
    EXPECT_NE(render(with_header(FormatKind::cef, SyslogHeader::rfc5424), e).find(".000Z - hsmaudit - - - CEF:0|"),
              std::string::npos);
}

TEST(SyslogHeader, CountsTowardsMaxMessageBytes) {
    agent::Event e = test::alert_event();
    e.alert.message = std::string(5000, 'x');
    e.host = std::string(255, 'h');
    for (FormatKind kind : {FormatKind::cef, FormatKind::leef, FormatKind::json}) {
        for (SyslogHeader h : {SyslogHeader::rfc5424, SyslogHeader::rfc3164}) {
            FormatOptions o = with_header(kind, h);
            o.max_message_bytes = 1024;
            const std::string msg = render(o, e);
            EXPECT_LE(msg.size(), 1024u) << to_string(kind) << " " << to_string(h);
            EXPECT_GE(msg.size(), 900u) << to_string(kind) << " " << to_string(h);  // cut to fit, not dropped
            EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
            EXPECT_TRUE(test::valid_utf8(msg));
        }
    }
}

TEST(SyslogHeader, NeverBeforeRfc5424OrHecEvenIfAskedInCode) {
    const agent::Event e = test::audit_event();
    EXPECT_EQ(render(with_header(FormatKind::rfc5424, SyslogHeader::rfc3164), e),
              render(test::options(FormatKind::rfc5424), e));
    EXPECT_EQ(render(with_header(FormatKind::hec, SyslogHeader::rfc5424), e),
              render(test::options(FormatKind::hec), e));
}

// ---- the key ----

Result<FormatOptions> read(const std::string& settings, SyslogHeader auto_header) {
    auto c = base::Config::parse("exporters:\n  siem:\n" + settings, "test.yaml", format_config_keys());
    if (!c) return std::move(c).error();
    return read_format_options(*c, "siem", auto_header);
}

TEST(SyslogHeaderKey, AutoIsWhatTheTransportAsksForCefLeefAndJsonOnly) {
    for (const char* f : {"cef", "leef", "json"}) {
        const std::string fmt = std::string("    format: ") + f + "\n";
        auto syslog = read(fmt, SyslogHeader::rfc5424);  // relp, syslog
        ASSERT_TRUE(syslog.has_value()) << syslog.error().message;
        EXPECT_EQ(syslog->syslog_header, SyslogHeader::rfc5424) << f;
        auto kafka = read(fmt, SyslogHeader::none);
        ASSERT_TRUE(kafka.has_value());
        EXPECT_EQ(kafka->syslog_header, SyslogHeader::none) << f;
        auto legacy = read(fmt + "    syslog_header: rfc3164\n", SyslogHeader::none);
        ASSERT_TRUE(legacy.has_value());
        EXPECT_EQ(legacy->syslog_header, SyslogHeader::rfc3164) << f;
        auto none = read(fmt + "    syslog_header: none\n", SyslogHeader::rfc5424);
        ASSERT_TRUE(none.has_value());
        EXPECT_EQ(none->syslog_header, SyslogHeader::none) << f;
    }
    for (const char* f : {"rfc5424", "hec"}) {
        auto o = read(std::string("    format: ") + f + "\n", SyslogHeader::rfc5424);
        ASSERT_TRUE(o.has_value());
        EXPECT_EQ(o->syslog_header, SyslogHeader::none) << f;
    }
}

TEST(SyslogHeaderKey, AHeaderForRfc5424OrHecOrAnUnknownOneIsRefusedNamingTheKey) {
    auto own = read("    format: rfc5424\n    syslog_header: rfc3164\n", SyslogHeader::rfc5424);
    ASSERT_FALSE(own.has_value());
    EXPECT_NE(own.error().message.find("exporters.siem.syslog_header"), std::string::npos) << own.error().message;
    EXPECT_NE(own.error().message.find("has its own syslog header"), std::string::npos) << own.error().message;
    auto hec = read("    format: hec\n    syslog_header: rfc5424\n", SyslogHeader::none);
    ASSERT_FALSE(hec.has_value());
    EXPECT_NE(hec.error().message.find("HTTP envelope"), std::string::npos) << hec.error().message;
    auto bad = read("    format: cef\n    syslog_header: rfc9999\n", SyslogHeader::none);
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("auto|rfc5424|rfc3164|none"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace hsmaudit::exporters::formats
