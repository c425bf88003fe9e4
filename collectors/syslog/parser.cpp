#include "collectors/syslog/parser.h"

#include <array>

namespace hsmaudit::collectors::syslog {
namespace {

using namespace std::chrono;
using Micros = sys_time<microseconds>;

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Reads exactly n digits at s[pos]; -1 if not.
int digits(std::string_view s, std::size_t pos, std::size_t n) {
    if (pos + n > s.size()) return -1;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!is_digit(s[pos + i])) return -1;
        v = v * 10 + (s[pos + i] - '0');
    }
    return v;
}

int month_from_name(std::string_view s) {
    for (std::size_t i = 0; i < kMonths.size(); ++i) {
        if (kMonths[i] == s) return static_cast<int>(i) + 1;
    }
    return -1;
}

std::optional<Micros> make_time(int y, int mo, int d, int h, int mi, int s, long long us) {
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
    return Micros{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{s} + microseconds{us};
}

// "hh:mm:ss" at s[pos]; returns false if not.
bool clock_time(std::string_view s, std::size_t pos, int& h, int& mi, int& sec) {
    if (pos + 8 > s.size() || s[pos + 2] != ':' || s[pos + 5] != ':') return false;
    h = digits(s, pos, 2);
    mi = digits(s, pos + 3, 2);
    sec = digits(s, pos + 6, 2);
    return h >= 0 && mi >= 0 && sec >= 0 && h <= 23 && mi <= 59 && sec <= 60;
}

// "Mmm dd hh:mm:ss" (dd space- or zero-padded, or one digit) at the start of s. Returns its length.
std::size_t bsd_timestamp(std::string_view s, int& mo, int& d, int& h, int& mi, int& sec) {
    if (s.size() < 14 || s[3] != ' ') return 0;
    mo = month_from_name(s.substr(0, 3));
    if (mo < 0) return 0;
    std::size_t p = 4;
    if (s[p] == ' ') ++p;
    if (p >= s.size() || !is_digit(s[p])) return 0;
    d = s[p] - '0';
    ++p;
    if (p < s.size() && is_digit(s[p])) {
        d = d * 10 + (s[p] - '0');
        ++p;
    }
    if (d < 1 || d > 31 || p >= s.size() || s[p] != ' ') return 0;
    ++p;
    if (!clock_time(s, p, h, mi, sec)) return 0;
    return p + 8;
}

// The appliance's "YYYY Mmm dd hh:mm:ss" at the start of s. Returns its length (0 if not, or no such day).
std::size_t luna_timestamp(std::string_view s, std::optional<Micros>& t) {
    const int y = digits(s, 0, 4);
    if (y < 0 || s.size() < 5 || s[4] != ' ') return 0;
    int mo, d, h, mi, sec;
    const std::size_t n = bsd_timestamp(s.substr(5), mo, d, h, mi, sec);
    if (n == 0) return 0;
    t = make_time(y, mo, d, h, mi, sec, 0);
    if (!t) return 0;
    return 5 + n;
}

std::string_view next_token(std::string_view& s) {
    const auto sp = s.find(' ');
    std::string_view tok = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
    return tok;
}

bool printusascii(std::string_view s) {
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126) return false;
    }
    return true;
}

void set_malformed(SyslogMessage& m, std::string reason) {
    if (m.malformed) return;  // the first reason is the useful one
    m.malformed = true;
    m.malformed_reason = std::move(reason);
}

std::string quoted(std::string_view s) {
    return "'" + to_safe_text(s.substr(0, 64)) + "'";
}

// "tag[pid]: msg", "tag [pid]: msg" (the appliance) or "tag: msg". False if s does not start with a tag.
bool parse_tag(std::string_view s, SyslogMessage& m) {
    std::size_t i = 0;
    while (i < s.size() && s[i] != ':' && s[i] != '[' && s[i] != ' ') ++i;
    if (i == 0 || i > 48 || i >= s.size()) return false;
    const std::string_view tag = s.substr(0, i);
    if (!printusascii(tag)) return false;
    std::size_t p = i;
    std::string_view pid;
    if (s[p] == ' ' && p + 1 < s.size() && s[p + 1] == '[') ++p;
    if (s[p] == '[') {
        const auto close = s.find(']', p);
        if (close == std::string_view::npos || close - p - 1 > 128 || close == p + 1) return false;
        pid = s.substr(p + 1, close - p - 1);
        if (!printusascii(pid)) return false;
        p = close + 1;
    }
    if (p >= s.size() || s[p] != ':') return false;
    ++p;
    if (p < s.size() && s[p] == ' ') ++p;
    m.app_name = std::string(tag);
    m.procid = std::string(pid);
    m.msg = std::string(s.substr(p));
    return true;
}

