// Synthetic agent events for the SNMP exporter's tests: alerts as the agent raises them, and
// syslog lines exactly as the appliance emulator sends them (hsmcore/appliance builds the record,
// format_rfc5424 renders it, the agent's syslog parser reads it back), so the built-in rules are
// tested against what `hsmcore serve --syslog` really emits.
#pragma once

#include <chrono>
#include <string>

#include "agent/api/event.h"
#include "collectors/syslog/parser.h"
#include "hsmcore/appliance/appliance_events.h"
#include "hsmcore/appliance/syslog_format.h"

namespace hsmaudit::testing::snmp {

inline constexpr std::int64_t kT0 = 1'768'471'200'000;  // 2026-01-15T10:00:00Z

inline agent::Event alert_event(std::uint64_t position, std::string kind, agent::Severity severity, std::string message,
                                std::uint64_t seq = 0) {
    agent::Event e;
    e.stream = agent::Stream::alerts;
    e.position = position;
    e.serial = "150123";
    e.host = "myLuna";
    e.time_ms = kT0 + static_cast<std::int64_t>(position) * 1000;
    e.alert.kind = std::move(kind);
    e.alert.severity = severity;
    e.alert.message = std::move(message);
    e.alert.seq = seq;
    e.alert.time_ms = e.time_ms;
    e.event_id = agent::make_event_id(e);
    return e;
}

inline agent::Event syslog_event(std::uint64_t position, const appliance::SyslogRecord& record) {
    const auto parsed = collectors::syslog::parse_message(appliance::format_rfc5424(record));
    agent::Event e;
    e.stream = agent::Stream::syslog;
    e.position = position;
    e.serial = "150123";
    e.host = "myLuna";
    e.time_ms = kT0 + static_cast<std::int64_t>(position) * 1000;
    auto& f = e.syslog;
    f.facility = parsed.facility;
    f.severity = parsed.severity;
    f.timestamp = parsed.timestamp_text;
    f.host = parsed.hostname;
    f.app = parsed.app_name;
    f.procid = parsed.procid;
    f.msgid = parsed.msgid;
    for (const auto& sd : parsed.structured_data) {
        std::vector<std::pair<std::string, std::string>> params;
        for (const auto& p : sd.params) params.emplace_back(p.name, p.value);
        f.sd.emplace_back(sd.id, std::move(params));
    }
    f.msg = parsed.msg;
    f.transport = "udp";
    f.peer = "192.0.2.7:514";
    e.event_id = agent::make_event_id(e);
    return e;
}

inline appliance::ApplianceEvents appliance_events() {
    return appliance::ApplianceEvents(
        "myLuna", [] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(kT0)); });
}

/// A fan threshold event as SensorSimulation reports it: FANn below its warning threshold
/// (asserted) or back to normal (cleared).
inline appliance::SensorEvent fan_event(int fan, bool asserted) {
    appliance::SensorEvent s;
    s.sensor = "FAN" + std::to_string(fan);
    s.kind = appliance::SensorKind::fan;
    s.unit = "RPM";
    s.threshold = 3000;
    if (asserted) {
        s.type = appliance::SensorEvent::Type::asserted;
        s.level = appliance::SensorLevel::warning;
        s.previous_level = appliance::SensorLevel::normal;
        s.value = 2500;
    } else {
        s.type = appliance::SensorEvent::Type::cleared;
        s.level = appliance::SensorLevel::normal;
        s.previous_level = appliance::SensorLevel::warning;
        s.value = 5200;
    }
    return s;
}

}  // namespace hsmaudit::testing::snmp
