// Each format against its escaping rules with hostile values, parsed back where a parser is simple.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "collectors/syslog/parser.h"
#include "exporters/formats/formatter.h"
#include "mac/note.h"
#include "tests/unit/exporters/formats/test_events.h"

namespace hsmaudit::exporters::formats {
namespace {

using test::kHostile;
using test::kHostileJson;
using test::kHostileSpaced;
using test::render;
using test::valid_utf8;

const std::string kBig(std::size_t{64} * 1024, 'x');  // a 64 KiB value

bool has_control(std::string_view s, bool allow_tab = false) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7F) return true;
    }
    return false;
}

// ---------------------------------------------------------------- RFC 5424

collectors::syslog::SyslogMessage parse5424(const std::string& text) {
    auto m = collectors::syslog::parse_message(text);
    EXPECT_EQ(m.format, collectors::syslog::SyslogFormat::rfc5424) << text.substr(0, 300);
    EXPECT_FALSE(m.malformed) << m.malformed_reason << "\n" << text.substr(0, 300);
    return m;
}

const collectors::syslog::SdElement* find_sd(const collectors::syslog::SyslogMessage& m, std::string_view id) {
    for (const auto& el : m.structured_data)
        if (el.id == id) return &el;
    return nullptr;
}

std::map<std::string, std::string> params(const collectors::syslog::SdElement* el) {
    std::map<std::string, std::string> out;
    if (el == nullptr) return out;
    for (const auto& p : el->params) out.emplace(p.name, p.value);
    return out;
}

TEST(Rfc5424, AuditRecordCarriesEveryFieldUnderThePenAndParsesBack) {
    auto e = test::audit_event();
    const std::string out = render(test::options(FormatKind::rfc5424), e);
    EXPECT_EQ(
        out.rfind("<158>1 2026-11-24T06:15:17.123Z hsm-a750.example.net hsmaudit - LUNA_SIGN [hsmaudit@32473 ", 0),
        0u)
        << out;  // local3 (19) * 8 + informational (6)
    const auto m = parse5424(out);
    EXPECT_EQ(m.facility, 19);
    EXPECT_EQ(m.severity, 6);
    EXPECT_EQ(m.hostname, "hsm-a750.example.net");
    EXPECT_EQ(m.app_name, "hsmaudit");
    EXPECT_EQ(m.msgid, "LUNA_SIGN");
    const auto p = params(find_sd(m, "hsmaudit@32473"));
    EXPECT_EQ(p.at("eventId"), "150123-3-42");
    EXPECT_EQ(p.at("seq"), "42");
    EXPECT_EQ(p.at("mac"), e.mac_hex);
    EXPECT_EQ(p.at("serial"), "150123");
    EXPECT_EQ(p.at("boot"), "3");
    EXPECT_EQ(p.at("partition"), "7");
    EXPECT_EQ(p.at("role"), "CO");
    EXPECT_EQ(p.at("session"), "118");
    EXPECT_EQ(p.at("event"), "LUNA_SIGN");
    EXPECT_EQ(p.at("class"), "usage");
    EXPECT_EQ(p.at("result"), "0x00000000");
    EXPECT_FALSE(p.contains("truncated"));
    const auto d = params(find_sd(m, "hsmauditDetails@32473"));
    EXPECT_EQ(d.at("key"), "100");
    EXPECT_EQ(d.at("mech"), "CKM_ECDSA_SHA256");
    EXPECT_NE(m.msg.find("LUNA_SIGN succeeded"), std::string::npos) << m.msg;
}

TEST(Rfc5424, SdParamEscapingRoundTripsHostileValues) {
    auto e = test::audit_event();
    e.record.role = "\"]\\";
    e.record.details = {{"a", "x\"y]z\\w"}, {"b", kHostile}, {"c", "]]]"}, {"d", "\\\"\\]"}, {"e", ""}};
    const std::string out = render(test::options(FormatKind::rfc5424), e);
    EXPECT_TRUE(valid_utf8(out));
    EXPECT_FALSE(has_control(out)) << out;
    const auto m = parse5424(out);
    EXPECT_EQ(params(find_sd(m, "hsmaudit@32473")).at("role"), "\"]\\");
    const auto d = params(find_sd(m, "hsmauditDetails@32473"));
    EXPECT_EQ(d.at("a"), "x\"y]z\\w");
    EXPECT_EQ(d.at("b"), kHostileSpaced);
    EXPECT_EQ(d.at("c"), "]]]");
    EXPECT_EQ(d.at("d"), "\\\"\\]");
    EXPECT_EQ(d.at("e"), "");
    // The raw text escapes exactly '"', '\' and ']'.
    EXPECT_NE(out.find("a=\"x\\\"y\\]z\\\\w\""), std::string::npos) << out;
}

