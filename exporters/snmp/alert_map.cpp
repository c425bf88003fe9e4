#include "exporters/snmp/alert_map.h"

#include <string_view>

namespace hsmaudit::exporters::snmp {
namespace {

struct Entry {
    std::string_view kind;  // exact, or a prefix when it ends with '.'
    std::string_view notification;
    Action action;
    std::string_view condition;  // "" : the alert kind
};

// First match wins: exact kinds before prefixes.
constexpr Entry kTable[] = {
    {"ring.fill_warning", "hsmRingFillWarning", Action::raise, "ring.fill"},
    {"ring.fill_critical", "hsmRingFillCritical", Action::raise, "ring.fill"},
    {"ring.fill_clear", "hsmRingFillClear", Action::clear, "ring.fill"},
    {"ring.predicted_full", "hsmRingPredictedFull", Action::raise, "ring.predicted_full"},
    {"ring.predicted_full_clear", "hsmRingPredictedFullClear", Action::clear, "ring.predicted_full"},
    {"module.blocked", "hsmModuleBlockedNotify", Action::raise, "module.blocked"},
    {"module.resumed", "hsmModuleResumedNotify", Action::clear, "module.blocked"},
    {"module.boot_changed", "hsmModuleBootChange", Action::event, ""},
    {"module.boot_counter_decreased", "hsmModuleBootChange", Action::event, ""},
    {"module.clock_backwards", "hsmModuleClockDrift", Action::event, ""},
    {"chain.sequence_gap", "hsmChainSequenceGap", Action::event, ""},
    {"chain.", "hsmChainVerificationFailure", Action::event, ""},
    {"store.quota_warning", "hsmStoreQuotaWarning", Action::raise, "store.quota"},
    {"store.quota_full", "hsmStoreQuotaFull", Action::raise, "store.quota"},
    {"store.quota_clear", "hsmStoreQuotaClear", Action::clear, "store.quota"},
    {"drain.acks_paused", "hsmAgentAlert", Action::raise, "drain.acks"},
    {"drain.acks_resumed", "hsmAgentAlert", Action::clear, "drain.acks"},
    {"exporter.down", "hsmExporterDown", Action::raise, "exporter:"},
    {"exporter.up", "hsmExporterUp", Action::clear, "exporter:"},
    {"agent.started", "hsmAgentStarted", Action::event, "agent"},
    {"agent.stopping", "hsmAgentStopping", Action::event, "agent"},
};

NotifySeverity severity_of(agent::Severity s) {
    switch (s) {
        case agent::Severity::info: return NotifySeverity::info;
        case agent::Severity::warning: return NotifySeverity::warning;
        case agent::Severity::critical: return NotifySeverity::critical;
    }
    return NotifySeverity::warning;
}

// The destination's name in the runner's message ("destination 'siem' is down: ..."), or else
// the first word ("exporters.siem: ..." / "siem: ...").
std::string exporter_name(std::string_view message) {
    if (const auto open = message.find('\''); open != std::string_view::npos) {
        const auto close = message.find('\'', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            return std::string(message.substr(open + 1, close - open - 1));
    }
    auto end = message.find_first_of(" :,");
    std::string_view word = message.substr(0, end);
    if (word.starts_with("exporters.")) word.remove_prefix(10);
    if (const auto dot = word.find('.'); dot != std::string_view::npos) word = word.substr(0, dot);
    return std::string(word);
}

}  // namespace

Notification map_alert(const agent::Alert& a) {
    Notification n;
    const Entry* entry = nullptr;
    for (const auto& e : kTable) {
        const bool prefix = e.kind.ends_with('.');
        if (prefix ? std::string_view(a.kind).starts_with(e.kind) : a.kind == e.kind) {
            entry = &e;
            break;
        }
    }
    if (entry != nullptr) {
        n.def = find_notification(entry->notification);
        n.action = entry->action;
        n.condition = entry->condition.empty() ? a.kind : std::string(entry->condition);
    } else {
        n.def = find_notification("hsmAgentAlert");
        n.condition = a.kind;
        // A kind that says it is over clears the kind it pairs with ("x.y_clear" clears "x.y").
        n.action = Action::event;
        for (std::string_view suffix : {"_clear", ".clear", "_resumed", ".resumed", "_ok"}) {
            if (std::string_view(a.kind).ends_with(suffix)) {
                n.action = Action::clear;
                n.condition = a.kind.substr(0, a.kind.size() - suffix.size());
                break;
            }
        }
    }
    n.time_ms = a.time_ms;
    n.severity = n.action == Action::clear ? NotifySeverity::cleared : severity_of(a.severity);
    n.set("hsmNotifyText", a.message);
    n.set("hsmNotifyAlertKind", a.kind);
    if (a.seq != 0) n.set("hsmNotifyRecordSeq", std::to_string(a.seq));
    if (a.kind == "exporter.down" || a.kind == "exporter.up") {
        const auto name = exporter_name(a.message);
        n.condition = "exporter:" + name;
        n.set("hsmNotifyExporterName", name);
    }
    return n;
}

}  // namespace hsmaudit::exporters::snmp
