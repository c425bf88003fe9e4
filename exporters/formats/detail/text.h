// Shared by the formats only (no other module may include detail/): text cleaning, value caps,
// and the facts every format renders about an event (id, severity, title, message).
//
// Thread-safety: free functions on values; RenderLimits is per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "agent/api/event.h"
#include "exporters/formats/formatter.h"

namespace hsmaudit::exporters::formats::detail {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
inline constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026, ends a cut value

/// How much of each free-text value a rendering may keep (see Formatter in formatter.cpp: the
/// first pass is unlimited; when the result is longer than max_message_bytes the value cap is
/// lowered until it fits, and a last pass drops details and foreign structured data).
struct RenderLimits {
    std::size_t value_cap = std::numeric_limits<std::size_t>::max();
    bool minimal = false;  // drop audit details and a syslog message's own structured data
    /// Short identifiers (role, event, class, alert kind, syslog header fields) are never cut
    /// below this: a SIEM needs them whole, and in practice they are far shorter.
    static constexpr std::size_t kShortFieldMin = 64;
    [[nodiscard]] std::size_t short_cap() const { return value_cap > kShortFieldMin ? value_cap : kShortFieldMin; }
    [[nodiscard]] bool truncated() const { return minimal || value_cap != std::numeric_limits<std::size_t>::max(); }
};

/// Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
/// U+10FFFF) starting at in[i]; 0 if the byte does not start one.
std::size_t utf8_sequence_length(std::string_view in, std::size_t i);

/// True if every byte of `in` is part of a valid UTF-8 sequence.
bool is_valid_utf8(std::string_view in);

/// `in` as valid UTF-8: every byte that does not start a valid sequence becomes U+FFFD. At most
/// `cap` bytes: a longer value is cut at a code point boundary and ends with U+2026 (counted in
/// the cap). Returns a view of `in` when nothing changed, else of `scratch`.
std::string_view clean(std::string_view in, std::size_t cap, std::string& scratch);
inline std::string_view clean(std::string_view in, const RenderLimits& l, std::string& scratch) {
    return clean(in, l.value_cap, scratch);
}

/// A syslog message's text for titles and messages: its MSG, or its raw bytes when it did not parse.
const std::string& syslog_text(const agent::SyslogFields& s);

/// An audit event that is a segment's open or seal entry (destinations with chain_lines), not a record.
inline bool is_chain_entry(const agent::Event& e) {
    return e.stream == agent::Stream::audit && e.entry != agent::EntryKind::record;
}
/// "open" / "seal" / "record".
std::string_view entry_name(agent::EntryKind k);

/// The event's stable id: Event::event_id, or make_event_id() when it is empty.
std::string event_id(const agent::Event& e);
/// When it happened, UTC ms (the record's, the alert's time when the event has none).
std::int64_t event_time_ms(const agent::Event& e);
/// The module serial (the record's when the event has none).
std::string_view event_serial(const agent::Event& e);
/// A low-cardinality name of what happened: the audit event ("LUNA_SIGN"), the alert kind,
/// "syslog:<app>" (or "syslog"), "checkpoint", "segment.open" / "segment.seal". CEF Signature ID, LEEF EventID, RFC
/// 5424 MSGID.
std::string event_type(const agent::Event& e);
void append_event_type(const agent::Event& e, std::string& out);
/// A short title: "LUNA_SIGN succeeded", "LUNA_LOGIN failed", an alert's kind, "Chain-head
/// checkpoint", "Segment open|seal", or a syslog message's first 128 bytes. CEF Name.
std::string event_title(const agent::Event& e);
/// The human-readable message (RFC 5424 MSG, CEF msg, JSON message). A checkpoint's message is
/// its signed line, so `hsmaudit verify --anchors` can read it back from a SIEM export; a
/// segment open or seal entry's message is its exact segment line.
std::string event_message(const agent::Event& e);
void append_event_message(const agent::Event& e, std::string& out);
/// An audit record's details in the record line's own escaping ("alg=ECDSA-P256 key=42").
std::string details_text(const mac::AuditRecord& r);
void append_details_text(const mac::AuditRecord& r, std::string& out);
/// A syslog message's own structured data, RFC 5424 style ("[id a=\"1\"][id2 b=\"2\"]").
std::string syslog_sd_text(const agent::SyslogFields& s);
/// "0x000000a0", as in the record line.
std::string result_hex(std::uint32_t result);
void append_result_hex(std::uint32_t result, std::string& out);

/// Parsed fields of a checkpoint line (`ok` false when it does not parse: then only the line).
struct CheckpointFields {
    bool ok = false;
    std::string chain, serial, mac;
    std::uint64_t epoch = 0, seq = 0;
};
CheckpointFields checkpoint_fields(std::string_view line);

}  // namespace hsmaudit::exporters::formats::detail
