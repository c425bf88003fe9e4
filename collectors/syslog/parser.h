// Parsers for RFC 5424, RFC 3164 and the appliance's log-file line formats.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "collectors/syslog/message.h"

namespace hsmaudit::collectors::syslog {

/// Default cap on one message (a datagram, a TCP frame or a file line).
inline constexpr std::size_t kDefaultMaxMessageBytes = std::size_t{64} * 1024;

/// Parses one message (without its transport framing). Never fails: input that follows no grammar comes
/// back with malformed = true, the reason, and the text in msg. `raw` is `bytes` exactly; every other
/// field holds the bytes it was cut from, unchanged (no escaping: any byte, LF, CR, NUL, backslash, invalid
/// UTF-8), except that one line end at the very end (LF, CR LF or NUL, which senders append as a
/// terminator) is not part of the MSG, and SD-PARAM values are unescaped (\" \\ \] become " \ ]).
/// Detection: "<PRI>1 " is RFC 5424, any other "<PRI>" is RFC 3164 (whose timestamp
/// may be "Mmm dd hh:mm:ss", RFC 3339 or the appliance's "YYYY Mmm dd hh:mm:ss"); without a PRI the line
/// must be a log-file line: the appliance's `2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: ...`,
/// `Mmm dd hh:mm:ss host tag[pid]: ...` or `RFC3339 host tag[pid]: ...`.
/// Thread-safety: a pure function.
SyslogMessage parse_message(std::string_view bytes);

/// RFC 3339 timestamp (RFC 5424 section 6.2.3: upper-case T and Z, up to 6 fraction digits accepted
/// as microseconds; 7..9 are truncated) converted to UTC; nullopt if it is not one or names no real date.
std::optional<std::chrono::sys_time<std::chrono::microseconds>> parse_rfc3339(std::string_view text);

/// `bytes` without one line end at its very end (LF, CR LF or NUL): what parse_message() takes as the
/// end of the MSG.
std::string_view without_line_end(std::string_view bytes) noexcept;

/// Text for diagnostics only (malformed_reason quotes): valid UTF-8 is kept; other bytes and control
/// characters other than tab become \xNN, and then (only then) a backslash becomes "\\". `escaped`
/// tells whether anything changed. Never applied to a message's own fields.
std::string to_safe_text(std::string_view bytes, bool* escaped = nullptr);

/// Facility and severity names as the appliance writes them ("local5", "info", "warn", ...); -1 if unknown.
int facility_from_name(std::string_view name) noexcept;
int severity_from_name(std::string_view name) noexcept;

}  // namespace hsmaudit::collectors::syslog