TEST(Rfc5424, HeaderFieldsArePrintableAsciiWithinTheRfcLimits) {
    auto e = test::syslog_event();
    e.syslog.host = std::string(300, 'h') + " x";
    e.syslog.app = std::string(60, 'a');
    e.syslog.procid = std::string(200, '9');
    e.syslog.msgid = "m s\xC3\xA9" + std::string(40, 'i');
    e.syslog.sd = {{std::string(40, 'S') + "@1", {{std::string(40, 'n'), "v"}, {"bad=name]\"", "w"}}}};
    const std::string out = render(test::options(FormatKind::rfc5424), e);
    const auto m = parse5424(out);
    EXPECT_EQ(m.hostname, std::string(255, 'h'));
    EXPECT_EQ(m.app_name, std::string(48, 'a'));
    EXPECT_EQ(m.procid, std::string(128, '9'));
    EXPECT_EQ(m.msgid.size(), 32u);
    EXPECT_EQ(m.msgid.rfind("m_s__iii", 0), 0u) << m.msgid;
    const auto* sd = find_sd(m, std::string(32, 'S'));
    ASSERT_NE(sd, nullptr) << out;
    ASSERT_EQ(sd->params.size(), 2u);
    EXPECT_EQ(sd->params[0].name, std::string(32, 'n'));
    EXPECT_EQ(sd->params[1].name, "bad_name__");
    EXPECT_EQ(sd->params[1].value, "w");
}

TEST(Rfc5424, SyslogEventKeepsItsOwnFieldsAndGetsAnOriginElement) {
    auto e = test::syslog_event();
    e.syslog.msgid = "ID47";
    e.syslog.sd = {{"exampleSDID@32473", {{"iut", "3"}, {"eventSource", "App\"li]c\\ation"}}}};
    const std::string out = render(test::options(FormatKind::rfc5424), e);
    const auto m = parse5424(out);
    EXPECT_EQ(m.facility, 21);  // its own, not local3
    EXPECT_EQ(m.severity, 4);
    EXPECT_EQ(m.hostname, "myLuna");
    EXPECT_EQ(m.app_name, "lunash");
    EXPECT_EQ(m.procid, "1234");
    EXPECT_EQ(m.msgid, "ID47");
    EXPECT_EQ(m.msg, e.syslog.msg);
    const auto own = params(find_sd(m, "exampleSDID@32473"));
    EXPECT_EQ(own.at("eventSource"), "App\"li]c\\ation");
    const auto origin = params(find_sd(m, "hsmauditSyslog@32473"));
    EXPECT_EQ(origin.at("eventId"), "150123-syslog-9001");
    EXPECT_EQ(origin.at("timestamp"), "2026 Nov 24 06:15:19");
    EXPECT_EQ(origin.at("transport"), "unix_datagram");

    e.syslog.facility = -1;  // unknown: the configured facility
    EXPECT_EQ(parse5424(render(test::options(FormatKind::rfc5424), e)).facility, 19);
}

TEST(Rfc5424, AlertsAndCheckpointsHaveTheirOwnElements) {
    const auto a = parse5424(render(test::options(FormatKind::rfc5424), test::alert_event()));
    EXPECT_EQ(a.severity, 4);
    EXPECT_EQ(a.msgid, "ring.fill_warning");
    const auto ap = params(find_sd(a, "hsmauditAlert@32473"));
    EXPECT_EQ(ap.at("eventId"), "150123-alerts-17");
    EXPECT_EQ(ap.at("kind"), "ring.fill_warning");
    EXPECT_EQ(ap.at("severity"), "warning");

    const auto ce = test::checkpoint_event();
    const auto c = parse5424(render(test::options(FormatKind::rfc5424), ce));
    const auto cp = params(find_sd(c, "hsmauditCheckpoint@32473"));
    EXPECT_EQ(cp.at("eventId"), "150123-checkpoints-5");
    EXPECT_EQ(c.msg, ce.checkpoint);  // the signed line, readable by hsmaudit verify --anchors
}

