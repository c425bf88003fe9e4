// Alerts: what the agent found that an operator must hear about (a chain break, a sequence gap,
// the ring filling, the module blocked...). They are stored, counted and sent by every exporter.
//
// Thread-safety: AlertSink implementations must accept alerts from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hsmaudit::agent {

enum class Severity : std::uint8_t { info, warning, critical };
inline std::string_view to_string(Severity s) {
    switch (s) {
        case Severity::info: return "info";
        case Severity::warning: return "warning";
        case Severity::critical: return "critical";
    }
    return "unknown";
}

struct Alert {
    std::string kind;  // stable machine name: "chain.record_mac_mismatch", "ring.fill_warning", ...
    Severity severity = Severity::warning;
    std::string message;    // for people; names file, line, sequence where they apply
    std::uint64_t seq = 0;  // the audit record concerned, 0 if none
    std::int64_t time_ms = 0;
};

class AlertSink {
public:
    virtual ~AlertSink() = default;
    virtual void alert(Alert&& a) = 0;
};

}  // namespace hsmaudit::agent
