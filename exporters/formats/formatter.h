// Formats: how an Event is rendered for a SIEM (docs/SIEM.md): RFC 5424 with structured data,
// ArcSight CEF, QRadar LEEF 2.0, JSON lines and a Splunk HEC envelope. Transports (RELP, TLS
// syslog, Kafka) frame the result; a formatter never adds framing or a trailing LF.
//
// Thread-safety: a Formatter is immutable after creation; format() may be called from any thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "agent/config/config.h"
#include "agent/export/event.h"
#include "mac/result.h"

namespace hsmaudit::exporters::formats {

class Formatter {
public:
    virtual ~Formatter() = default;
    /// Appends the event, rendered, to `out` (one message; no framing, no trailing LF).
    virtual void format(const agent::Event& e, std::string& out) const = 0;
    /// "rfc5424", "cef", "leef", "json", "hec".
    [[nodiscard]] virtual std::string_view name() const = 0;
};

/// The format keys every destination has: "exporters.*.format" and its options.
std::span<const agent::KeySpec> format_config_keys();

/// The formatter a destination's keys ("exporters.<destination>.format" ...) describe. An error
/// names the key that is wrong.
Result<std::unique_ptr<Formatter>> make_formatter(const agent::Config& config, std::string_view destination);

}  // namespace hsmaudit::exporters::formats
