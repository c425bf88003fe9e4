#include "mac/record_scan.h"

#include <bit>
#include <cstring>

#include "mac/record.h"

namespace hsmaudit::mac {
namespace {

using Problem = RecordScan::Problem;

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
constexpr std::uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;

inline std::uint64_t load8(const char* p) {
    std::uint64_t x = 0;
    std::memcpy(&x, p, 8);
    if constexpr (std::endian::native != std::endian::little) x = __builtin_bswap64(x);
    return x;
}

/// 0x80 in each byte of `x` that an escaped value cannot hold as it is: a space or another byte
/// below 0x21, a backslash, DEL and every byte from 0x80 (UTF-8, checked apart); 0 elsewhere.
/// Per-byte arithmetic on the low seven bits: no carry crosses a byte.
inline std::uint64_t special_bytes(std::uint64_t x) {
    const std::uint64_t low = x & kLow7;
    const std::uint64_t below_21 = ~(low + (0x80 - 0x21) * kOnes);  // high bit set where low < 0x21
    const std::uint64_t del = low + kOnes;                          // high bit set where low == 0x7F
    const std::uint64_t z = low ^ (kOnes * '\\');                   // zero where low == '\\'
    const std::uint64_t backslash = ~(((z & kLow7) + kLow7) | z | kLow7);
    return (x | below_21 | del | backslash) & kHigh;
}

/// Length of the valid UTF-8 sequence at p (p < end, *p >= 0x80), 0 if invalid (RFC 3629), as
/// record.cpp's utf8_sequence_length(): a space is never a continuation byte, so bounding by the
/// body instead of the token changes nothing.
inline std::size_t utf8_length(const unsigned char* p, const unsigned char* end) {
    const unsigned b0 = p[0];
    auto cont = [&](std::ptrdiff_t k) { return p + k < end && (p[k] & 0xC0) == 0x80; };
    if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (b0 == 0xE0 && p[1] < 0xA0) return 0;  // overlong
        if (b0 == 0xED && p[1] > 0x9F) return 0;  // surrogates
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (b0 == 0xF0 && p[1] < 0x90) return 0;  // overlong
        if (b0 == 0xF4 && p[1] > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

inline bool lower_hex(unsigned char h) {
    return (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f');
}

/// True if the 8 bytes at p are lowercase hex digits (crypto.cpp's hex8 test, eight at a time).
inline bool lower_hex8(const unsigned char* p) {
    const std::uint64_t x = load8(reinterpret_cast<const char*>(p));
    auto in_range = [x](std::uint8_t lo, std::uint8_t hi) {  // per byte of x below 0x80: no carry
        return (x + (0x80 - lo) * kOnes) & ~(x + (0x7F - hi) * kOnes) & kHigh;
    };
    return (x & kHigh) == 0 && (in_range('0', '9') | in_range('a', 'f')) == kHigh;
}

/// The first byte from p that scan_value() must look at (special_bytes()), or `end`.
inline const unsigned char* next_special(const unsigned char* p, const unsigned char* end) {
    while (end - p >= 8) {
        const std::uint64_t s = special_bytes(load8(reinterpret_cast<const char*>(p)));
        if (s != 0) return p + (std::countr_zero(s) >> 3);
        p += 8;
    }
    while (p<end&& * p> 0x20 && *p < 0x7F && *p != '\\') ++p;
    return p;
}

/// Scans an escaped value (FORMAT.md 2.2) from p to its end (the next space, or `end`); returns
/// that end, or nullptr with `problem` set to what escaped_value_problem() names first. Eight
/// bytes a step: a value is nearly all printable ASCII.
inline const unsigned char* scan_value(const unsigned char* p, const unsigned char* end, const char*& problem) {
    for (;;) {
        p = next_special(p, end);
        if (p == end) return p;
        const unsigned c = *p;
        if (c == ' ') return p;
        if (c < 0x20 || c == 0x7F) {
            problem = "a raw control byte or space";
            return nullptr;
        }
        if (c == '\\') {
            // The escape's bytes must lie in the token: a space (or the end) cuts it short.
            if (p + 1 >= end || p[1] == ' ') {
                problem = "a dangling backslash";
                return nullptr;
            }
            const unsigned char e = p[1];
            if (e == '\\' || e == 's' || e == 't' || e == 'n' || e == 'r') {
                p += 2;
                continue;
            }
            if (e != 'x') {
                problem = "an unknown escape";
                return nullptr;
            }
            if (p + 3 >= end || !lower_hex(p[2]) || !lower_hex(p[3])) {
                problem = "a bad \\x escape";
                return nullptr;
            }
            p += 4;
            continue;
        }
        const std::size_t n = utf8_length(p, end);
        if (n == 0) {
            problem = "a byte that is not valid UTF-8";
            return nullptr;
        }
        p += n;
    }
}

/// The token at p: up to the next space or `end`.
inline std::string_view token_at(const unsigned char* p, const unsigned char* end) {
    const auto* sp = static_cast<const unsigned char*>(std::memchr(p, ' ', static_cast<std::size_t>(end - p)));
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>((sp != nullptr ? sp : end) - p)};
}

/// Strict unsigned decimal from p (parse_u64's rules) up to the next space or `end`; returns the
/// end of the token, or nullptr if it is not one (or above `max`).
inline const unsigned char* scan_number(const unsigned char* p, const unsigned char* end, std::uint64_t max,
                                        std::uint64_t& out) {
    const unsigned char* q = p;
    std::uint64_t v = 0;
    bool overflow = false;
    while (q < end && *q >= '0' && *q <= '9') {
        overflow |= __builtin_mul_overflow(v, std::uint64_t{10}, &v);
        overflow |= __builtin_add_overflow(v, static_cast<std::uint64_t>(*q - '0'), &v);
        ++q;
    }
    const auto len = q - p;
    if (q < end && *q != ' ') return nullptr;  // another byte in the token
    if (len == 0 || len > 20 || (len > 1 && *p == '0') || overflow || v > max) return nullptr;
    out = v;
    return q;
}

/// Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's days_from_civil,
/// what std::chrono::sys_days computes).
constexpr std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr bool leap(int y) {
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/// parse_time() of the 24 bytes at t, with its messages: nullptr and `ms` set if it is a time.
inline const char* time_problem(const unsigned char* t, std::int64_t& ms) {
    if (t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != '.' || t[23] != 'Z')
        return "time is not YYYY-MM-DDTHH:MM:SS.mmmZ";
    bool digits = true;
    auto num = [&](int pos, int len) {
        int v = 0;
        for (int i = pos; i < pos + len; ++i) {
            const unsigned d = t[i] - static_cast<unsigned>('0');
            digits &= d <= 9;
            v = v * 10 + static_cast<int>(d);
        }
        return v;
    };
    const int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2),
              milli = num(20, 3);
    if (!digits) return "time has a non-digit";
    static constexpr unsigned char kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool date_ok = mo >= 1 && mo <= 12 && d >= 1 && d <= kDays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0);
    if (!date_ok || h > 23 || mi > 59 || s > 59) return "time is out of range";
    const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    if (days < 0) return "time is before 1970";
    ms = days * 86'400'000 + h * 3'600'000LL + mi * 60'000LL + s * 1000LL + milli;
    return nullptr;
}

/// A field's "key=" (at most 8 bytes) as the little-endian word load8() reads.
constexpr std::uint64_t key_word(std::string_view key) {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < key.size(); ++i) w |= std::uint64_t{static_cast<unsigned char>(key[i])} << (8 * i);
    return w;
}

/// Matches "key=" (kWord, kLen bytes) at p within the body: one load and compare (GCC calls
/// memcmp for these short sizes); byte by byte only within 8 bytes of the body's end.
template <std::uint64_t kWord, std::size_t kLen>
inline bool key_at(const unsigned char* p, const unsigned char* end) {
    static_assert(kLen >= 1 && kLen <= 8, "keys of at most 8 bytes with their '='");
    const auto left = static_cast<std::size_t>(end - p);
    if (left < kLen) return false;
    if (left < 8) {
        for (std::size_t i = 0; i < kLen; ++i)
            if (p[i] != static_cast<unsigned char>(kWord >> (8 * i))) return false;
        return true;
    }
    constexpr std::uint64_t kMask = kLen == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * kLen)) - 1;
    return (load8(reinterpret_cast<const char*>(p)) & kMask) == kWord;
}