void parse_host_tag_msg(std::string_view rest, SyslogMessage& m) {
    std::string_view r = rest;
    const std::string_view host = next_token(r);
    if (host.empty() || !printusascii(host) || host.size() > 255) {
        m.msg = std::string(rest);
        return;
    }
    m.hostname = std::string(host);
    if (!parse_tag(r, m)) m.msg = std::string(r);
}

// Structured data: "-" or one or more [id name="value" ...]. Advances s past it.
bool parse_sd(std::string_view& s, SyslogMessage& m) {
    if (!s.empty() && s[0] == '-') {
        s.remove_prefix(1);
        return true;
    }
    if (s.empty() || s[0] != '[') {
        set_malformed(m, "STRUCTURED-DATA is neither '-' nor '['");
        return false;
    }
    auto sd_name = [&](std::string_view& in, std::string& out, const char* what) {
        std::size_t i = 0;
        while (i < in.size() && in[i] != ' ' && in[i] != '=' && in[i] != ']' && in[i] != '"') ++i;
        if (i == 0 || i > 32 || !printusascii(in.substr(0, i))) {
            set_malformed(m, std::string("STRUCTURED-DATA ") + what + " is empty, too long or not printable");
            return false;
        }
        out = std::string(in.substr(0, i));
        in.remove_prefix(i);
        return true;
    };
    while (!s.empty() && s[0] == '[') {
        s.remove_prefix(1);
        SdElement e;
        if (!sd_name(s, e.id, "SD-ID")) return false;
        for (;;) {
            if (s.empty()) {
                set_malformed(m, "STRUCTURED-DATA element '" + e.id + "' is not closed by ']'");
                return false;
            }
            if (s[0] == ']') {
                s.remove_prefix(1);
                break;
            }
            if (s[0] != ' ') {
                set_malformed(m, "STRUCTURED-DATA element '" + e.id + "' has junk after its name or a value");
                return false;
            }
            s.remove_prefix(1);
            SdParam p;
            if (!sd_name(s, p.name, "PARAM-NAME")) return false;
            if (s.size() < 2 || s[0] != '=' || s[1] != '"') {
                set_malformed(m, "STRUCTURED-DATA param '" + p.name + "' lacks =\"value\"");
                return false;
            }
            s.remove_prefix(2);
            std::string value;
            bool closed = false;
            while (!s.empty()) {
                const char c = s[0];
                s.remove_prefix(1);
                if (c == '\\' && !s.empty() && (s[0] == '"' || s[0] == '\\' || s[0] == ']')) {
                    value += s[0];
                    s.remove_prefix(1);
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    value += c;
                }
            }
            if (!closed) {
                set_malformed(m, "STRUCTURED-DATA param '" + p.name + "' value is not closed by '\"'");
                return false;
            }
            p.value = std::move(value);
            e.params.push_back(std::move(p));
        }
        m.structured_data.push_back(std::move(e));
    }
    return true;
}

void parse_5424(std::string_view s, SyslogMessage& m) {
    m.format = SyslogFormat::rfc5424;
    struct Field {
        const char* name;
        std::size_t max;
        std::string* out;
    };
    const std::string_view ts = next_token(s);
    m.timestamp_text = std::string(ts);
    if (ts != "-") {
        m.timestamp = parse_rfc3339(ts);
        m.timestamp_has_zone = m.timestamp.has_value();
        if (!m.timestamp) set_malformed(m, "TIMESTAMP " + quoted(ts) + " is not RFC 3339");
    }
    const Field fields[] = {{"HOSTNAME", 255, &m.hostname},
                            {"APP-NAME", 48, &m.app_name},
                            {"PROCID", 128, &m.procid},
                            {"MSGID", 32, &m.msgid}};
    for (const auto& f : fields) {
        if (s.empty()) {
            set_malformed(m, std::string("header ends before ") + f.name);
            return;
        }
        const std::string_view tok = next_token(s);
        if (tok.empty() || tok.size() > f.max || !printusascii(tok)) {
            set_malformed(m, std::string(f.name) + " " + quoted(tok) + " is empty, longer than " +
                                 std::to_string(f.max) + " or not printable US-ASCII");
            m.msg = std::string(s);
            return;
        }
        if (tok != "-") *f.out = std::string(tok);
    }
    if (s.empty()) {
        set_malformed(m, "header ends before STRUCTURED-DATA");
        return;
    }
    if (!parse_sd(s, m)) {
        m.msg = std::string(s);
        return;
    }
    if (s.empty()) return;
    if (s[0] != ' ') {
        set_malformed(m, "no space between STRUCTURED-DATA and MSG");
        m.msg = std::string(s);
        return;
    }
    s.remove_prefix(1);
    if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);  // BOM: the MSG is UTF-8
    m.msg = std::string(s);
}

