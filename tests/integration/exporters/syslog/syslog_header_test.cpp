// The syslog header around CEF, LEEF and JSON, as a real rsyslogd parses it (issue 17: "an rsyslog
// receiver parses our CEF/LEEF frames with the appliance's host name as HOSTNAME"). Destinations
// are built from configuration text through the kinds' factories, so the default (`syslog_header:
// auto`, rfc5424 on relp and syslog) is what is tested; rsyslogd writes what its parser found
// (%HOSTNAME%, %timereported%, %app-name%, PRI, %msg%) and each field is compared with the event:
// HOSTNAME is Event::host, the time is the event's own, the MSG is exactly the CEF/LEEF/JSON text.
// RFC 5425 TLS syslog and RELP/TLS, RFC 5424 and RFC 3164 headers.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "agent/api/exporter.h"
#include "agent/engine/export/manager.h"
#include "base/config/config.h"
#include "exporters/formats/formatter.h"
#include "exporters/relp/relp_exporter.h"
#include "exporters/syslog/syslog_exporter.h"
#include "mac/record.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::exporters {
namespace {

using namespace std::chrono_literals;
using testing::relp::Listener;
using testing::relp::make_audit_event;
using testing::relp::Pki;
using testing::relp::ReceiverOptions;
using testing::relp::Rsyslog;

/// What rsyslogd's parser found in each message, one line each ('|' cannot occur in the header
/// fields; the MSG is last and may hold any).
constexpr const char* kParsed = "%HOSTNAME%|%timereported:::date-rfc3339%|%app-name%|%pri%|%msg%\\n";

class NoAlerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& /*a*/) override {}
};

std::vector<base::KeySpec> keys() {
    std::vector<base::KeySpec> k;
    for (auto list : {agent::export_config_keys(), formats::format_config_keys(), syslog::syslog_config_keys(),
                      relp::relp_config_keys()})
        k.insert(k.end(), list.begin(), list.end());
    return k;
}

/// A destination `siem` of `type` (syslog over TLS, or relp over TLS) to `r`, with `extra` keys.
Result<base::Config> destination(const std::string& type, const Rsyslog& r, const std::string& extra) {
    const Pki& pki = Pki::get();
    std::string yaml = "exporters:\n  siem:\n    type: " + type + "\n" + extra + "    " + type + ":\n" +
                       "      target: " + r.target() + "\n      ca: " + pki.ca + "\n      cert: " + pki.client_cert +
                       "\n      key: " + pki.client_key + "\n      permitted_peers: server.test\n";
    if (type == "syslog") yaml += "      protocol: tls\n";
    return base::Config::parse(yaml, "siem.yaml", keys());
}

/// Sends `events` through destination `siem` built by its kind's factory; waits for them all to be
/// acknowledged (written to the kernel for syslog, answered for RELP).
void deliver(const base::Config& config, const std::vector<agent::Event>& events) {
    NoAlerts alerts;
    const std::string type = config.str("exporters.siem.type");
    const agent::ExporterFactory f = type == "relp" ? relp::factory() : syslog::factory();
    auto x = f.create(agent::ExporterContext{"siem", config, "", alerts, {}});
    ASSERT_TRUE(x.has_value()) << x.error().describe();
    auto& exporter = **x;
    ASSERT_TRUE(exporter.connect().has_value());
    ASSERT_TRUE(exporter.send(events).has_value());
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto acked = exporter.acknowledged(200ms);
        ASSERT_TRUE(acked.has_value()) << acked.error().describe();
        if (*acked == events.size()) break;
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << *acked << " of " << events.size();
    }
    exporter.disconnect();
}

struct Parsed {
    std::string host, time, app, pri, msg;
};

/// Waits until rsyslogd wrote `n` lines; returns them parsed.
std::vector<Parsed> wait_parsed(const Rsyslog& r, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        std::vector<Parsed> out;
        const std::string text = r.received();
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::size_t end = text.find('\n', pos);
            if (end == std::string::npos) break;
            const std::string line = text.substr(pos, end - pos);
            pos = end + 1;
            Parsed p;
            std::size_t at = 0;
            for (std::string* field : {&p.host, &p.time, &p.app, &p.pri}) {
                const std::size_t bar = line.find('|', at);
                if (bar == std::string::npos) break;
                *field = line.substr(at, bar - at);
                at = bar + 1;
            }
            p.msg = line.substr(at);
            out.push_back(std::move(p));
        }
        if (out.size() >= n || std::chrono::steady_clock::now() > deadline) return out;
        std::this_thread::sleep_for(20ms);
    }
}

/// rsyslog's date-rfc3339 writes UTC as "+00:00"; ours is "Z".
std::string utc_z(std::string t) {
    if (t.size() > 6 && t.compare(t.size() - 6, 6, "+00:00") == 0) t.replace(t.size() - 6, 6, "Z");
    return t;
}

/// The message body as the destination's format renders it without a header.
std::string body(const base::Config& config, const agent::Event& e) {
    auto o = formats::read_format_options(config, "siem");
    EXPECT_TRUE(o.has_value());
    o->syslog_header = formats::SyslogHeader::none;
    std::string out;
    formats::make_formatter(*o)->format(e, out);
    return out;
}

