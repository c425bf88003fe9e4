// See record_oracle.h: the record path before the one-pass scan, verbatim.
#include "tests/unit/mac/record_oracle.h"

#include <string>

#include "mac/errc.h"
#include "mac/record.h"

namespace hsmaudit::mac {
namespace oracle {
namespace {

// ---- The record path before issue 18's one-pass scan, verbatim (mac/record.cpp, segment_format.cpp) ----

Error bad(std::string what) {
    return make_error(errc::bad_format, std::move(what));
}

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
        if (b0 == 0xE0 && b1 < 0xA0) return 0;
        if (b0 == 0xED && b1 > 0x9F) return 0;
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xF0 && b1 < 0x90) return 0;
        if (b0 == 0xF4 && b1 > 0x8F) return 0;
        return 4;
    }
    return 0;
}

std::string_view next_token(std::string_view& rest) {
    const auto sp = rest.find(' ');
    std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    return tok;
}

Result<std::string_view> expect_key(std::string_view tok, std::string_view key) {
    if (tok.size() <= key.size() || tok.substr(0, key.size()) != key || tok[key.size()] != '=') {
        if (tok.size() == key.size() + 1 && tok.substr(0, key.size()) == key && tok.back() == '=')
            return tok.substr(key.size() + 1);
        return bad("expected field '" + std::string(key) + "=' but found '" + std::string(tok.substr(0, 40)) + "'");
    }
    return tok.substr(key.size() + 1);
}

const char* escaped_value_problem(std::string_view v) {
    for (std::size_t i = 0; i < v.size();) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c > 0x20 && c < 0x7F && c != '\\') {
            ++i;
            continue;
        }
        if (c < 0x20 || c == 0x7F || c == ' ') return "a raw control byte or space";
        if (c == '\\') {
            if (i + 1 >= v.size()) return "a dangling backslash";
            const char e = v[i + 1];
            if (e == '\\' || e == 's' || e == 't' || e == 'n' || e == 'r') {
                i += 2;
                continue;
            }
            if (e != 'x') return "an unknown escape";
            auto lower_hex = [](char h) { return (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'); };
            if (i + 3 >= v.size() || !lower_hex(v[i + 2]) || !lower_hex(v[i + 3])) return "a bad \\x escape";
            i += 4;
            continue;
        }
        const std::size_t n = utf8_sequence_length(v, i);
        if (n == 0) return "a byte that is not valid UTF-8";
        i += n;
    }
    return nullptr;
}

Result<std::string_view> checked_str(std::string_view& rest, std::string_view key) {
    auto v = expect_key(next_token(rest), key);
    if (!v) return std::move(v).error();
    if (const char* p = escaped_value_problem(*v)) return bad("field '" + std::string(key) + "' holds " + p);
    return *v;
}

Status checked_num(std::string_view& rest, std::string_view key, std::uint64_t max) {
    auto v = expect_key(next_token(rest), key);
    if (!v) return std::move(v).error();
    std::uint64_t n = 0;
    if (!parse_u64(*v, n) || n > max) return bad("field '" + std::string(key) + "' is not a valid number");
    return {};
}

}  // namespace

Result<std::int64_t> validate_record_body(std::string_view body) {
    if (body.empty() || body.back() == ' ') return bad("record ends with a space");
    std::string_view rest = body;
    std::uint64_t seq = 0;
    if (!parse_u64(next_token(rest), seq) || seq == 0) return bad("record does not start with a sequence number");
    auto time = parse_time(next_token(rest));
    if (!time) return std::move(time).error();
    if (auto v = checked_str(rest, "serial"); !v) return std::move(v).error();
    if (auto st = checked_num(rest, "boot", UINT32_MAX); !st) return std::move(st).error();
    if (auto st = checked_num(rest, "part", UINT32_MAX); !st) return std::move(st).error();
    auto role = checked_str(rest, "role");
    if (!role) return std::move(role).error();
    if (!valid_role(*role)) return bad("unknown role '" + std::string(role->substr(0, 40)) + "'");
    if (auto st = checked_num(rest, "sess", UINT64_MAX); !st) return std::move(st).error();
    auto event = checked_str(rest, "event");
    if (!event) return std::move(event).error();
    auto cls = checked_str(rest, "class");
    if (!cls) return std::move(cls).error();
    if (!valid_event_class(*cls)) return bad("unknown class '" + std::string(cls->substr(0, 40)) + "'");
    auto res = expect_key(next_token(rest), "result");
    if (!res) return std::move(res).error();
    if (res->size() != 10 || (*res)[0] != '0' || (*res)[1] != 'x') return bad("result is not 0x and 8 hex digits");
    for (char c : res->substr(2))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad("result is not lowercase hex");
    while (!rest.empty()) {
        std::string_view tok = next_token(rest);
        const auto eq = tok.find('=');
        if (eq == std::string_view::npos) return bad("detail without '='");
        if (!valid_detail_key(tok.substr(0, eq))) return bad("detail key does not match [a-z][a-z0-9_]{0,31}");
        if (const char* p = escaped_value_problem(tok.substr(eq + 1)))
            return bad(std::string("a detail value holds ") + p);
    }
    return *time;
}

Result<RecordLineView> split_record_line(std::string_view line) {
    RecordLineView v;
    const auto sp = line.rfind(' ');
    if (sp == std::string_view::npos || line.size() - sp != 1 + 4 + 64 || line.compare(sp + 1, 4, "mac=") != 0)
        return bad("record line does not end with ' mac=<64 hex digits>'");
    if (!hex_decode(line.substr(sp + 5), v.mac)) return bad("record MAC is not 64 lowercase hex digits");
    v.body = line.substr(0, sp);
    const auto first_sp = v.body.find(' ');
    if (first_sp == std::string_view::npos || !parse_u64(v.body.substr(0, first_sp), v.seq) || v.seq == 0)
        return bad("record line does not start with a sequence number");
    return v;
}

/// ChainVerifier's time of a record whose syntax was not validated (or broke): as far as it parses.
std::optional<std::int64_t> fallback_time(std::string_view body) {
    const auto sp = body.find(' ');
    if (sp != std::string_view::npos)
        if (auto t = parse_time(body.substr(sp + 1, 24))) return *t;
    return std::nullopt;
}

}  // namespace oracle
}  // namespace hsmaudit::mac