TEST(Rfc5424, PenAppNameFacilityAndBomAreConfigurable) {
    auto o = test::options(FormatKind::rfc5424);
    o.pen = 99999;
    o.app_name = "audit-fwd";
    o.facility = 13;  // logaudit
    o.bom = true;
    const std::string out = render(o, test::failed_login_event());
    EXPECT_EQ(out.rfind("<107>1 ", 0), 0u) << out;  // 13 * 8 + error (3): a refused login
    const auto bom = out.find(
        "] \xEF\xBB\xBF"
        "LUNA_LOGIN failed");
    EXPECT_NE(bom, std::string::npos) << out;
    const auto m = parse5424(out);
    EXPECT_EQ(m.app_name, "audit-fwd");
    EXPECT_NE(find_sd(m, "hsmaudit@99999"), nullptr);
    EXPECT_EQ(m.msg.rfind("LUNA_LOGIN failed with result 0x000000a0", 0), 0u) << m.msg;  // BOM removed by the parser
}

// ---------------------------------------------------------------- CEF

struct Cef {
    std::vector<std::string> header;  // 7 fields, unescaped
    std::vector<std::pair<std::string, std::string>> ext;
    [[nodiscard]] std::string get(const std::string& key) const {
        for (const auto& [k, v] : ext)
            if (k == key) return v;
        return "<absent>";
    }
};

std::string cef_unescape_value(std::string_view v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) {
            const char n = v[++i];
            out += n == 'n' ? '\n' : n == 'r' ? '\r' : n;
        } else {
            out += v[i];
        }
    }
    return out;
}

/// A CEF parser as ArcSight's: the header splits on unescaped '|', the extension on unescaped '='
/// (the key is the word before it).
Cef parse_cef(std::string_view s) {
    Cef c;
    std::size_t i = 0;
    std::string field;
    while (c.header.size() < 7) {
        if (i >= s.size()) {
            ADD_FAILURE() << "header has fewer than 7 fields: " << s;
            return c;
        }
        if (s[i] == '\\' && i + 1 < s.size()) {
            field += s[i + 1];
            i += 2;
        } else if (s[i] == '|') {
            c.header.push_back(field);
            field.clear();
            ++i;
        } else {
            field += s[i++];
        }
    }
    const std::string_view ext = s.substr(i);
    std::vector<std::size_t> eqs;
    for (std::size_t j = 0; j < ext.size(); ++j) {
        if (ext[j] == '\\')
            ++j;
        else if (ext[j] == '=')
            eqs.push_back(j);
    }
    std::vector<std::size_t> key_start;
    for (std::size_t eq : eqs) {
        std::size_t k = eq;
        while (k > 0 && ext[k - 1] != ' ') --k;
        key_start.push_back(k);
    }
    for (std::size_t n = 0; n < eqs.size(); ++n) {
        const std::string key(ext.substr(key_start[n], eqs[n] - key_start[n]));
        EXPECT_TRUE(std::regex_match(key, std::regex("[A-Za-z0-9]+"))) << "key '" << key << "' in " << s;
        const std::size_t vend = n + 1 < eqs.size() ? key_start[n + 1] - 1 : ext.size();
        c.ext.emplace_back(key, cef_unescape_value(ext.substr(eqs[n] + 1, vend - eqs[n] - 1)));
    }
    return c;
}

TEST(Cef, AuditRecordHeaderAndExtension) {
    const auto e = test::audit_event();
    const std::string out = render(test::options(FormatKind::cef), e);
    const Cef c = parse_cef(out);
    ASSERT_EQ(c.header.size(), 7u);
    EXPECT_EQ(c.header[0], "CEF:0");
    EXPECT_EQ(c.header[1], "hsmaudit");
    EXPECT_EQ(c.header[2], "hsmaudit");
    EXPECT_EQ(c.header[3], std::string(product_version()));
    EXPECT_EQ(c.header[4], "LUNA_SIGN");
    EXPECT_EQ(c.header[5], "LUNA_SIGN succeeded");
    EXPECT_EQ(c.header[6], "2");  // informational
    EXPECT_EQ(c.get("rt"), "1795500917123");
    EXPECT_EQ(c.get("deviceExternalId"), "150123");
    EXPECT_EQ(c.get("externalId"), "150123-3-42");
    EXPECT_EQ(c.get("cn1Label"), "seq");
    EXPECT_EQ(c.get("cn1"), "42");
    EXPECT_EQ(c.get("cs1Label"), "mac");
    EXPECT_EQ(c.get("cs1"), e.mac_hex);
    EXPECT_EQ(c.get("cs2Label"), "role");
    EXPECT_EQ(c.get("cs2"), "CO");
    EXPECT_EQ(c.get("cat"), "usage");
    EXPECT_EQ(c.get("outcome"), "success");
    EXPECT_EQ(c.get("cs6"), "key=100 mech=CKM_ECDSA_SHA256");
    EXPECT_EQ(c.get("flexString1"), "<absent>");
}

