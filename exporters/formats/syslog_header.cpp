// The syslog header before a CEF, LEEF or JSON message (exporters.<name>.syslog_header): part of
// the message, not transport framing (docs/SIEM.md, "Syslog header"). It names the appliance
// (Event::host) as HOSTNAME and the event's own time as TIMESTAMP, so a receiver behind a relay
// sees each appliance as its own log source and each event at its own time.
//
//   rfc5424  <PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - MSG      (RFC 5424 section 6)
//   rfc3164  <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG             (RFC 3164 section 4.1, in UTC)
#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "exporters/formats/detail/render.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::detail {
namespace {

constexpr std::size_t kHostnameMax = 255;  // RFC 5424 section 6.2.4 (and a sane bound for RFC 3164)
constexpr std::size_t kTagMax = 32;        // RFC 3164 section 4.1.3

/// RFC 5424 HOSTNAME: PRINTUSASCII (others become '_'), at most 255, "-" when empty.
void append_5424_host(std::string_view v, std::string& out) {
    if (v.empty()) {
        out += '-';
        return;
    }
    if (v.size() > kHostnameMax) v = v.substr(0, kHostnameMax);
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        out += c > 32 && c < 127 ? ch : '_';
    }
}

bool legacy_safe(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
           ch == '_';
}

/// RFC 3164 HOSTNAME or TAG: letters, digits, '.', '-', '_' (others become '_': a space, ':' or
/// '[' would end the field early in a receiver's parser), at most `max`, "-" when empty.
void append_3164_field(std::string_view v, std::size_t max, std::string& out) {
    if (v.empty()) {
        out += '-';
        return;
    }
    if (v.size() > max) v = v.substr(0, max);
    for (char ch : v) out += legacy_safe(ch) ? ch : '_';
}

/// "Nov  4 06:15:17": RFC 3164 TIMESTAMP, in UTC (the format has no zone), day padded with a space.
void append_3164_time(std::int64_t time_ms, std::string& out) {
    static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::int64_t secs = time_ms / 1000;
    if (time_ms < 0 && time_ms % 1000 != 0) --secs;
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    if (::gmtime_r(&t, &tm) == nullptr) tm = std::tm{};
    const int month = tm.tm_mon >= 0 && tm.tm_mon < 12 ? tm.tm_mon : 0;
    char buf[32];
    const int n =
        std::snprintf(buf, sizeof buf, "%s %2d %02d:%02d:%02d", kMonths[static_cast<std::size_t>(month)].data(),
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n > 0) out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

}  // namespace

int header_pri(const agent::Event& e, const FormatOptions& o) {
    // As in the rfc5424 format: the agent's events take the destination's facility, the
    // appliance's syslog messages keep their own (exporters.<name>.facility).
    int facility = o.facility;
    if (e.stream == agent::Stream::syslog && e.syslog.facility >= 0 && e.syslog.facility <= 23)
        facility = e.syslog.facility;
    return facility * 8 + agent::syslog_severity(e);
}

void render_syslog_header(const agent::Event& e, const FormatOptions& o, std::string& out) {
    // Only before cef, leef and json (read_format_options() refuses the others): rfc5424 has its
    // own header, and a HEC envelope is an HTTP body.
    if (o.syslog_header == SyslogHeader::none || o.kind == FormatKind::rfc5424 || o.kind == FormatKind::hec) return;
    out += '<';
    out += std::to_string(header_pri(e, o));
    out += '>';
    const std::int64_t t = event_time_ms(e);
    if (o.syslog_header == SyslogHeader::rfc5424) {
        out += "1 ";
        if (t == 0)
            out += '-';
        else
            mac::append_time(t, out);
        out += ' ';
        append_5424_host(e.host, out);
        out += ' ';
        out += o.app_name;  // validated: 1..48 printable ASCII
        out += " - - - ";   // PROCID, MSGID, STRUCTURED-DATA: the message carries them
        return;
    }
    append_3164_time(t, out);
    out += ' ';
    append_3164_field(e.host, kHostnameMax, out);
    out += ' ';
    append_3164_field(o.app_name, kTagMax, out);
    out += ": ";
}

}  // namespace hsmaudit::exporters::formats::detail
