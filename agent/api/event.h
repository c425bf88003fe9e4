// Event: one item an exporter delivers, read back from the agent's durable store. Four streams,
// each with its own cursor position (docs/ARCHITECTURE.md, "Exporters"):
//
//   audit        the module's audit records, from the verified store; position = sequence number
//   syslog       the appliance's syslog lines, from the syslog spool; position = spool line number
//   alerts       the agent's alerts, from alerts/alerts.jsonl; position = line number (1-based)
//   checkpoints  the module's signed chain-head checkpoints, from checkpoints/checkpoints.log;
//                position = line number (1-based)
//
// Every event has a stable id, the same on every (re)delivery, so a SIEM can de-duplicate the
// at-least-once deliveries: "<serial>-<boot>-<seq>" for an audit record (serial + boot counter +
// sequence number), "<serial>-<stream>-<position>" for the other streams.
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/api/source.h"
#include "mac/record.h"

namespace hsmaudit::agent {

enum class Stream : std::uint8_t { audit, syslog, alerts, checkpoints };
inline constexpr Stream kAllStreams[] = {Stream::audit, Stream::syslog, Stream::alerts, Stream::checkpoints};
inline std::string_view to_string(Stream s) {
    switch (s) {
        case Stream::audit: return "audit";
        case Stream::syslog: return "syslog";
        case Stream::alerts: return "alerts";
        case Stream::checkpoints: return "checkpoints";
    }
    return "?";
}
/// "audit", "syslog", "alerts", "checkpoints".
inline bool parse_stream(std::string_view text, Stream& out) {
    for (Stream s : kAllStreams) {
        if (to_string(s) == text) {
            out = s;
            return true;
        }
    }
    return false;
}

/// A syslog message as the agent's collector parsed and spooled it (agent/daemon/syslog_intake.cpp;
/// the spool's payload: agent/engine/store/syslog_payload.h, docs/FORMAT.md section 11).
/// Every text field holds the received bytes exactly (any byte: LF, CR, NUL, backslashes, bytes that
/// are not UTF-8): each format escapes once, when it renders. Lines spooled before issue 17 (payload
/// version 1) read back as they were then: their text had control characters and invalid bytes as
/// \xNN (backslashes doubled only then), and `raw` only when malformed.
struct SyslogFields {
    int facility = -1;      // 0..23, -1 unknown
    int severity = -1;      // 0..7, -1 unknown
    std::string timestamp;  // as received ("" if none)
    /// The message's own time, UTC microseconds, when its timestamp named its zone (RFC 3339);
    /// then Event::time_ms is this time (else the receive time).
    std::optional<std::int64_t> time_us;
    std::string host;
    std::string app;
    std::string procid;
    std::string msgid;
    /// Structured data as received: SD-ID -> params (name, unescaped value), in received order,
    /// duplicates kept.
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> sd;
    std::string msg;        // the MSG (without one trailing line end: LF, CR LF or NUL)
    std::string transport;  // "udp", "tcp", "unix", "file"
    std::string peer;
    std::string format;      // "rfc5424", "rfc3164", "luna_file", "plain_file", "unknown" ("" if not known)
    std::string malformed;   // why it did not parse ("" if it did)
    bool oversized = false;  // longer than syslog.max_message_bytes: raw holds the first bytes
    std::string raw;         // the message exactly as received (version 1 lines: only when malformed)

    bool operator==(const SyslogFields&) const = default;
};

struct Event {
    Stream stream = Stream::audit;
    std::uint64_t position = 0;  // audit: sequence number; other streams: line number, 1-based
    std::string event_id;        // stable across redeliveries (see the file comment)
    /// When it happened, UTC ms: a record's module clock; a syslog message's own timestamp when it
    /// names its zone (RFC 3339), else received_ms.
    std::int64_t time_ms = 0;
    /// syslog: when the agent received (spooled) it, UTC ms; other streams: 0 (see arrival_ms()).
    std::int64_t received_ms = 0;
    std::string serial;  // the module's serial (the appliance's identity)
    std::string host;    // the appliance's host name (agent.hostname, or the system's)

    // stream == audit
    /// record, or (only for destinations with `exporters.<name>.chain_lines: true`, such as a
    /// Kafka topic a remote verifier reads) the segment's open and seal entries, delivered in
    /// chain order between the records. An open or seal entry has the position of the record
    /// before it (a seal: the last record it covers; an open: first seq - 1), so a destination
    /// resuming after record N gets the seal and open after N again (at-least-once).
    EntryKind entry = EntryKind::record;
    std::uint64_t epoch = 0;  // the segment's epoch (the key epoch of the chain)
    mac::AuditRecord record;  // entry == record
    std::string mac_hex;      // the record's chain MAC, 64 hex digits: a SIEM can prove provenance
    std::string line;         // the exact segment line (record, open or seal), without LF: what the MACs cover

    // stream == syslog
    SyslogFields syslog;

    // stream == alerts
    Alert alert;

    // stream == checkpoints: the module's signed checkpoint line (mac/checkpoint.h), without LF
    std::string checkpoint;
};

/// "<serial>-<boot>-<seq>" / "<serial>-<stream>-<position>"; open and seal entries:
/// "<serial>-open-<epoch>" / "<serial>-seal-<epoch>".
inline std::string make_event_id(const Event& e) {
    if (e.stream == Stream::audit && e.entry != EntryKind::record)
        return e.serial + (e.entry == EntryKind::open ? "-open-" : "-seal-") + std::to_string(e.epoch);
    if (e.stream == Stream::audit)
        return e.serial + "-" + std::to_string(e.record.boot) + "-" + std::to_string(e.record.seq);
    return e.serial + "-" + std::string(to_string(e.stream)) + "-" + std::to_string(e.position);
}

/// When the agent had the event, UTC ms, for delivery latency and lag: a syslog message's receive
/// time (its own timestamp may be anything the sender's clock said), otherwise time_ms.
inline std::int64_t arrival_ms(const Event& e) {
    return e.received_ms != 0 ? e.received_ms : e.time_ms;
}

/// The event's syslog severity, 0 (emergency) .. 7 (debug): the one mapping every format and
/// filter uses (docs/SIEM.md, "Severities"). Audit records: a failed operation (result != 0)
/// is 4 (warning), or 3 (error) for the classes access and manage (a refused login or admin
/// action); a successful manage, keymanage or logmanage event is 5 (notice); other successes
/// are 6 (informational). Syslog: its own severity (6 if unknown). Alerts: critical 2, warning
/// 4, info 6. Checkpoints: 6.
inline int syslog_severity(const Event& e) {
    switch (e.stream) {
        case Stream::audit: {
            const std::string& c = e.record.event_class;
            if (e.record.result != 0) return (c == "access" || c == "manage") ? 3 : 4;
            if (c == "manage" || c == "keymanage" || c == "logmanage") return 5;
            return 6;
        }
        case Stream::syslog: return e.syslog.severity >= 0 && e.syslog.severity <= 7 ? e.syslog.severity : 6;
        case Stream::alerts:
            switch (e.alert.severity) {
                case Severity::critical: return 2;
                case Severity::warning: return 4;
                case Severity::info: return 6;
            }
            return 4;
        case Stream::checkpoints: return 6;
    }
    return 6;
}

}  // namespace hsmaudit::agent