TEST(Cef, HeaderAndExtensionEscapingDifferAndRoundTrip) {
    auto e = test::audit_event();
    e.record.event = "EV|IL\\NAME=x";  // header: '|' and '\' escaped, '=' not
    e.record.role = kHostile;
    e.host = "h=o|s\\t";
    const std::string out = render(test::options(FormatKind::cef), e);
    EXPECT_TRUE(valid_utf8(out));
    EXPECT_FALSE(has_control(out)) << out;
    EXPECT_NE(out.find("|EV\\|IL\\\\NAME=x|"), std::string::npos) << out;
    EXPECT_NE(out.find("dvchost=h\\=o|s\\\\t "), std::string::npos) << out;
    const Cef c = parse_cef(out);
    ASSERT_EQ(c.header.size(), 7u);
    EXPECT_EQ(c.header[4], "EV|IL\\NAME=x");
    EXPECT_EQ(c.get("dvchost"), "h=o|s\\t");
    // LF and CR survive as \n and \r; other control characters become a space.
    std::string expected = kHostileSpaced;
    expected.replace(expected.find("g h i"), 5, "g\nh\ri");
    EXPECT_EQ(c.get("cs2"), expected);
    EXPECT_NE(out.find("g\\nh\\ri j"), std::string::npos);
}

TEST(Cef, SeveritiesMapFromTheOneSyslogMapping) {
    EXPECT_EQ(parse_cef(render(test::options(FormatKind::cef), test::failed_login_event())).header[6], "7");
    EXPECT_EQ(parse_cef(render(test::options(FormatKind::cef), test::alert_event())).header[6], "5");
    auto crit = test::alert_event();
    crit.alert.severity = agent::Severity::critical;
    EXPECT_EQ(parse_cef(render(test::options(FormatKind::cef), crit)).header[6], "8");
    const int expected[] = {10, 9, 8, 7, 5, 3, 2, 0};
    for (int s = 0; s <= 7; ++s) EXPECT_EQ(cef_severity(s), expected[s]) << s;
}

TEST(Cef, SyslogAlertAndCheckpointEvents) {
    auto s = test::syslog_event();
    s.syslog.sd = {{"x@1", {{"k", "v=\"w\""}}}};
    const Cef sc = parse_cef(render(test::options(FormatKind::cef), s));
    EXPECT_EQ(sc.header[4], "syslog:lunash");
    EXPECT_EQ(sc.get("externalId"), "150123-syslog-9001");
    EXPECT_EQ(sc.get("cs1"), "lunash");
    EXPECT_EQ(sc.get("cs4"), "[x@1 k=\"v=\\\"w\\\"\"]");
    EXPECT_EQ(sc.get("msg"), s.syslog.msg);
    const Cef ac = parse_cef(render(test::options(FormatKind::cef), test::alert_event()));
    EXPECT_EQ(ac.header[4], "ring.fill_warning");
    EXPECT_EQ(ac.get("cs1"), "ring.fill_warning");
    const auto ce = test::checkpoint_event();
    const Cef cc = parse_cef(render(test::options(FormatKind::cef), ce));
    EXPECT_EQ(cc.get("cn1"), "42");
    EXPECT_EQ(cc.get("cs3"), "2");
    EXPECT_EQ(cc.get("msg"), ce.checkpoint);
}

// ---------------------------------------------------------------- LEEF

struct Leef {
    std::vector<std::string> header;  // LEEF:2.0, vendor, product, version, event id, delimiter
    std::vector<std::pair<std::string, std::string>> attrs;
    [[nodiscard]] std::string get(const std::string& key) const {
        for (const auto& [k, v] : attrs)
            if (k == key) return v;
        return "<absent>";
    }
};

Leef parse_leef(std::string_view s, char delimiter) {
    Leef l;
    for (int n = 0; n < 6; ++n) {
        const auto bar = s.find('|');
        if (bar == std::string_view::npos) {
            ADD_FAILURE() << "header has fewer than 6 fields: " << s;
            return l;
        }
        l.header.emplace_back(s.substr(0, bar));
        s.remove_prefix(bar + 1);
    }
    while (!s.empty()) {
        const auto d = s.find(delimiter);
        const std::string_view attr = s.substr(0, d);
        const auto eq = attr.find('=');
        EXPECT_NE(eq, std::string_view::npos) << "attribute without '=': " << attr;
        l.attrs.emplace_back(std::string(attr.substr(0, eq)), std::string(attr.substr(eq + 1)));
        if (d == std::string_view::npos) break;
        s.remove_prefix(d + 1);
    }
    return l;
}

