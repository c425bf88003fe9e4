// The payload of a syslog spool line (docs/FORMAT.md section 11): one received syslog message as
// one line of JSON, lossless. The one owner of that payload: SyslogIntake writes it
// (agent/daemon/syslog_intake.cpp), the destinations' reader decodes it
// (agent/engine/export/store_source.cpp), and the round-trip fuzz target checks the pair.
//
// Version 2 (issue 17, written from then on) keeps every byte: a text field is a JSON string when
// its bytes are valid UTF-8 (JSON escapes control characters, NUL included, and decodes them back
// exactly), else {"b64": "<base64 of the bytes>"}; structured data is an array, in received order
// with duplicates; the MSG is `msg_at: [offset, length]` into `raw` when it is a slice of it (it
// always is for what the parser produces), so the message is stored once. Version 1 (no "v" key)
// had the collector's \xNN escaping and an object for structured data (params sorted by name,
// duplicates lost); it reads back as it did then.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "agent/api/event.h"

namespace hsmaudit::agent {

/// The version encode_syslog_payload() writes.
inline constexpr int kSyslogPayloadVersion = 2;

/// The longest message the syslog intake takes: the upper bound of `syslog.max_message_bytes`
/// (and of the collector's listeners and followers).
inline constexpr std::size_t kMaxSyslogMessageBytes = std::size_t{16} << 20;

/// The longest payload the intake writes for messages of at most `max_message_bytes` (so that the
/// reader accepts every line the writer can produce): version 2 stores raw once (base64 at worst,
/// 4/3), structured data at most once more with per-param overhead, and small header fields; a
/// version 1 payload escaped bad bytes as `\\xNN` (5 bytes each) in msg, raw and SD values. 16x
/// covers both, plus 64 KiB for the header fields and the peer (a socket or file path).
constexpr std::size_t max_syslog_payload_bytes(std::size_t max_message_bytes) {
    return 16 * max_message_bytes + std::size_t{64} * 1024;
}

/// The payload (version 2) of one message: one line of JSON, valid UTF-8, no raw control byte.
std::string encode_syslog_payload(const SyslogFields& f);

/// The fields of a payload of either version; nullopt if it is not a JSON object. Fields that are
/// missing or of the wrong type are left empty (a damaged `msg_at` takes the whole raw as msg).
std::optional<SyslogFields> decode_syslog_payload(std::string_view payload);

/// True if `bytes` are valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view bytes) noexcept;

}  // namespace hsmaudit::agent