std::vector<agent::Event> events(std::int64_t base_ms) {
    std::vector<agent::Event> v;
    for (std::uint64_t seq = 1; seq <= 5; ++seq) {
        agent::Event e = make_audit_event(seq);  // host hsm1.example; seq 5 is a LUNA_LOGIN (access)
        e.time_ms = e.record.time_ms = base_ms + static_cast<std::int64_t>(seq) * 1000 + 123;
        v.push_back(std::move(e));
    }
    v[2].host = "hsm3.example.net";  // each event's own host name
    v[3].record.result = 0xA0;       // failed: severity 4, PRI 19 * 8 + 4
    return v;
}

class SyslogHeaderRsyslog : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
        // RFC 3164 has no zone: the agent writes UTC; this receiver reads it as its local time.
        ::setenv("TZ", "UTC", 1);
        ::tzset();
    }

    void expect_rfc5424(const std::string& type, Listener listener, const std::string& format) {
        Rsyslog r(ReceiverOptions{.listener = listener, .line_template = kParsed});
        ASSERT_TRUE(r.start()) << r.diagnostics();
        auto config = destination(type, r, "    format: " + format + "\n");
        ASSERT_TRUE(config.has_value()) << config.error().describe();
        const auto sent = events(1'760'000'000'000);
        deliver(*config, sent);
        if (HasFailure()) return;
        const auto got = wait_parsed(r, sent.size());
        ASSERT_EQ(got.size(), sent.size()) << r.received() << r.diagnostics();
        for (std::size_t i = 0; i < sent.size(); ++i) {
            const auto& e = sent[i];
            EXPECT_EQ(got[i].host, e.host) << r.received();
            EXPECT_EQ(utc_z(got[i].time), mac::format_time(e.time_ms)) << r.received();
            EXPECT_EQ(got[i].app, "hsmaudit");
            EXPECT_EQ(got[i].pri, std::to_string(19 * 8 + agent::syslog_severity(e)));
            EXPECT_EQ(got[i].msg, body(*config, e)) << type << " " << format;
        }
    }
};

TEST_F(SyslogHeaderRsyslog, CefOverTlsSyslogByDefaultCarriesTheAppliancesHostAndTime) {
    expect_rfc5424("syslog", Listener::syslog_tls, "cef");
}

TEST_F(SyslogHeaderRsyslog, LeefOverRelpByDefaultCarriesTheAppliancesHostAndTime) {
    expect_rfc5424("relp", Listener::relp_tls, "leef");
}

TEST_F(SyslogHeaderRsyslog, JsonOverTlsSyslogToo) {
    expect_rfc5424("syslog", Listener::syslog_tls, "json");
}

TEST_F(SyslogHeaderRsyslog, Rfc3164CefAndLeefParseWithHostTagAndTheTimeToTheSecond) {
    for (const char* format : {"cef", "leef"}) {
        Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls, .line_template = kParsed});
        ASSERT_TRUE(r.start()) << r.diagnostics();
        auto config = destination(
            "syslog", r, std::string("    format: ") + format + "\n    syslog_header: rfc3164\n    app_name: luna\n");
        ASSERT_TRUE(config.has_value()) << config.error().describe();
        // No year in RFC 3164: the receiver takes its own, so the events are of today.
        const std::int64_t now_s = std::time(nullptr);
        const auto sent = events((now_s - 3600) * 1000);
        deliver(*config, sent);
        if (HasFailure()) return;
        const auto got = wait_parsed(r, sent.size());
        ASSERT_EQ(got.size(), sent.size()) << r.received() << r.diagnostics();
        for (std::size_t i = 0; i < sent.size(); ++i) {
            const auto& e = sent[i];
            EXPECT_EQ(got[i].host, e.host) << r.received();
            // Seconds only (RFC 3164 has no fraction).
            std::string want = mac::format_time(e.time_ms / 1000 * 1000);  // ...SS.000Z
            want.replace(want.size() - 5, 5, "Z");
            EXPECT_EQ(utc_z(got[i].time), want) << r.received();
            EXPECT_EQ(got[i].app, "luna");
            EXPECT_EQ(got[i].pri, std::to_string(19 * 8 + agent::syslog_severity(e)));
            // rsyslog keeps the space after "TAG:" in an RFC 3164 MSG.
            EXPECT_EQ(got[i].msg, " " + body(*config, e)) << format;
        }
    }
}

TEST_F(SyslogHeaderRsyslog, NoneSendsTheBareFormatAsBefore) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});  // the raw message
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto config = destination("syslog", r, "    format: cef\n    syslog_header: none\n");
    ASSERT_TRUE(config.has_value()) << config.error().describe();
    const auto sent = events(1'760'000'000'000);
    deliver(*config, sent);
    if (HasFailure()) return;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (testing::relp::received_seqs(r.received()).size() < sent.size() &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    std::string want;
    for (const auto& e : sent) want += body(*config, e) + "\n";
    EXPECT_EQ(r.received(), want);
}

}  // namespace
}  // namespace hsmaudit::exporters