TEST(Leef, AuditRecordHeaderAndAttributes) {
    const auto e = test::audit_event();
    const std::string out = render(test::options(FormatKind::leef), e);
    const Leef l = parse_leef(out, '^');
    ASSERT_EQ(l.header.size(), 6u);
    EXPECT_EQ(l.header[0], "LEEF:2.0");
    EXPECT_EQ(l.header[4], "LUNA_SIGN");
    EXPECT_EQ(l.header[5], "^");
    EXPECT_EQ(l.get("devTime"), "2026-11-24T06:15:17.123+0000");
    EXPECT_EQ(l.get("devTimeFormat"), "yyyy-MM-dd'T'HH:mm:ss.SSSZ");
    EXPECT_EQ(l.get("sev"), "2");
    EXPECT_EQ(l.get("cat"), "usage");
    EXPECT_EQ(l.get("usrName"), "CO");
    EXPECT_EQ(l.get("eventId"), "150123-3-42");
    EXPECT_EQ(l.get("seq"), "42");
    EXPECT_EQ(l.get("mac"), e.mac_hex);
    EXPECT_EQ(l.get("d_mech"), "CKM_ECDSA_SHA256");
    EXPECT_EQ(l.get("truncated"), "<absent>");
}

TEST(Leef, NoEscapingSoDelimitersAndControlsAreReplaced) {
    for (const char delimiter : {'^', '\t'}) {
        auto o = test::options(FormatKind::leef);
        o.leef_delimiter = delimiter;
        auto e = test::audit_event();
        e.record.event = "EV|IL\tNAME";  // header: '|' and control characters become a space
        e.record.role = kHostile;
        e.record.details = {{"x", kHostile}};
        const std::string out = render(o, e);
        EXPECT_TRUE(valid_utf8(out));
        EXPECT_FALSE(has_control(out, delimiter == '\t')) << out;
        const Leef l = parse_leef(out, delimiter);
        ASSERT_EQ(l.header.size(), 6u);
        EXPECT_EQ(l.header[4], "EV IL NAME");
        EXPECT_EQ(l.header[5], delimiter == '\t' ? "x09" : "^");
        std::string expected = kHostileSpaced;
        if (delimiter == '^') expected.replace(expected.find('^'), 1, " ");
        EXPECT_EQ(l.get("usrName"), expected);
        EXPECT_EQ(l.get("d_x"), expected);
        EXPECT_EQ(l.get("eventId"), "150123-3-42");
    }
}

TEST(Leef, SeveritiesAreOneToTen) {
    const int expected[] = {10, 9, 8, 7, 5, 3, 2, 1};
    for (int s = 0; s <= 7; ++s) EXPECT_EQ(leef_severity(s), expected[s]) << s;
    EXPECT_EQ(parse_leef(render(test::options(FormatKind::leef), test::failed_login_event()), '^').get("sev"), "7");
}

// ---------------------------------------------------------------- JSON and HEC

TEST(Json, EveryFieldWithStableKeysAndHostileValuesRoundTrip) {
    auto e = test::audit_event();
    e.record.role = kHostile;
    e.record.details = {{"a", kHostile}, {"a", "second"}, {"b", "\"{}[]\\"}};
    const std::string out = render(test::options(FormatKind::json), e);
    EXPECT_TRUE(valid_utf8(out));
    EXPECT_EQ(out.find('\n'), std::string::npos);  // one line
    const auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j.at("event_id"), "150123-3-42");
    EXPECT_EQ(j.at("stream"), "audit");
    EXPECT_EQ(j.at("time"), "2026-11-24T06:15:17.123Z");
    EXPECT_EQ(j.at("time_ms"), 1795500917123);
    EXPECT_EQ(j.at("severity"), 6);
    EXPECT_EQ(j.at("severity_name"), "info");
    EXPECT_EQ(j.at("serial"), "150123");
    const auto& a = j.at("audit");
    EXPECT_EQ(a.at("seq"), 42);
    EXPECT_EQ(a.at("mac"), e.mac_hex);
    EXPECT_EQ(a.at("role"), kHostileJson);
    EXPECT_EQ(a.at("details").at("a"), kHostileJson);
    EXPECT_EQ(a.at("details").at("a#2"), "second");
    EXPECT_EQ(a.at("details").at("b"), "\"{}[]\\");
    EXPECT_EQ(a.at("result"), 0);
    // The record line as the segment file holds it: what the MAC covers.
    std::string body;
    mac::encode_record_body(e.record, body);
    EXPECT_EQ(a.at("record_line"), body + " mac=" + e.mac_hex);
}

