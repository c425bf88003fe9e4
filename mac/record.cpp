#include "mac/record.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>

#include "mac/errc.h"

namespace hsmaudit::mac {
namespace {

constexpr char kHex[] = "0123456789abcdef";

/// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid (RFC 3629).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](std::size_t k) {
        return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    };
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
        if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogates
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
        if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

void append_u64(std::uint64_t v, std::string& out) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(buf, end);
}

void append_hex32(std::uint32_t v, std::string& out) {
    out += "0x";
    for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xF];
}

void append_field(std::string_view key, std::string_view value, std::string& out) {
    out += ' ';
    out += key;
    out += '=';
    append_escaped(value, out);
}

void append_num_field(std::string_view key, std::uint64_t value, std::string& out) {
    out += ' ';
    out += key;
    out += '=';
    append_u64(value, out);
}

Error bad(std::string what) {
    return make_error(errc::bad_format, std::move(what));
}

/// Splits off the next space-separated token.
std::string_view next_token(std::string_view& rest) {
    const auto sp = rest.find(' ');
    std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    return tok;
}

Result<std::string_view> expect_key(std::string_view tok, std::string_view key) {
    if (tok.size() <= key.size() || tok.substr(0, key.size()) != key || tok[key.size()] != '=') {
        if (tok.size() == key.size() + 1 && tok.substr(0, key.size()) == key && tok.back() == '=')
            return tok.substr(key.size() + 1);  // empty value
        return bad("expected field '" + std::string(key) + "=' but found '" + std::string(tok.substr(0, 40)) + "'");
    }
    return tok.substr(key.size() + 1);
}

Result<std::string> expect_str(std::string_view& rest, std::string_view key) {
    auto v = expect_key(next_token(rest), key);
    if (!v) return std::move(v).error();
    return unescape(*v);
}

Result<std::uint64_t> expect_num(std::string_view& rest, std::string_view key, std::uint64_t max) {
    auto v = expect_key(next_token(rest), key);
    if (!v) return std::move(v).error();
    std::uint64_t n = 0;
    if (!parse_u64(*v, n) || n > max) return bad("field '" + std::string(key) + "' is not a valid number");
    return n;
}

}  // namespace

// Both run on every record (the field-syntax check): switched on the length first, so a value
// is compared with at most two candidates, inline, instead of a memcmp call per list entry.
bool valid_role(std::string_view role) {
    switch (role.size()) {
        case 1: return role == "-";
        case 2: return role == "SO" || role == "AU" || role == "CO" || role == "CU" || role == "BO";
        case 3: return role == "PSO" || role == "LCO";
        default: return false;
    }
}

bool valid_event_class(std::string_view cls) {
    switch (cls.size()) {
        case 5: return cls == "usage" || cls == "first";
        case 6: return cls == "access" || cls == "manage";
        case 7: return cls == "failure" || cls == "success";
        case 8: return cls == "external";
        case 9: return cls == "keymanage" || cls == "logmanage";
        default: return false;
    }
}

bool valid_detail_key(std::string_view k) {
    if (k.empty() || k.size() > 32 || k[0] < 'a' || k[0] > 'z') return false;
    for (char c : k)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
    if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return false;
    // One pass (it runs several times per record): digits only, overflow refused.
    std::uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        if (__builtin_mul_overflow(v, std::uint64_t{10}, &v) ||
            __builtin_add_overflow(v, static_cast<std::uint64_t>(c - '0'), &v))
            return false;
    }
    out = v;
    return true;
}

void append_escaped(std::string_view value, std::string& out) {
    for (std::size_t i = 0; i < value.size();) {
        const auto c = static_cast<unsigned char>(value[i]);
        switch (c) {
            case '\\':
                out += "\\\\";
                ++i;
                continue;
            case ' ':
                out += "\\s";
                ++i;
                continue;
            case '\t':
                out += "\\t";
                ++i;
                continue;
            case '\n':
                out += "\\n";
                ++i;
                continue;
            case '\r':
                out += "\\r";
                ++i;
                continue;
            default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
            continue;
        }
        const std::size_t n = utf8_sequence_length(value, i);
        if (n == 0) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
            continue;
        }
        out.append(value.substr(i, n));
        i += n;
    }
}

Result<std::string> unescape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == ' ')
            return bad("unescaped control byte or space in a field");
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i >= text.size()) return bad("dangling backslash in a field");
        switch (text[i]) {
            case '\\': out += '\\'; break;
            case 's': out += ' '; break;
            case 't': out += '\t'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 'x': {
                if (i + 2 >= text.size()) return bad("short \\x escape");
                auto hv = [](char h) -> int {
                    if (h >= '0' && h <= '9') return h - '0';
                    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
                    return -1;
                };
                const int hi = hv(text[i + 1]);
                const int lo = hv(text[i + 2]);
                if (hi < 0 || lo < 0) return bad("bad \\x escape");
                out += static_cast<char>((hi << 4) | lo);
                i += 2;
                break;
            }
            default: return bad("unknown escape in a field");
        }
    }
    return out;
}