/// The body after the sequence number and its space (p), checked as validate_record_body() checks
/// it, in its order. Sets out.syntax_ (and what its message needs), out.time_*, out.boot.
void scan_fields(const unsigned char* p, const unsigned char* end, RecordScan& out) {
    // The time: 24 bytes; the verifier also takes them as the record's time when the rest breaks.
    const char* time_error = "time is not YYYY-MM-DDTHH:MM:SS.mmmZ";
    bool time_token = false;  // the token is exactly 24 bytes
    if (end - p >= 24) {
        std::int64_t ms = 0;
        time_error = time_problem(p, ms);
        if (time_error == nullptr) {
            out.time_ms = ms;
            out.time_known = true;
        }
        // The token is the time only if it ends after 24 bytes (a time holds no space: the
        // search for one runs only for a window that is not a time).
        time_token = (end - p == 24 || p[24] == ' ') && (time_error == nullptr || std::memchr(p, ' ', 24) == nullptr);
        if (!time_token) time_error = "time is not YYYY-MM-DDTHH:MM:SS.mmmZ";
    }  // shorter: parse_time() fails on its length, the verifier's fallback too
    if (time_error != nullptr) {
        out.syntax_ = Problem::time;
        out.detail_ = time_error;
        return;
    }
    p += 24;
    // Each field below: " key=value"; a missing space means the body ended (its token is "").
    auto expect = [&](const char* field, auto&& matches) -> bool {
        if (p == end) {
            out.syntax_ = Problem::expected_field;
            out.field_ = field;
            out.token_ = {};
            return false;
        }
        ++p;  // the space
        if (!matches()) {
            out.syntax_ = Problem::expected_field;
            out.field_ = field;
            out.token_ = token_at(p, end);
            return false;
        }
        return true;
    };
    auto str_field = [&](const char* field, auto&& matches, std::size_t key_len, std::string_view& value) -> bool {
        if (!expect(field, matches)) return false;
        p += key_len;
        const char* problem = nullptr;
        const unsigned char* v = p;
        const unsigned char* e = scan_value(p, end, problem);
        if (e == nullptr) {
            out.syntax_ = Problem::bad_value;
            out.field_ = field;
            out.detail_ = problem;
            return false;
        }
        value = {reinterpret_cast<const char*>(v), static_cast<std::size_t>(e - v)};
        p = e;
        return true;
    };
    auto num_field = [&](const char* field, auto&& matches, std::size_t key_len, std::uint64_t max,
                         std::uint64_t& value) -> bool {
        if (!expect(field, matches)) return false;
        p += key_len;
        const unsigned char* e = scan_number(p, end, max, value);
        if (e == nullptr) {
            out.syntax_ = Problem::bad_number;
            out.field_ = field;
            return false;
        }
        p = e;
        return true;
    };
    std::string_view value;
    std::uint64_t n = 0;
    if (!str_field(
            "serial", [&] { return key_at<key_word("serial="), 7>(p, end); }, 7, value))
        return;
    if (!num_field(
            "boot", [&] { return key_at<key_word("boot="), 5>(p, end); }, 5, UINT32_MAX, n))
        return;
    out.boot = static_cast<std::uint32_t>(n);
    if (!num_field(
            "part", [&] { return key_at<key_word("part="), 5>(p, end); }, 5, UINT32_MAX, n))
        return;
    if (!str_field(
            "role", [&] { return key_at<key_word("role="), 5>(p, end); }, 5, value))
        return;
    if (!valid_role(value)) {
        out.syntax_ = Problem::unknown_role;
        out.token_ = value;
        return;
    }
    if (!num_field(
            "sess", [&] { return key_at<key_word("sess="), 5>(p, end); }, 5, UINT64_MAX, n))
        return;
    if (!str_field(
            "event", [&] { return key_at<key_word("event="), 6>(p, end); }, 6, value))
        return;
    if (!str_field(
            "class", [&] { return key_at<key_word("class="), 6>(p, end); }, 6, value))
        return;
    if (!valid_event_class(value)) {
        out.syntax_ = Problem::unknown_class;
        out.token_ = value;
        return;
    }
    if (!expect("result", [&] { return key_at<key_word("result="), 7>(p, end); })) return;
    p += 7;
    // "0x" and 8 lowercase hex digits, the token exactly 10 bytes.
    const bool ends_at_ten = end - p >= 10 && (end - p == 10 || p[10] == ' ');
    if (!ends_at_ten || p[0] != '0' || p[1] != 'x' || !lower_hex8(p + 2)) {
        // Which message: a space among the ten bytes makes the token shorter (its shape is wrong).
        const bool ten = ends_at_ten && std::memchr(p, ' ', 10) == nullptr;
        out.syntax_ = !ten || p[0] != '0' || p[1] != 'x' ? Problem::result_shape : Problem::result_hex;
        return;
    }
    p += 10;
    // Details: " key=value" to the end. The body does not end with a space (checked first).
    while (p != end) {
        ++p;  // the space
        const unsigned char* k = p;
        while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) ++p;
        if (p == end || *p != '=') {
            // Not a key character: the token has no '=' at all, or its key breaks the pattern.
            const std::string_view tok = token_at(k, end);
            out.syntax_ = tok.find('=') == std::string_view::npos ? Problem::detail_no_eq : Problem::detail_key;
            return;
        }
        const auto key_len = p - k;
        if (key_len == 0 || key_len > 32 || *k < 'a' || *k > 'z') {
            out.syntax_ = Problem::detail_key;
            return;
        }
        ++p;  // '='
        const char* problem = nullptr;
        const unsigned char* e = scan_value(p, end, problem);
        if (e == nullptr) {
            out.syntax_ = Problem::detail_value;
            out.detail_ = problem;
            return;
        }
        p = e;
    }
}

}  // namespace

