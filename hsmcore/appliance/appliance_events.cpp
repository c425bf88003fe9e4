#include "hsmcore/appliance/appliance_events.h"

#include <cmath>
#include <cstdio>

namespace hsmaudit::appliance {
namespace {

std::string number(double v, const std::string& unit) {
    char buf[32];
    if (unit == "V") {
        static_cast<void>(std::snprintf(buf, sizeof buf, "%.2f", v));
    } else {
        static_cast<void>(std::snprintf(buf, sizeof buf, "%.0f", v));
    }
    return buf;
}

std::string sd_id(std::string_view name) {
    std::string id(name);
    id += '@';
    id += kSdEnterprise;
    return id;
}

const char* sensor_word(SensorKind kind) {
    switch (kind) {
        case SensorKind::cpu_temperature: return "CPU temperature";
        case SensorKind::ambient_temperature: return "Ambient temperature";
        case SensorKind::fan: return "Fan speed";
        case SensorKind::psu: return "PSU output voltage";
        case SensorKind::disk: return "Disk SMART reallocated sectors";
    }
    return "Sensor";
}

// Lower-threshold sensors (fans) cross "below"; PSUs may go either way.
const char* direction(const SensorEvent& e) {
    if (e.kind == SensorKind::fan) return "below";
    if (e.kind == SensorKind::psu) return e.value < 12.0 ? "below" : "above";
    return "above";
}

}  // namespace

const char* to_string(LoginRole role) noexcept {
    switch (role) {
        case LoginRole::admin: return "admin";
        case LoginRole::operator_: return "operator";
        case LoginRole::monitor: return "monitor";
        case LoginRole::audit: return "audit";
    }
    return "unknown";
}

ApplianceEvents::ApplianceEvents(std::string hostname, Clock clock, ProcessIds pids)
    : hostname_(std::move(hostname)), clock_(clock ? std::move(clock) : system_clock()), pids_(pids) {}

SyslogRecord ApplianceEvents::base(Facility f, Severity s, std::string_view app, int pid,
                                   std::string_view msgid) const {
    SyslogRecord r;
    r.facility = f;
    r.severity = s;
    r.timestamp = clock_();
    r.hostname = hostname_;
    r.app_name = std::string(app);
    r.procid = std::to_string(pid);
    r.msgid = std::string(msgid);
    return r;
}

SyslogRecord ApplianceEvents::ntls_startup() const {
    auto r = base(Facility::local5, Severity::informational, "NTLS", pids_.ntls, "STARTUP");
    r.msg = "info : 0 : Starting up NTLS........";
    return r;
}

SyslogRecord ApplianceEvents::ntls_link_up(std::string_view client_address, std::string_view client_name) const {
    auto r = base(Facility::local5, Severity::informational, "NTLS", pids_.ntls, "LINKUP");
    r.structured_data.push_back(
        {sd_id("ntls"),
         {{"event", "link_up"}, {"client", std::string(client_address)}, {"name", std::string(client_name)}}});
    r.msg = "info : 0 : NTLS Client \"" + std::string(client_name) +
            "\" Connected. Link up : " + std::string(client_address);
    return r;
}

SyslogRecord ApplianceEvents::ntls_link_down(std::string_view client_address, std::string_view client_name,
                                             std::string_view reason) const {
    auto r = base(Facility::local5, Severity::notice, "NTLS", pids_.ntls, "LINKDOWN");
    r.structured_data.push_back({sd_id("ntls"),
                                 {{"event", "link_down"},
                                  {"client", std::string(client_address)},
                                  {"name", std::string(client_name)},
                                  {"reason", std::string(reason)}}});
    r.msg = "notice : 0 : NTLS Client \"" + std::string(client_name) +
            "\" Disconnected. Link down : " + std::string(client_address) + " (" + std::string(reason) + ")";
    return r;
}

SyslogRecord ApplianceEvents::login(LoginRole role, std::string_view user, std::string_view from, bool success) const {
    auto r = base(Facility::local5, success ? Severity::notice : Severity::warning, "lunash", pids_.lunash,
                  success ? "LOGIN" : "LOGINFAIL");
    r.structured_data.push_back({sd_id("login"),
                                 {{"role", to_string(role)},
                                  {"user", std::string(user)},
                                  {"from", std::string(from)},
                                  {"result", success ? "success" : "failure"}}});
    const std::string who = role == LoginRole::audit ? "HSM Audit Login" : "HSM Admin Login";
    if (success) {
        r.msg = who + ": " + std::string(user) + " (" + to_string(role) + ") logged in from " + std::string(from);
    } else {
        r.msg = who + ": incorrect password or PED key for " + std::string(user) + " from " + std::string(from);
    }
    return r;
}

SyslogRecord ApplianceEvents::service_restart(std::string_view service, std::string_view by) const {
    auto r = base(Facility::daemon, Severity::notice, "systemd", pids_.systemd, "RESTART");
    r.structured_data.push_back(
        {sd_id("service"), {{"service", std::string(service)}, {"event", "restart"}, {"by", std::string(by)}}});
    r.msg = "Service " + std::string(service) + " restarted (requested by " + std::string(by) + ")";
    return r;
}

SyslogRecord ApplianceEvents::sensor(const SensorEvent& e) const {
    const bool disk = e.kind == SensorKind::disk;
    Severity sev = Severity::informational;
    const char* state = "reading";
    if (e.type == SensorEvent::Type::asserted) {
        sev = e.level == SensorLevel::critical ? Severity::critical : Severity::warning;
        state = "assert";
    } else if (e.type == SensorEvent::Type::cleared) {
        sev = Severity::notice;
        state = "deassert";
    } else if (e.level == SensorLevel::critical) {
        sev = Severity::critical;
    } else if (e.level == SensorLevel::warning) {
        sev = Severity::warning;
    }
    auto r = base(Facility::daemon, sev, disk ? "smartd" : "ipmievd", disk ? pids_.smartd : pids_.ipmievd,
                  e.type == SensorEvent::Type::reading_changed ? "SENSOR" : "THRESHOLD");
    const std::string value = number(e.value, e.unit);
    SdElement sd{sd_id("sensor"),
                 {{"name", e.sensor},
                  {"type", to_string(e.kind)},
                  {"value", value},
                  {"unit", e.unit},
                  {"level", to_string(e.level)},
                  {"state", state}}};
    if (e.type != SensorEvent::Type::reading_changed) sd.params.push_back({"threshold", number(e.threshold, e.unit)});
    if (e.kind == SensorKind::psu) sd.params.push_back({"present", e.present ? "yes" : "no"});
    r.structured_data.push_back(std::move(sd));

    const std::string what = std::string(sensor_word(e.kind)) + " " + e.sensor;
    const std::string unit = e.unit == "C" ? " degrees C" : " " + e.unit;
    switch (e.type) {
        case SensorEvent::Type::reading_changed:
            r.msg = what + " reading " + value + unit + " (was " + number(e.previous_value, e.unit) + unit + ")";
            break;
        case SensorEvent::Type::asserted:
            if (e.kind == SensorKind::psu && !e.present) {
                r.msg = what + " Presence: PSU removed or no input power (" + value + unit + "), critical : Assert";
            } else {
                r.msg = what + " " + value + unit + " " + direction(e) + " " + to_string(e.level) + " threshold " +
                        number(e.threshold, e.unit) + unit + " : Assert";
            }
            break;
        case SensorEvent::Type::cleared:
            if (e.level == SensorLevel::normal) {
                r.msg = what + " " + value + unit + " back to normal, " + to_string(e.previous_level) + " threshold " +
                        number(e.threshold, e.unit) + unit + " cleared : Deassert";
            } else {
                r.msg = what + " " + value + unit + " " + to_string(e.previous_level) + " threshold " +
                        number(e.threshold, e.unit) + unit + " cleared, still " + to_string(e.level) + " : Deassert";
            }
            break;
    }
    return r;
}

}  // namespace hsmaudit::appliance