void append_time(std::int64_t time_ms, std::string& out) {
    using namespace std::chrono;
    constexpr std::int64_t kMax = 253402300799999;  // 9999-12-31T23:59:59.999Z
    if (time_ms < 0) time_ms = 0;
    if (time_ms > kMax) time_ms = kMax;
    const sys_days day{days{time_ms / 86'400'000}};
    const year_month_day ymd{day};
    std::int64_t rem = time_ms % 86'400'000;
    const auto h = rem / 3'600'000;
    rem %= 3'600'000;
    const auto m = rem / 60'000;
    rem %= 60'000;
    const auto s = rem / 1000;
    const auto ms = rem % 1000;
    char buf[32];
    const int y = static_cast<int>(ymd.year());
    const unsigned mo = static_cast<unsigned>(ymd.month());
    const unsigned d = static_cast<unsigned>(ymd.day());
    // Fixed-width digits, written by hand to keep the hot path free of locale and printf.
    auto put = [&](char* p, std::int64_t v, int width) {
        for (int i = width - 1; i >= 0; --i) {
            p[i] = static_cast<char>('0' + v % 10);
            v /= 10;
        }
    };
    put(buf, y, 4);
    buf[4] = '-';
    put(buf + 5, mo, 2);
    buf[7] = '-';
    put(buf + 8, d, 2);
    buf[10] = 'T';
    put(buf + 11, h, 2);
    buf[13] = ':';
    put(buf + 14, m, 2);
    buf[16] = ':';
    put(buf + 17, s, 2);
    buf[19] = '.';
    put(buf + 20, ms, 3);
    buf[23] = 'Z';
    out.append(buf, 24);
}

std::string format_time(std::int64_t time_ms) {
    std::string s;
    append_time(time_ms, s);
    return s;
}

Result<std::int64_t> parse_time(std::string_view t) {
    using namespace std::chrono;
    if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != '.' ||
        t[23] != 'Z')
        return bad("time is not YYYY-MM-DDTHH:MM:SS.mmmZ");
    auto num = [&](std::size_t pos, std::size_t len, int& v) {
        v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (t[i] < '0' || t[i] > '9') return false;
            v = v * 10 + (t[i] - '0');
        }
        return true;
    };
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
    if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, s) ||
        !num(20, 3, ms))
        return bad("time has a non-digit");
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return bad("time is out of range");
    const std::int64_t days_since = sys_days{ymd}.time_since_epoch().count();
    if (days_since < 0) return bad("time is before 1970");
    return days_since * 86'400'000 + h * 3'600'000LL + mi * 60'000LL + s * 1000LL + ms;
}

void encode_record_body(const AuditRecord& rec, std::string& out) {
    append_u64(rec.seq, out);
    out += ' ';
    append_time(rec.time_ms, out);
    append_field("serial", rec.serial, out);
    append_num_field("boot", rec.boot, out);
    append_num_field("part", rec.partition, out);
    append_field("role", rec.role, out);
    append_num_field("sess", rec.session, out);
    append_field("event", rec.event, out);
    append_field("class", rec.event_class, out);
    out += " result=";
    append_hex32(rec.result, out);
    for (const auto& d : rec.details) {
        // Keys are validated by the writer; an invalid one is still encoded unambiguously
        // (escaped), and parse_record_body() then rejects it.
        out += ' ';
        append_escaped(d.key, out);
        out += '=';
        append_escaped(d.value, out);
    }
}

Result<AuditRecord> parse_record_body(std::string_view body) {
    AuditRecord r;
    // next_token() reads a trailing space as the end of input; reject it so that only the
    // canonical encoding parses.
    if (!body.empty() && body.back() == ' ') return bad("record ends with a space");
    std::string_view rest = body;
    if (!parse_u64(next_token(rest), r.seq) || r.seq == 0) return bad("record does not start with a sequence number");
    auto t = parse_time(next_token(rest));
    if (!t) return std::move(t).error();
    r.time_ms = *t;
    auto serial = expect_str(rest, "serial");
    if (!serial) return std::move(serial).error();
    r.serial = std::move(*serial);
    auto boot = expect_num(rest, "boot", UINT32_MAX);
    if (!boot) return std::move(boot).error();
    r.boot = static_cast<std::uint32_t>(*boot);
    auto part = expect_num(rest, "part", UINT32_MAX);
    if (!part) return std::move(part).error();
    r.partition = static_cast<std::uint32_t>(*part);
    auto role = expect_str(rest, "role");
    if (!role) return std::move(role).error();
    r.role = std::move(*role);
    auto sess = expect_num(rest, "sess", UINT64_MAX);
    if (!sess) return std::move(sess).error();
    r.session = *sess;
    auto event = expect_str(rest, "event");
    if (!event) return std::move(event).error();
    r.event = std::move(*event);
    auto cls = expect_str(rest, "class");
    if (!cls) return std::move(cls).error();
    r.event_class = std::move(*cls);
    auto res = expect_key(next_token(rest), "result");
    if (!res) return std::move(res).error();
    if (res->size() != 10 || (*res)[0] != '0' || (*res)[1] != 'x') return bad("result is not 0xHHHHHHHH");
    std::uint32_t code = 0;
    for (char c : res->substr(2)) {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        if (v < 0) return bad("result is not lowercase hex");
        code = (code << 4) | static_cast<std::uint32_t>(v);
    }
    r.result = code;
    while (!rest.empty()) {
        std::string_view tok = next_token(rest);
        const auto eq = tok.find('=');
        if (eq == std::string_view::npos) return bad("detail without '='");
        if (!valid_detail_key(tok.substr(0, eq))) return bad("invalid detail key");
        auto v = unescape(tok.substr(eq + 1));
        if (!v) return std::move(v).error();
        r.details.push_back(Detail{std::string(tok.substr(0, eq)), std::move(*v)});
    }
    return r;
}

}  // namespace hsmaudit::mac