std::string RecordScan::split_error() const {
    switch (split_) {
        case Problem::none: return {};
        case Problem::no_mac_field: return "record line does not end with ' mac=<64 hex digits>'";
        case Problem::mac_not_hex: return "record MAC is not 64 lowercase hex digits";
        default: return "record line does not start with a sequence number";
    }
}

std::string RecordScan::syntax_error() const {
    auto limited = [](std::string_view v) { return std::string(v.substr(0, 40)); };
    switch (syntax_) {
        case Problem::none: return {};
        case Problem::trailing_space: return "record ends with a space";
        case Problem::time: return detail_;
        case Problem::expected_field:
            return "expected field '" + std::string(field_) + "=' but found '" + limited(token_) + "'";
        case Problem::bad_value: return "field '" + std::string(field_) + "' holds " + detail_;
        case Problem::bad_number: return "field '" + std::string(field_) + "' is not a valid number";
        case Problem::unknown_role: return "unknown role '" + limited(token_) + "'";
        case Problem::unknown_class: return "unknown class '" + limited(token_) + "'";
        case Problem::result_shape: return "result is not 0x and 8 hex digits";
        case Problem::result_hex: return "result is not lowercase hex";
        case Problem::detail_no_eq: return "detail without '='";
        case Problem::detail_key: return "detail key does not match [a-z][a-z0-9_]{0,31}";
        case Problem::detail_value: return std::string("a detail value holds ") + detail_;
        default: return "record does not start with a sequence number";
    }
}

