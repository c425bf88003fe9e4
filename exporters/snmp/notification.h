// Notification: one SNMP notification the exporter decided to send, before it becomes a PDU (the
// sender adds sysUpTime.0 and snmpTrapOID.0 and converts each value to its object's SMI type).
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "exporters/snmp/mib.h"

namespace hsmaudit::exporters::snmp {

/// What a notification does to its condition: raise it (or change its level), clear it, or
/// report a one-off event that has no clear (a chain fault, an agent start).
enum class Action : std::uint8_t { raise, clear, event };
std::string_view to_string(Action a);

/// hsmNotifySeverity's values.
enum class NotifySeverity : std::uint8_t { cleared = 1, info = 2, warning = 3, critical = 4 };

struct Notification {
    const NotificationDef* def = nullptr;
    Action action = Action::event;
    NotifySeverity severity = NotifySeverity::info;
    std::string condition;  // hsmNotifyCondition: the same for a raise and its clear
    std::string event_id;   // the agent event it comes from ("" for a hold-down sync)
    std::int64_t time_ms = 0;
    /// Object name -> value as text ("41", "true(1)" is written "1"); objects of the definition
    /// that are missing are sent empty (strings) or 0 (numbers).
    std::map<std::string, std::string, std::less<>> values;

    void set(std::string_view object, std::string value) {
        values.insert_or_assign(std::string(object), std::move(value));
    }
    [[nodiscard]] std::string get(std::string_view object) const {
        auto it = values.find(object);
        return it == values.end() ? std::string() : it->second;
    }
};

}  // namespace hsmaudit::exporters::snmp
