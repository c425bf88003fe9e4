// Formats: how an Event is rendered for a SIEM (docs/SIEM.md): RFC 5424 with structured data,
// ArcSight CEF, QRadar LEEF 2.0, JSON lines and a Splunk HEC envelope, and for CEF, LEEF and JSON
// sent to a syslog receiver an RFC 5424 or RFC 3164 header before them (`syslog_header`). The
// header is part of the message (a receiver's syslog parser reads it); transports (RELP, TLS
// syslog, Kafka) add only their framing to the result: a formatter never adds framing (octet
// counts, RELP frames) or a trailing LF.
//
// Every rendering is valid UTF-8 (bytes of a value that are not valid UTF-8 become U+FFFD),
// carries the event's stable id, and is at most `exporters.<name>.max_message_bytes` long (free
// text values are cut at a code point boundary, end with U+2026, and the event is marked
// truncated), the syslog header included. docs/SIEM.md has the exact rules of each format.
//
// Thread-safety: a Formatter is immutable after creation; format() may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "agent/api/event.h"
#include "agent/api/exporter.h"
#include "base/config/config.h"
#include "base/result.h"

namespace hsmaudit::exporters::formats {

class Formatter {
public:
    virtual ~Formatter() = default;
    /// Appends the event, rendered, to `out` (one message, with its syslog header if the options
    /// name one; no transport framing, no trailing LF).
    virtual void format(const agent::Event& e, std::string& out) const = 0;
    /// "rfc5424", "cef", "leef", "json", "hec".
    [[nodiscard]] virtual std::string_view name() const = 0;
};

/// The format keys every destination has: "exporters.*.format" and its options.
std::span<const base::KeySpec> format_config_keys();

// ---- Options, for callers (and tests) that build a formatter without a configuration file ----

enum class FormatKind : std::uint8_t { rfc5424, cef, leef, json, hec };
std::string_view to_string(FormatKind k);

/// The syslog header before a cef, leef or json message (docs/SIEM.md, "Syslog header"):
/// rfc5424 `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - `, rfc3164 `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: `
/// (UTC), or none. HOSTNAME is Event::host (the appliance), TIMESTAMP the event's time.
enum class SyslogHeader : std::uint8_t { none, rfc5424, rfc3164 };
std::string_view to_string(SyslogHeader h);

/// The formatter a destination's keys ("exporters.<destination>.format" ...) describe. An error
/// names the key that is wrong. `auto_header`: the header `syslog_header: auto` (the default)
/// means for cef, leef and json on this destination's transport: rfc5424 for syslog transports
/// (relp, syslog), none for the others (kafka, HTTP); never one for rfc5424 (it has its own) or hec.
Result<std::unique_ptr<Formatter>> make_formatter(const base::Config& config, std::string_view destination,
                                                  SyslogHeader auto_header = SyslogHeader::none);

/// What a destination's format keys say, validated.
struct FormatOptions {
    FormatKind kind = FormatKind::rfc5424;
    std::uint32_t pen = 32473;          // private enterprise number of the RFC 5424 SD-IDs
    bool bom = false;                   // RFC 5424: UTF-8 BOM before the MSG
    std::string app_name = "hsmaudit";  // RFC 5424 APP-NAME: printable ASCII, 1..48
    int facility = 19;                  // local3: the appliance's remote audit facility
    char leef_delimiter = '^';          // LEEF 2.0 attribute delimiter
    std::string hec_sourcetype = "hsmaudit:json";
    std::string hec_index;                            // "" = the HEC token's default index
    std::size_t max_message_bytes = 8192;             // the whole rendering
    std::string product_version;                      // CEF/LEEF header Version; "" = this build's (product_version())
    SyslogHeader syslog_header = SyslogHeader::none;  // before a cef, leef or json message
};

/// The version CEF and LEEF headers name by default: the project's (CMake project(VERSION)).
std::string_view product_version();

/// `formatter` as the agent's EventRenderer (ExporterFactory::renderer: `hsmaudit tap`).
agent::EventRenderer as_renderer(std::unique_ptr<Formatter> formatter);

/// Reads and validates "exporters.<destination>.*" format keys. An error names the key.
/// `auto_header` as for make_formatter().
Result<FormatOptions> read_format_options(const base::Config& config, std::string_view destination,
                                          SyslogHeader auto_header = SyslogHeader::none);

/// A formatter for already validated options.
std::unique_ptr<Formatter> make_formatter(const FormatOptions& options);

/// Syslog facility from its name ("local3" -> 19), -1 if unknown; the names RFC 5424 table 1 and
/// rsyslog use: kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ntp logaudit
/// logalert clock local0..local7.
int facility_from_name(std::string_view name);
/// "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug".
std::string_view severity_name(int syslog_severity);
/// CEF Severity 0..10 for a syslog severity 0..7 (docs/SIEM.md, "Severities").
int cef_severity(int syslog_severity);
/// LEEF sev 1..10 for a syslog severity 0..7 (docs/SIEM.md, "Severities").
int leef_severity(int syslog_severity);

}  // namespace hsmaudit::exporters::formats