void scan_record_line(std::string_view line, RecordScan& out) {
    out.body = {};
    out.seq = 0;
    out.time_ms = 0;
    out.time_known = false;
    out.boot = 0;
    out.split_ = Problem::none;
    out.syntax_ = Problem::none;
    // " mac=" and 64 lowercase hex digits at the end (split_record_line: the last space starts it).
    constexpr std::size_t kMacField = 1 + 4 + 64;
    const std::size_t n = line.size();
    if (n < kMacField || line[n - kMacField] != ' ' || std::memcmp(line.data() + n - kMacField + 1, "mac=", 4) != 0) {
        out.split_ = Problem::no_mac_field;
        return;
    }
    const std::string_view hex = line.substr(n - 64);
    if (!hex_decode(hex, out.mac)) {
        // A space among the digits makes it the last space: the field's shape is what is wrong.
        out.split_ = hex.find(' ') != std::string_view::npos ? Problem::no_mac_field : Problem::mac_not_hex;
        return;
    }
    const std::string_view body = line.substr(0, n - kMacField);
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    const auto* end = p + body.size();
    // The sequence number: digits up to the first space.
    std::uint64_t seq = 0;
    const unsigned char* q = scan_number(p, end, UINT64_MAX, seq);
    if (q == nullptr || q == end || seq == 0) {
        out.split_ = Problem::no_sequence;
        return;
    }
    out.body = body;
    out.seq = seq;
    // validate_record_body()'s checks, in its order; a trailing space first.
    if (body.back() == ' ') {
        out.syntax_ = Problem::trailing_space;
        // The time the verifier falls back to is still read.
        RecordScan ignored;
        scan_fields(q + 1, end, ignored);
        out.time_ms = ignored.time_ms;
        out.time_known = ignored.time_known;
        return;
    }
    scan_fields(q + 1, end, out);
}

}  // namespace hsmaudit::mac