TEST(Json, OtherStreams) {
    auto s = test::syslog_event();
    s.syslog.sd = {{"x@1", {{"k", "1"}, {"k", "2"}}}};
    const auto sj = nlohmann::json::parse(render(test::options(FormatKind::json), s));
    EXPECT_EQ(sj.at("event_id"), "150123-syslog-9001");
    EXPECT_EQ(sj.at("syslog").at("sd").at("x@1").at("k#2"), "2");
    EXPECT_EQ(sj.at("syslog").at("msg"), s.syslog.msg);
    const auto aj = nlohmann::json::parse(render(test::options(FormatKind::json), test::alert_event()));
    EXPECT_EQ(aj.at("alert").at("kind"), "ring.fill_warning");
    EXPECT_EQ(aj.at("severity"), 4);
    const auto cj = nlohmann::json::parse(render(test::options(FormatKind::json), test::checkpoint_event()));
    EXPECT_EQ(cj.at("checkpoint").at("seq"), 42);
    EXPECT_EQ(cj.at("checkpoint").at("epoch"), 2);

    auto seal = test::audit_event();
    seal.entry = agent::EntryKind::seal;
    seal.epoch = 2;
    seal.line = "@seal v=1 ...";
    const auto sealj = nlohmann::json::parse(render(test::options(FormatKind::json), seal));
    EXPECT_EQ(sealj.at("event_id"), "150123-seal-2");
    EXPECT_EQ(sealj.at("segment").at("entry"), "seal");
    EXPECT_EQ(sealj.at("segment").at("line"), "@seal v=1 ...");
}

TEST(Hec, EnvelopeWithMillisecondTimeIndexedFieldsAndOptionalIndex) {
    auto o = test::options(FormatKind::hec);
    const std::string out = render(o, test::audit_event());
    EXPECT_EQ(out.rfind("{\"time\":1795500917.123,\"host\":", 0), 0u) << out;
    const auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j.at("host"), "hsm-a750.example.net");
    EXPECT_EQ(j.at("source"), "hsmaudit:audit");
    EXPECT_EQ(j.at("sourcetype"), "hsmaudit:json");
    EXPECT_FALSE(j.contains("index"));
    EXPECT_EQ(j.at("event").at("event_id"), "150123-3-42");
    EXPECT_EQ(j.at("event").at("audit").at("seq"), 42);
    EXPECT_EQ(j.at("fields"),
              nlohmann::json::parse(R"({"serial":"150123","stream":"audit","class":"usage","severity":"info"})"));

    o.hec_index = "hsm_audit";
    o.hec_sourcetype = "luna:audit";
    auto e = test::alert_event();
    e.time_ms = 1795500920007;
    const std::string out2 = render(o, e);
    EXPECT_EQ(out2.rfind("{\"time\":1795500920.007,", 0), 0u) << out2;
    const auto j2 = nlohmann::json::parse(out2);
    EXPECT_EQ(j2.at("index"), "hsm_audit");
    EXPECT_EQ(j2.at("sourcetype"), "luna:audit");
    EXPECT_FALSE(j2.at("fields").contains("class"));
}

// ---------------------------------------------------------------- every format

TEST(AllFormats, EventIdIsTheEventsOrMadeFromIt) {
    for (auto kind : {FormatKind::rfc5424, FormatKind::cef, FormatKind::leef, FormatKind::json, FormatKind::hec}) {
        auto e = test::audit_event();
        EXPECT_NE(render(test::options(kind), e).find("150123-3-42"), std::string::npos) << to_string(kind);
        e.event_id = "given-id-7";
        EXPECT_NE(render(test::options(kind), e).find("given-id-7"), std::string::npos) << to_string(kind);
        EXPECT_EQ(make_formatter(test::options(kind))->name(), to_string(kind));
    }
}

