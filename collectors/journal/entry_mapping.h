// How one journal entry becomes a collectors::syslog::SyslogMessage: the journal's fields mapped
// to the syslog ones (PRIORITY -> severity, SYSLOG_FACILITY -> facility, SYSLOG_IDENTIFIER or
// _COMM -> app, _PID -> procid, _HOSTNAME -> host, MESSAGE -> msg, __REALTIME_TIMESTAMP -> the
// message's own time) and a few more kept as structured data (SD-ID journal@32473).
//
// Thread-safety: pure functions over value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collectors/syslog/message.h"

namespace hsmaudit::collectors::journal {

/// The SD-ID of the journal fields kept as structured data (32473: the documentation enterprise
/// number the appliance's own SD-IDs use, hsmcore/appliance).
inline constexpr std::string_view kSdId = "journal@32473";

/// The fields the mapping reads, in the order the source fetches them. The last ones go to the
/// structured data (kSdFields), each only when the entry has it.
std::span<const std::string_view> mapped_fields();
std::span<const std::string_view> sd_fields();

/// One journal entry as read: its fields (name, value bytes exactly as sd-journal gave them; a
/// field may repeat) and journald's receive time (__REALTIME_TIMESTAMP, microseconds since the
/// epoch). A value type.
struct RawEntry {
    std::optional<std::uint64_t> realtime_usec;
    std::vector<std::pair<std::string, std::string>> fields;

    /// The first value of `name`, or nullptr.
    [[nodiscard]] const std::string* find(std::string_view name) const;
};

struct MappingOptions {
    std::size_t max_message_bytes = std::size_t{64} * 1024;  // a longer MESSAGE is cut and flagged oversized
    std::string peer = "journal";                            // what the message's `peer` says (the journal read)
};

/// What the mapping noticed, for the probe.
struct MappingNotes {
    bool oversized = false;
    bool escaped = false;  // MESSAGE was not plain UTF-8 text (binary, control characters): kept exactly
};

/// The entry as a syslog message (transport and format `journal`). Never fails: missing fields stay
/// unknown (-1, ""), a PRIORITY or SYSLOG_FACILITY that is not a number in range is ignored (and
/// kept in the structured data as it was), MESSAGE is kept byte for byte (`msg` and `raw`, the
/// spool keeps them exactly: docs/FORMAT.md section 11), as are the structured data's values;
/// __REALTIME_TIMESTAMP (UTC) is the message's own time. An entry with no MESSAGE has an empty msg.
syslog::SyslogMessage map_entry(const RawEntry& entry, const MappingOptions& options, MappingNotes* notes = nullptr);

/// PRIORITY's value as a severity 0..7, nullopt if it is not exactly one such number.
std::optional<int> parse_priority(std::string_view value) noexcept;
/// "2023-11-14T22:13:20.123456Z" (RFC 3339, UTC, microseconds).
std::string rfc3339_usec(std::uint64_t usec_since_epoch);

}  // namespace hsmaudit::collectors::journal
