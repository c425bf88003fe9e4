#include "hsmcore/ring/entry_codec.h"

#include <zlib.h>

#include <array>
#include <cstring>

#include "hsmcore/errc.h"
#include "mac/crypto.h"

namespace hsmaudit::hsmcore::ring {
namespace {

// The string table is part of ring format version 1: append only, never reorder. Strings that are
// not in it are stored literally. The most frequent come first (indices below 64 take one byte).
constexpr std::array<std::string_view, 96> kTable = {
    // 0..: roles
    "-",
    "SO",
    "AU",
    "PSO",
    "CO",
    "LCO",
    "CU",
    "BO",
    // 8..: classes
    "usage",
    "access",
    "manage",
    "keymanage",
    "failure",
    "success",
    "first",
    "external",
    "logmanage",
    // 17..: events
    "LUNA_SIGN",
    "LUNA_VERIFY",
    "LUNA_ENCRYPT",
    "LUNA_DECRYPT",
    "LUNA_LOGIN",
    "LUNA_LOGOUT",
    "LUNA_OPEN_SESSION",
    "LUNA_CLOSE_SESSION",
    "LUNA_GENERATE_KEY_PAIR",
    "LUNA_GENERATE_KEY",
    "LUNA_WRAP_KEY",
    "LUNA_UNWRAP_KEY",
    "LUNA_DESTROY_OBJECT",
    "LUNA_PARTITION_INIT",
    "LUNA_CREATE_PARTITION",
    "LUNA_INIT_ROLE",
    "LUNA_AUDIT_CONFIG",
    "LUNA_MODULE_START",
    "LUNA_MODULE_INIT",
    "LUNA_LOG_EXTERNAL",
    "LUNA_LOG_FULL",
    "LUNA_LOG_RESUME",
    "LUNA_ROLE_LOCKED",
    "LUNA_SEAL_REQUEST",
    "LUNA_CLOCK_SET",
    // 42..: detail keys
    "key",
    "alg",
    "mech",
    "label",
    "client",
    "reason",
    "mask",
    "bytes",
    "msg",
    "wrapping_key",
    "new_key",
    "role",
    "partition",
    "pid",
    "offset_ms",
    "drift_ppm",
    "attempts",
    // 59..: common values
    "RSA-2048",
    "RSA-3072",
    "EC-P256",
    "EC-P384",
    "AES-256",
    "CKM_ECDSA_SHA256",
    "CKM_ECDSA_SHA384",
    "CKM_SHA256_RSA_PKCS",
    "CKM_SHA256_RSA_PKCS_PSS",
    "CKM_RSA_PKCS_OAEP",
    "CKM_AES_GCM",
    "CKM_AES_KEY_WRAP_PAD",
    "CKM_RSA_PKCS_PSS",
    "log_full",
    "pin_incorrect",
    "pin_locked",
    "not_found",
    "not_permitted",
    "invalid_state",
    "crypto_error",
    "invalid_argument",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "all",
    "none",
    "shutdown",
    "start",
    "ok",
};

std::uint32_t table_index(std::string_view s) {
    for (std::uint32_t i = 0; i < kTable.size(); ++i)
        if (kTable[i] == s) return i;
    return UINT32_MAX;
}

void put_varint(std::uint64_t v, std::string& out) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7F) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

std::size_t varint_size(std::uint64_t v) {
    std::size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

void put_str(std::string_view s, std::string& out) {
    const std::uint32_t idx = table_index(s);
    if (idx != UINT32_MAX) {
        put_varint((std::uint64_t{idx} << 1) | 1, out);
        return;
    }
    put_varint(std::uint64_t{s.size()} << 1, out);
    out.append(s);
}

std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

void put_u32le(std::uint32_t v, char* p) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

Error corrupt(std::string what) {
    return make_error(errc::corrupt, std::move(what));
}

/// A bounds-checked cursor over entry bytes.
class Cursor {
public:
    explicit Cursor(std::span<const std::uint8_t> d) : d_(d) {}
    bool varint(std::uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (i_ >= d_.size()) return false;
            const std::uint8_t b = d_[i_++];
            v |= std::uint64_t{b & 0x7Fu} << shift;
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }
    bool u32v(std::uint32_t& v) {
        std::uint64_t x = 0;
        if (!varint(x) || x > UINT32_MAX) return false;
        v = static_cast<std::uint32_t>(x);
        return true;
    }
    bool str(std::string& s) {
        std::uint64_t tag = 0;
        if (!varint(tag)) return false;
        if (tag & 1) {
            const std::uint64_t idx = tag >> 1;
            if (idx >= kTable.size()) return false;
            s.assign(kTable[idx]);
            return true;
        }
        const std::uint64_t n = tag >> 1;
        if (n > d_.size() - i_) return false;
        s.assign(reinterpret_cast<const char*>(d_.data() + i_), n);
        i_ += n;
        return true;
    }
    bool bytes(std::uint8_t* out, std::size_t n) {
        if (n > d_.size() - i_) return false;
        std::memcpy(out, d_.data() + i_, n);
        i_ += n;
        return true;
    }
    [[nodiscard]] std::size_t pos() const { return i_; }
    [[nodiscard]] std::size_t left() const { return d_.size() - i_; }
    [[nodiscard]] std::span<const std::uint8_t> tail() const { return d_.subspan(i_); }

private:
    std::span<const std::uint8_t> d_;
    std::size_t i_ = 0;
};

/// Turns out[start..] = kind, 1-byte length placeholder, body into a complete entry.
void finish_entry(std::string& out, std::size_t start) {
    const std::size_t body_len = out.size() - start - 2;
    const std::size_t len_bytes = varint_size(body_len);
    if (len_bytes > 1) out.insert(start + 2, len_bytes - 1, '\0');  // rare: bodies of 128 bytes or more
    std::string len;
    put_varint(body_len, len);
    std::memcpy(out.data() + start + 1, len.data(), len.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(out.data() + start);
    const std::uint32_t crc = crc32_of({p, out.size() - start});
    char c[4];
    put_u32le(crc, c);
    out.append(c, 4);
}

}  // namespace

std::uint32_t crc32_of(std::span<const std::uint8_t> data) {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    std::size_t off = 0;
    while (off < data.size()) {
        const std::size_t n = std::min<std::size_t>(data.size() - off, 1u << 30);
        crc = ::crc32(crc, data.data() + off, static_cast<uInt>(n));
        off += n;
    }
    return static_cast<std::uint32_t>(crc);
}

void encode_record_entry(std::uint64_t entry_no, const mac::AuditRecord& rec, const mac::Mac& mac, std::string& out) {
    const std::size_t start = out.size();
    out += static_cast<char>(EntryKind::record);
    out += '\0';  // length placeholder
    put_varint(entry_no, out);
    put_varint(entry_no - rec.seq, out);  // small: the number of open/seal entries so far
    put_varint(zigzag(rec.time_ms), out);
    put_varint(rec.boot, out);
    put_varint(rec.partition, out);
    put_str(rec.role, out);
    put_varint(rec.session, out);
    put_str(rec.event, out);
    put_str(rec.event_class, out);
    put_varint(rec.result, out);
    put_varint(rec.details.size(), out);
    for (const auto& d : rec.details) {
        put_str(d.key, out);
        put_str(d.value, out);
    }
    out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
    finish_entry(out, start);
}

void patch_record_mac(std::string& out, std::size_t start, const mac::Mac& mac) {
    const std::size_t crc_at = out.size() - 4;
    std::memcpy(out.data() + crc_at - mac.size(), mac.data(), mac.size());
    const auto* p = reinterpret_cast<const std::uint8_t*>(out.data() + start);
    put_u32le(crc32_of({p, crc_at - start}), out.data() + crc_at);
}

void encode_line_entry(EntryKind kind, std::uint64_t entry_no, std::uint64_t seq, std::string_view line,
                       std::string& out) {
    const std::size_t start = out.size();
    out += static_cast<char>(kind);
    out += '\0';
    put_varint(entry_no, out);
    put_varint(seq, out);
    out.append(line);
    finish_entry(out, start);
}

Result<RawEntry> parse_entry(std::span<const std::uint8_t> data) {
    if (data.empty()) return corrupt("entry: no bytes");
    RawEntry e;
    const std::uint8_t k = data[0];
    if (k != static_cast<std::uint8_t>(EntryKind::record) && k != static_cast<std::uint8_t>(EntryKind::open) &&
        k != static_cast<std::uint8_t>(EntryKind::seal))
        return corrupt("entry: unknown kind byte " + std::to_string(k));
    e.kind = static_cast<EntryKind>(k);
    Cursor c(data.subspan(1));
    std::uint64_t body_len = 0;
    if (!c.varint(body_len)) return corrupt("entry: truncated length");
    if (body_len > kMaxEntryBytes) return corrupt("entry: length " + std::to_string(body_len) + " too large");
    const std::size_t head = 1 + c.pos();
    if (data.size() < head + body_len + 4) return corrupt("entry: truncated (needs more bytes than are there)");
    const std::size_t total = head + body_len + 4;
    const std::uint32_t stored =
        static_cast<std::uint32_t>(data[total - 4]) | (static_cast<std::uint32_t>(data[total - 3]) << 8) |
        (static_cast<std::uint32_t>(data[total - 2]) << 16) | (static_cast<std::uint32_t>(data[total - 1]) << 24);
    if (crc32_of(data.subspan(0, total - 4)) != stored) return corrupt("entry: CRC mismatch (torn or damaged entry)");
    e.bytes = data.subspan(0, total);
    Cursor b(data.subspan(head, body_len));
    std::uint64_t x = 0;
    if (!b.varint(e.entry_no) || e.entry_no == 0) return corrupt("entry: bad entry number");
    if (!b.varint(x)) return corrupt("entry: bad sequence field");
    if (e.kind == EntryKind::record) {
        if (x >= e.entry_no) return corrupt("entry: record sequence number out of range");
        e.seq = e.entry_no - x;
    } else {
        e.seq = x;
    }
    e.rest = b.tail();
    return e;
}

Status decode_record(const RawEntry& e, std::string_view serial, mac::AuditRecord& rec, mac::Mac& mac) {
    if (e.kind != EntryKind::record) return make_error(errc::invalid_argument, "entry is not a record");
    Cursor c(e.rest);
    std::uint64_t t = 0;
    std::uint64_t n = 0;
    rec.seq = e.seq;
    rec.serial.assign(serial);
    bool ok = c.varint(t) && c.u32v(rec.boot) && c.u32v(rec.partition) && c.str(rec.role) && c.varint(rec.session) &&
              c.str(rec.event) && c.str(rec.event_class) && c.u32v(rec.result) && c.varint(n);
    if (!ok) return corrupt("record entry " + std::to_string(e.entry_no) + ": malformed fields");
    rec.time_ms = unzigzag(t);
    if (n > 1024) return corrupt("record entry " + std::to_string(e.entry_no) + ": too many details");
    rec.details.resize(n);
    for (auto& d : rec.details)
        if (!c.str(d.key) || !c.str(d.value))
            return corrupt("record entry " + std::to_string(e.entry_no) + ": malformed detail");
    if (c.left() != mac.size()) return corrupt("record entry " + std::to_string(e.entry_no) + ": bad MAC length");
    c.bytes(mac.data(), mac.size());
    return {};
}

Result<std::string_view> entry_line(const RawEntry& e) {
    if (e.kind != EntryKind::open && e.kind != EntryKind::seal)
        return make_error(errc::invalid_argument, "entry is not an open or seal line");
    std::string_view s(reinterpret_cast<const char*>(e.rest.data()), e.rest.size());
    if (s.empty() || s.back() != '\n') return corrupt("line entry " + std::to_string(e.entry_no) + ": no LF");
    return s;
}

Status render_entry_line(const RawEntry& e, std::string_view serial, std::string& out) {
    if (e.kind == EntryKind::record) {
        mac::AuditRecord rec;
        mac::Mac m{};
        HSMAUDIT_TRY(decode_record(e, serial, rec, m));
        mac::encode_record_body(rec, out);
        out += " mac=";
        mac::hex_append(m, out);
        out += '\n';
        return {};
    }
    auto line = entry_line(e);
    if (!line) return std::move(line).error();
    out.append(*line);
    return {};
}

}  // namespace hsmaudit::hsmcore::ring