TEST(AllFormats, A64KiBValueIsCutAtACodePointWithinMaxMessageBytesAndMarked) {
    const std::string wide = [] {
        std::string s;
        for (int i = 0; i < 16 * 1024; ++i) s += "\xC3\xA9\xE2\x9C\x93";  // é✓: 80 KiB of multi-byte text
        return s;
    }();
    for (auto kind : {FormatKind::rfc5424, FormatKind::cef, FormatKind::leef, FormatKind::json, FormatKind::hec}) {
        for (const std::string* big : {&kBig, &wide}) {
            SCOPED_TRACE(std::string(to_string(kind)) + (big == &kBig ? " ascii" : " multi-byte"));
            auto e = test::audit_event();
            e.record.details = {{"blob", *big}, {"small", "kept"}};
            auto o = test::options(kind);
            const std::string out = render(o, e);
            EXPECT_LE(out.size(), o.max_message_bytes);
            EXPECT_GT(out.size(), o.max_message_bytes - 64);  // the budget is used, not wasted
            EXPECT_TRUE(valid_utf8(out));
            EXPECT_NE(out.find("\xE2\x80\xA6"), std::string::npos);  // U+2026 ends a cut value
            EXPECT_NE(out.find(e.mac_hex), std::string::npos);       // identity fields are never cut
            EXPECT_NE(out.find("150123-3-42"), std::string::npos);
            switch (kind) {
                case FormatKind::rfc5424: {
                    const auto m = parse5424(out);
                    EXPECT_EQ(params(find_sd(m, "hsmaudit@32473")).at("truncated"), "true");
                    EXPECT_EQ(params(find_sd(m, "hsmauditDetails@32473")).at("small"), "kept");
                    break;
                }
                case FormatKind::cef: EXPECT_EQ(parse_cef(out).get("flexString1"), "true"); break;
                case FormatKind::leef: EXPECT_EQ(parse_leef(out, '^').get("truncated"), "true"); break;
                case FormatKind::json: EXPECT_EQ(nlohmann::json::parse(out).at("truncated"), true); break;
                case FormatKind::hec: EXPECT_EQ(nlohmann::json::parse(out).at("event").at("truncated"), true); break;
            }
            // With room enough nothing is cut and the value comes back whole.
            o.max_message_bytes = 1 << 20;
            const std::string whole = render(o, e);
            EXPECT_NE(whole.find(*big), std::string::npos);
            EXPECT_EQ(whole.find("truncated"), std::string::npos);
        }
    }
}

TEST(AllFormats, ManyDetailsBeyondTheBudgetAreDroppedNotTheIdentity) {
    auto e = test::audit_event();
    e.record.details.clear();
    for (int i = 0; i < 400; ++i) e.record.details.push_back({"k" + std::to_string(i), "v"});
    for (auto kind : {FormatKind::rfc5424, FormatKind::cef, FormatKind::leef, FormatKind::json, FormatKind::hec}) {
        auto o = test::options(kind);
        o.max_message_bytes = 1024;
        const std::string out = render(o, e);
        EXPECT_LE(out.size(), 1024u) << to_string(kind);
        EXPECT_NE(out.find(e.mac_hex), std::string::npos) << to_string(kind) << ": " << out;
        EXPECT_NE(out.find("truncated"), std::string::npos) << to_string(kind);
        if (kind == FormatKind::json || kind == FormatKind::hec) {
            EXPECT_TRUE(nlohmann::json::accept(out)) << out;
        }
        if (kind == FormatKind::rfc5424) (void)parse5424(out);
    }
}

// ---------------------------------------------------------------- faithful syslog (issue 17)

/// A syslog message the collector kept byte for byte: backslashes (doubled, and a literal "\x0A"),
/// LF, CR LF, NUL and TAB inside, a bad UTF-8 byte; its own SD with escapes and a control character.
agent::Event faithful_syslog_event() {
    auto e = test::syslog_event();
    e.time_ms = 1795494540123;  // its own RFC 3339 time
    e.received_ms = 1795500919250;
    e.syslog.timestamp = "2026-11-24T06:29:00.123+02:00";
    e.syslog.msg = std::string("C:\\\\dir \\x0A one\ntwo\r\nnul:") + '\0' + "\ttab";
    e.syslog.sd = {{"z@1", {{"b", "1"}, {"a", "q\"]\\\nx"}, {"b", "3"}}}};
    e.syslog.raw =
        "<164>1 2026-11-24T06:29:00.123+02:00 myLuna lunash 1234 - [z@1 b=\"1\" a=\"q\\\"\\]\\\\\nx\" b=\"3\"] " +
        e.syslog.msg;
    return e;
}