void parse_3164(std::string_view s, SyslogMessage& m) {
    m.format = SyslogFormat::rfc3164;
    int mo, d, h, mi, sec;
    std::optional<Micros> t;
    if (const std::size_t n = bsd_timestamp(s, mo, d, h, mi, sec); n > 0 && (n == s.size() || s[n] == ' ')) {
        m.timestamp_text = std::string(s.substr(0, n));
        s.remove_prefix(std::min(n + 1, s.size()));
    } else if (const std::size_t l = luna_timestamp(s, t); l > 0 && (l == s.size() || s[l] == ' ')) {
        m.timestamp_text = std::string(s.substr(0, l));
        m.timestamp = t;
        s.remove_prefix(std::min(l + 1, s.size()));
    } else if (!s.empty() && is_digit(s[0])) {
        std::string_view r = s;
        const std::string_view tok = next_token(r);
        if (auto t3339 = parse_rfc3339(tok)) {
            m.timestamp_text = std::string(tok);
            m.timestamp = t3339;
            m.timestamp_has_zone = true;
            s = r;
        } else {
            m.msg = std::string(s);  // RFC 3164 4.3.2: no valid TIMESTAMP, the whole is the MSG
            return;
        }
    } else {
        m.msg = std::string(s);
        return;
    }
    parse_host_tag_msg(s, m);
}

// A log-file line without PRI.
void parse_file_line(std::string_view s, SyslogMessage& m) {
    std::optional<Micros> t;
    if (const std::size_t l = luna_timestamp(s, t); l > 0 && l < s.size() && s[l] == ' ') {
        m.timestamp = t;
        m.timestamp_text = std::string(s.substr(0, l));
        std::string_view r = s.substr(l + 1);
        const std::string_view host = next_token(r);
        std::string_view after_host = r;
        const std::string_view fac = next_token(r);
        const std::string_view sev = next_token(r);
        const int f = facility_from_name(fac);
        const int v = severity_from_name(sev);
        if (host.empty() || !printusascii(host)) {
            m.format = SyslogFormat::luna_file;
            set_malformed(m, "no HOSTNAME after the timestamp");
            m.msg = std::string(s.substr(l + 1));
            return;
        }
        m.hostname = std::string(host);
        if (f >= 0 && v >= 0) {
            m.format = SyslogFormat::luna_file;
            m.facility = f;
            m.severity = v;
            if (!parse_tag(r, m)) m.msg = std::string(r);
        } else {
            m.format = SyslogFormat::plain_file;  // a year but no facility/severity words
            if (!parse_tag(after_host, m)) m.msg = std::string(after_host);
        }
        return;
    }
    int mo, d, h, mi, sec;
    if (const std::size_t n = bsd_timestamp(s, mo, d, h, mi, sec); n > 0 && n < s.size() && s[n] == ' ') {
        m.format = SyslogFormat::plain_file;
        m.timestamp_text = std::string(s.substr(0, n));
        parse_host_tag_msg(s.substr(n + 1), m);
        return;
    }
    std::string_view r = s;
    const std::string_view tok = next_token(r);
    if (auto t3339 = parse_rfc3339(tok)) {
        m.format = SyslogFormat::plain_file;
        m.timestamp = t3339;
        m.timestamp_has_zone = true;
        m.timestamp_text = std::string(tok);
        parse_host_tag_msg(r, m);
        return;
    }
    set_malformed(m, "no PRI and no recognized log-file timestamp");
    m.msg = std::string(s);
}

}  // namespace

std::string_view without_line_end(std::string_view in) noexcept {
    if (!in.empty() && (in.back() == '\0' || in.back() == '\n')) {
        in.remove_suffix(1);
        if (!in.empty() && in.back() == '\r') in.remove_suffix(1);
    }
    return in;
}

const char* to_string(Transport t) noexcept {
    switch (t) {
        case Transport::none: return "none";
        case Transport::unix_datagram: return "unix";
        case Transport::udp: return "udp";
        case Transport::tcp: return "tcp";
        case Transport::file: return "file";
        case Transport::journal: return "journal";
    }
    return "unknown";
}

const char* to_string(SyslogFormat f) noexcept {
    switch (f) {
        case SyslogFormat::unknown: return "unknown";
        case SyslogFormat::rfc5424: return "rfc5424";
        case SyslogFormat::rfc3164: return "rfc3164";
        case SyslogFormat::luna_file: return "luna_file";
        case SyslogFormat::plain_file: return "plain_file";
        case SyslogFormat::journal: return "journal";
    }
    return "unknown";
}

int facility_from_name(std::string_view n) noexcept {
    constexpr std::array<std::string_view, 24> kNames = {
        "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
        "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
        "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == n) return static_cast<int>(i);
    }
    return -1;
}

