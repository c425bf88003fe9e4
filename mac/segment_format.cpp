#include "mac/segment_format.h"

#include <charconv>
#include <cstdio>

#include "mac/errc.h"
#include "mac/record.h"

namespace hsmaudit::mac {
namespace {

Error bad(std::string what) {
    return make_error(errc::bad_format, std::move(what));
}

void add(std::string& out, std::string_view key, std::string_view value) {
    out += ' ';
    out += key;
    out += '=';
    out += value;
}
void add_num(std::string& out, std::string_view key, std::uint64_t v) {
    add(out, key, std::to_string(v));
}
void add_hex(std::string& out, std::string_view key, ByteView v) {
    out += ' ';
    out += key;
    out += '=';
    hex_append(v, out);
}
void add_serial(std::string& out, std::string_view serial) {
    out += " serial=";
    append_escaped(serial, out);
}

/// Reads "key=value" fields in a fixed order.
class FieldReader {
public:
    explicit FieldReader(std::string_view rest) : rest_(rest) {}

    Result<std::string_view> raw(std::string_view key) {
        const auto sp = rest_.find(' ');
        std::string_view tok = rest_.substr(0, sp);
        rest_ = sp == std::string_view::npos ? std::string_view{} : rest_.substr(sp + 1);
        trailing_space_ = sp != std::string_view::npos && rest_.empty();
        if (tok.size() < key.size() + 1 || tok.substr(0, key.size()) != key || tok[key.size()] != '=')
            return bad("expected '" + std::string(key) + "=' in a control line");
        return tok.substr(key.size() + 1);
    }
    Result<std::uint64_t> num(std::string_view key, std::uint64_t max = UINT64_MAX) {
        auto v = raw(key);
        if (!v) return std::move(v).error();
        std::uint64_t n = 0;
        if (!parse_u64(*v, n) || n > max) return bad("'" + std::string(key) + "' is not a valid number");
        return n;
    }
    template <std::size_t N>
    Status hex(std::string_view key, std::array<std::uint8_t, N>& out) {
        auto v = raw(key);
        if (!v) return std::move(v).error();
        if (!hex_decode(*v, out))
            return bad("'" + std::string(key) + "' is not " + std::to_string(2 * N) + " lowercase hex digits");
        return {};
    }
    Result<std::int64_t> time() {
        auto v = raw("time");
        if (!v) return std::move(v).error();
        return parse_time(*v);
    }
    Result<std::string> serial() {
        auto v = raw("serial");
        if (!v) return std::move(v).error();
        return unescape(*v);
    }
    // A trailing space leaves rest_ empty too; only the canonical line (no trailing space) is done.
    [[nodiscard]] bool done() const { return rest_.empty() && !trailing_space_; }

private:
    std::string_view rest_;
    bool trailing_space_ = false;
};

}  // namespace

std::string OpenLine::body() const {
    std::string s = "@open v=" + std::to_string(kFormatVersion);
    add_hex(s, "chain", chain);
    add_serial(s, serial);
    add_num(s, "epoch", epoch);
    add_num(s, "boot", boot);
    add_num(s, "first", first_seq);
    add(s, "time", format_time(time_ms));
    add_hex(s, "prev", prev);
    return s;
}

std::string OpenLine::line() const {
    std::string s = body();
    add_hex(s, "mac", mac);
    s += '\n';
    return s;
}

std::string SealLine::mac_body() const {
    std::string s = "@seal v=" + std::to_string(kFormatVersion);
    add_hex(s, "chain", chain);
    add_serial(s, serial);
    add_num(s, "epoch", epoch);
    add_num(s, "records", records);
    add_num(s, "first", first_seq);
    add_num(s, "last", last_seq);
    add(s, "time", format_time(time_ms));
    add_hex(s, "final", final_mac);
    add_hex(s, "digest", digest);
    return s;
}

std::string SealLine::signed_body() const {
    std::string s = mac_body();
    add_hex(s, "mac", mac);
    return s;
}

std::string SealLine::line() const {
    std::string s = signed_body();
    add_hex(s, "sig", sig);
    s += '\n';
    return s;
}

LineKind classify_line(std::string_view line) {
    if (!line.empty() && line[0] >= '1' && line[0] <= '9') return LineKind::record;
    if (line.starts_with("@open ")) return LineKind::open;
    if (line.starts_with("@seal ")) return LineKind::seal;
    return LineKind::unknown;
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

Result<OpenLine> parse_open_line(std::string_view line) {
    if (!line.starts_with("@open ")) return bad("not an open line");
    FieldReader f(line.substr(6));
    OpenLine o;
    auto v = f.num("v");
    if (!v) return std::move(v).error();
    if (*v != kFormatVersion) return bad("unsupported segment format version " + std::to_string(*v));
    HSMAUDIT_TRY(f.hex("chain", o.chain));
    auto serial = f.serial();
    if (!serial) return std::move(serial).error();
    o.serial = std::move(*serial);
    auto epoch = f.num("epoch");
    if (!epoch) return std::move(epoch).error();
    o.epoch = *epoch;
    auto boot = f.num("boot", UINT32_MAX);
    if (!boot) return std::move(boot).error();
    o.boot = static_cast<std::uint32_t>(*boot);
    auto first = f.num("first");
    if (!first) return std::move(first).error();
    if (*first == 0) return bad("'first' must be at least 1");
    o.first_seq = *first;
    auto t = f.time();
    if (!t) return std::move(t).error();
    o.time_ms = *t;
    HSMAUDIT_TRY(f.hex("prev", o.prev));
    HSMAUDIT_TRY(f.hex("mac", o.mac));
    if (!f.done()) return bad("unexpected data after the open line's MAC");
    return o;
}

Result<ParsedSeal> parse_seal_line(std::string_view line) {
    if (!line.starts_with("@seal ")) return bad("not a seal line");
    FieldReader f(line.substr(6));
    ParsedSeal p;
    SealLine& s = p.seal;
    auto v = f.num("v");
    if (!v) return std::move(v).error();
    if (*v != kFormatVersion) return bad("unsupported seal format version " + std::to_string(*v));
    HSMAUDIT_TRY(f.hex("chain", s.chain));
    auto serial = f.serial();
    if (!serial) return std::move(serial).error();
    s.serial = std::move(*serial);
    auto epoch = f.num("epoch");
    if (!epoch) return std::move(epoch).error();
    s.epoch = *epoch;
    auto records = f.num("records");
    if (!records) return std::move(records).error();
    s.records = *records;
    auto first = f.num("first");
    if (!first) return std::move(first).error();
    s.first_seq = *first;
    auto last = f.num("last");
    if (!last) return std::move(last).error();
    s.last_seq = *last;
    auto t = f.time();
    if (!t) return std::move(t).error();
    s.time_ms = *t;
    HSMAUDIT_TRY(f.hex("final", s.final_mac));
    HSMAUDIT_TRY(f.hex("digest", s.digest));
    HSMAUDIT_TRY(f.hex("mac", s.mac));
    HSMAUDIT_TRY(f.hex("sig", s.sig));
    if (!f.done()) return bad("unexpected data after the seal's signature");
    // The spans are fixed suffix lengths: " mac=" + 64 + " sig=" + 128.
    constexpr std::size_t kSigPart = 5 + 128;
    constexpr std::size_t kMacPart = 5 + 64;
    p.signed_body = line.substr(0, line.size() - kSigPart);
    p.mac_body = line.substr(0, line.size() - kSigPart - kMacPart);
    return p;
}

Bytes32 digest_start(Sha256& sha, std::string_view open_line_with_lf) {
    return sha.compute(as_bytes("hsmaudit/v1/segment"), as_bytes(open_line_with_lf));
}

Bytes32 digest_next(Sha256& sha, const Bytes32& prev, std::string_view line_with_lf) {
    return sha.compute(prev, as_bytes(line_with_lf));
}

std::optional<std::uint64_t> segment_file_epoch(std::string_view name) {
    if (!name.starts_with("hsm_") || !name.ends_with(".log")) return std::nullopt;
    name.remove_suffix(4);
    const auto us = name.rfind('_');
    if (us == std::string_view::npos || us < 4) return std::nullopt;
    const std::string_view hex = name.substr(us + 1);
    if (hex.empty() || hex.size() > 16) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : hex) {
        int d = 0;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return std::nullopt;
        v = v << 4 | static_cast<std::uint64_t>(d);
    }
    return v;
}

std::string segment_file_name(std::string_view serial, std::uint64_t epoch) {
    char hex[17];
    (void)std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(epoch));
    std::string name = "hsm_";
    for (char c : serial) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
    name += '_';
    name += hex;
    name += ".log";
    return name;
}

}  // namespace hsmaudit::mac