TEST(FaithfulSyslog, JsonCarriesTheExactBytesAndBase64WhereTheyAreNotUtf8) {
    auto e = faithful_syslog_event();
    auto j = nlohmann::json::parse(render(test::options(FormatKind::json), e));
    const auto& s = j.at("syslog");
    EXPECT_EQ(s.at("msg").get<std::string>(), e.syslog.msg) << "JSON escapes once: LF, CR, NUL, backslashes exact";
    EXPECT_EQ(s.at("raw").get<std::string>(), e.syslog.raw);
    EXPECT_FALSE(s.contains("msg_base64")) << "valid UTF-8 needs no second copy";
    EXPECT_EQ(s.at("received"), "2026-11-24T06:15:19.250Z");
    EXPECT_EQ(j.at("time"), "2026-11-24T04:29:00.123Z") << "the message's own time";
    EXPECT_EQ(s.at("sd").at("z@1").at("a"), "q\"]\\\nx");

    e.syslog.msg += "\xFF\xC0 end";
    e.syslog.raw += "\xFF\xC0 end";
    j = nlohmann::json::parse(render(test::options(FormatKind::json), e));
    const auto msg64 = mac::base64_decode(j.at("syslog").at("msg_base64").get<std::string>());
    const auto raw64 = mac::base64_decode(j.at("syslog").at("raw_base64").get<std::string>());
    ASSERT_TRUE(msg64.has_value() && raw64.has_value());
    EXPECT_EQ(*msg64, e.syslog.msg);
    EXPECT_EQ(*raw64, e.syslog.raw);
    EXPECT_TRUE(valid_utf8(j.at("syslog").at("msg").get<std::string>()));

    // Cut to fit: no base64 (a cut one decodes to nothing useful), marked truncated.
    auto o = test::options(FormatKind::json);
    o.max_message_bytes = 1024;
    e.syslog.msg += std::string(4000, 'x');
    const auto cut = nlohmann::json::parse(render(o, e));
    EXPECT_TRUE(cut.at("truncated").get<bool>());
    EXPECT_FALSE(cut.at("syslog").contains("msg_base64"));
}

TEST(FaithfulSyslog, Rfc5424KeepsTheMessageBytesAndEscapesSdOnce) {
    const auto e = faithful_syslog_event();
    const std::string out = render(test::options(FormatKind::rfc5424), e);
    EXPECT_EQ(out.rfind("<172>1 2026-11-24T04:29:00.123Z ", 0), 0u) << out;
    EXPECT_NE(out.find("a=\"q\\\"\\]\\\\\nx\""), std::string::npos) << "only \" \\ ] escaped: " << out;
    const auto m = parse5424(out);
    EXPECT_EQ(m.msg, e.syslog.msg) << "LF, CR, NUL, TAB and backslashes as they came (octet counting frames them)";
    const auto* sd = find_sd(m, "z@1");
    ASSERT_NE(sd, nullptr);
    ASSERT_EQ(sd->params.size(), 3u);
    EXPECT_EQ(sd->params[1].value, "q\"]\\\nx");
    EXPECT_EQ(sd->params[2].name, "b") << "order and duplicates kept";
    // The agent's own events still write control characters as spaces.
    auto a = test::audit_event();
    a.record.details = {{"d", "x\ny"}};
    EXPECT_FALSE(has_control(render(test::options(FormatKind::rfc5424), a)));
}

TEST(FaithfulSyslog, CefAndLeefEscapeByTheirOwnRules) {
    const auto e = faithful_syslog_event();
    const std::string cef = render(test::options(FormatKind::cef), e);
    EXPECT_NE(cef.find("msg=C:\\\\\\\\dir \\\\x0A one\\ntwo\\r\\nnul:"), std::string::npos)
        << "a backslash is \\\\ (once), LF \\n, CR \\r: " << cef;
    const Cef c = parse_cef(cef);
    EXPECT_EQ(c.get("rt"), "1795494540123") << "the message's own time";
    // NUL and TAB have no CEF escape: a space.
    EXPECT_EQ(c.get("msg"), "C:\\\\dir \\x0A one\ntwo\r\nnul:  tab");

    const std::string leef = render(test::options(FormatKind::leef), e);
    const Leef l = parse_leef(leef, '^');
    EXPECT_EQ(l.get("devTime"), "2026-11-24T04:29:00.123+0000");
    // LEEF has no escaping: backslashes as they are, control characters as spaces.
    EXPECT_EQ(l.get("msg"), "C:\\\\dir \\x0A one two  nul:  tab");
}

}  // namespace
}  // namespace hsmaudit::exporters::formats