int severity_from_name(std::string_view n) noexcept {
    if (n == "emerg" || n == "panic") return 0;
    if (n == "alert") return 1;
    if (n == "crit") return 2;
    if (n == "err" || n == "error") return 3;
    if (n == "warn" || n == "warning") return 4;
    if (n == "notice") return 5;
    if (n == "info") return 6;
    if (n == "debug") return 7;
    return -1;
}

std::optional<sys_time<microseconds>> parse_rfc3339(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T') return std::nullopt;
    const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
    int h, mi, sec;
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || !clock_time(s, 11, h, mi, sec)) return std::nullopt;
    std::size_t p = 19;
    long long us = 0;
    if (p < s.size() && s[p] == '.') {
        ++p;
        std::size_t n = 0;
        while (p < s.size() && is_digit(s[p])) {
            if (n < 6) us = us * 10 + (s[p] - '0');
            ++n;
            ++p;
        }
        if (n == 0 || n > 9) return std::nullopt;
        for (std::size_t i = n; i < 6; ++i) us *= 10;
    }
    if (p >= s.size()) return std::nullopt;
    int offset_min = 0;
    if (s[p] == 'Z') {
        ++p;
    } else if (s[p] == '+' || s[p] == '-') {
        const int oh = digits(s, p + 1, 2);
        if (oh < 0 || p + 3 >= s.size() || s[p + 3] != ':') return std::nullopt;
        const int om = digits(s, p + 4, 2);
        if (om < 0 || oh > 23 || om > 59) return std::nullopt;
        offset_min = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
        p += 6;
    } else {
        return std::nullopt;
    }
    if (p != s.size()) return std::nullopt;
    auto t = make_time(y, mo, d, h, mi, sec, us);
    if (!t) return std::nullopt;
    return *t - minutes{offset_min};
}

std::string to_safe_text(std::string_view in, bool* escaped) {
    // Length of the valid UTF-8 sequence at i that needs no escaping, 0 if the byte must be escaped.
    auto ok_len = [&](std::size_t i) -> std::size_t {
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x80) return (c < 0x20 && c != '\t') || c == 0x7F ? 0 : 1;
        auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
            if (i + k >= in.size()) return false;
            const auto b = static_cast<unsigned char>(in[i + k]);
            return b >= lo && b <= hi;
        };
        if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
        if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
        if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
        if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
        if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
        if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
        if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
        return 0;
    };
    bool needs = false;
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = ok_len(i);
        if (n == 0) {
            needs = true;
            break;
        }
        i += n;
    }
    if (escaped) *escaped = needs;
    if (!needs) return std::string(in);
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(in.size() + in.size() / 4);
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = ok_len(i);
        if (n == 0) {
            const auto c = static_cast<unsigned char>(in[i]);
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
        } else if (n == 1 && in[i] == '\\') {
            out += "\\\\";
            ++i;
        } else {
            out.append(in.substr(i, n));
            i += n;
        }
    }
    return out;
}

SyslogMessage parse_message(std::string_view in) {
    SyslogMessage m;
    m.raw = std::string(in);  // exactly as received, its line end too: the spool keeps these bytes
    in = without_line_end(in);
    if (in.empty()) {
        set_malformed(m, "empty message");
        return m;
    }
    if (in[0] != '<') {
        parse_file_line(in, m);
        return m;
    }
    std::size_t p = 1;
    int value = 0;
    while (p < in.size() && p <= 4 && is_digit(in[p])) value = value * 10 + (in[p++] - '0');
    const std::size_t ndigits = p - 1;
    if (ndigits == 0 || ndigits > 3 || p >= in.size() || in[p] != '>') {
        set_malformed(m, "PRI is not 1 to 3 digits between '<' and '>'");
        m.msg = std::string(in);
        return m;
    }
    if (ndigits > 1 && in[1] == '0') {
        set_malformed(m, "PRI " + std::string(in.substr(1, ndigits)) + " has a leading zero");
        m.msg = std::string(in);
        return m;
    }
    if (value > 191) {
        set_malformed(m, "PRI " + std::to_string(value) + " is out of range 0..191");
        m.msg = std::string(in);
        return m;
    }
    m.facility = value / 8;
    m.severity = value % 8;
    const std::string_view rest = in.substr(p + 1);
    if (rest.size() >= 2 && rest[0] == '1' && rest[1] == ' ') {
        parse_5424(rest.substr(2), m);
    } else if (rest.size() >= 2 && is_digit(rest[0]) && rest[1] == ' ') {
        m.format = SyslogFormat::rfc5424;
        set_malformed(m, "syslog VERSION " + std::string(1, rest[0]) + " is not supported (only 1)");
        m.msg = std::string(rest);
    } else {
        parse_3164(rest, m);
    }
    return m;
}

}  // namespace hsmaudit::collectors::syslog
