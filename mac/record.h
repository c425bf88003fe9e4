// An audit record and its canonical text encoding (docs/FORMAT.md, "Record lines").
//
// The encoding is a pure function of the fields: the module MACs the bytes it produces, and
// anyone who re-renders the same fields (the agent, from the ring's binary form) gets the
// same bytes, so the MAC verifies. parse_record_body() is its inverse.
//
// Thread-safety: free functions on values; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hsmaudit::mac {

/// One key=value detail of a record ("key=42", "alg=ECDSA-P256").
struct Detail {
    std::string key;    // [a-z][a-z0-9_]{0,31}
    std::string value;  // any bytes; escaped on output
    bool operator==(const Detail&) const = default;
};

/// An audit record as the module creates it.
struct AuditRecord {
    std::uint64_t seq = 0;     // global sequence number, 1-based, assigned by the chain writer
    std::int64_t time_ms = 0;  // module clock, UTC, milliseconds since 1970-01-01
    std::string serial;        // module serial
    std::uint32_t boot = 0;    // module boot counter
    std::uint32_t partition = 0;
    std::string role;           // SO, AU, PSO, CO, LCO, CU, BO, or "-" when nobody is logged in
    std::uint64_t session = 0;  // 0 = no session
    std::string event;          // LUNA_SIGN, LUNA_LOGIN, ...
    std::string event_class;    // failure, success, access, manage, keymanage, usage, first, external, logmanage
    std::uint32_t result = 0;   // 0 = success (CKR_OK); otherwise the error code
    std::vector<Detail> details;
    bool operator==(const AuditRecord&) const = default;
};

/// Appends the canonical record body (the line without " mac=..." and LF) to `out`.
void encode_record_body(const AuditRecord& rec, std::string& out);

/// Parses a record body produced by encode_record_body().
Result<AuditRecord> parse_record_body(std::string_view body);

/// True if `role` is one FORMAT.md 2.5 lists (SO, AU, PSO, CO, LCO, CU, BO, -).
bool valid_role(std::string_view role);
/// True if `cls` is one FORMAT.md 2.5 lists (failure, success, access, ...).
bool valid_event_class(std::string_view cls);

/// Appends `2026-11-24T06:15:17.123Z` for `time_ms` (clamped to years 0..9999).
void append_time(std::int64_t time_ms, std::string& out);
/// Parses the time format above; strict.
Result<std::int64_t> parse_time(std::string_view text);
std::string format_time(std::int64_t time_ms);

/// Appends `value` escaped: `\\`, `\s` (space), `\t`, `\n`, `\r`, and `\xHH` for other control
/// bytes, DEL and bytes that are not valid UTF-8. The output has no space and no control byte.
void append_escaped(std::string_view value, std::string& out);
/// Inverse of append_escaped(); fails on a malformed escape.
Result<std::string> unescape(std::string_view text);

/// True if `key` is a valid detail key: [a-z][a-z0-9_]{0,31}.
bool valid_detail_key(std::string_view key);

/// Strict unsigned decimal: no sign, no leading zero (except "0"), no overflow.
bool parse_u64(std::string_view text, std::uint64_t& out);

}  // namespace hsmaudit::mac
