// Binary encoding of the audit ring's entries (docs/ARCHITECTURE.md, "Host interface (hsmcore)").
//
// An entry is  [u8 kind][varint body_len][body][u32 crc32 (LE) of kind..body]. Bodies use LEB128
// varints and a static string table (events, classes, roles, detail keys and common values), so a
// typical record with its 32-byte MAC takes about 70 bytes. Record entries hold the binary fields of a
// mac::AuditRecord; open and seal entries hold the exact line text the chain writer produced.
//
// Thread-safety: free functions on values and caller-owned buffers; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mac/keys.h"
#include "mac/record.h"

namespace hsmaudit::hsmcore::ring {

enum class EntryKind : std::uint8_t {
    record = 0xA1,
    open = 0xA2,  // a segment open line
    seal = 0xA3,  // a segment seal line
    pad = 0xAF,   // filler up to the physical end of the data area (only a kind byte)
};

/// Largest entry the ring accepts (a record line is at most mac::kMaxLineBytes).
inline constexpr std::size_t kMaxEntryBytes = std::size_t{66} * 1024;

/// A decoded entry header plus a view of its body, pointing into the buffer it was parsed from.
struct RawEntry {
    EntryKind kind = EntryKind::pad;
    std::uint64_t entry_no = 0;           // global entry number: counts every entry (records, opens, seals), 1-based
    std::uint64_t seq = 0;                // record: its sequence number; open: first_seq; seal: last_seq
    std::span<const std::uint8_t> bytes;  // the whole entry, kind byte to CRC
    std::span<const std::uint8_t> rest;   // body after entry_no and seq
};

/// Appends a record entry. `rec.seq` must be set; the 32-byte MAC follows the fields.
void encode_record_entry(std::uint64_t entry_no, const mac::AuditRecord& rec, const mac::Mac& mac, std::string& out);
/// Appends an open or seal entry carrying `line` (with its LF).
void encode_line_entry(EntryKind kind, std::uint64_t entry_no, std::uint64_t seq, std::string_view line,
                       std::string& out);
/// Patches the MAC of a record entry encoded by encode_record_entry() at `out[start..]` and recomputes its CRC.
void patch_record_mac(std::string& out, std::size_t start, const mac::Mac& mac);

/// Parses one entry at the start of `data` (which may hold more bytes after it). Checks the CRC.
/// Fails with hsmcore::errc::corrupt naming what is wrong.
Result<RawEntry> parse_entry(std::span<const std::uint8_t> data);

/// Decodes a record entry's fields. `serial` is the ring's module serial (not stored per record).
Status decode_record(const RawEntry& e, std::string_view serial, mac::AuditRecord& rec, mac::Mac& mac);

/// The line text of an open or seal entry (with its LF), a view into the entry.
Result<std::string_view> entry_line(const RawEntry& e);

/// Appends the exact segment line of an entry: for a record, mac::encode_record_body + " mac=" + hex + "\n";
/// for an open or seal entry, the stored text.
Status render_entry_line(const RawEntry& e, std::string_view serial, std::string& out);

/// CRC-32 (zlib) of `data`.
std::uint32_t crc32_of(std::span<const std::uint8_t> data);

}  // namespace hsmaudit::hsmcore::ring
