#include "exporters/snmp/rules.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "base/files.h"
#include "exporters/snmp/errc.h"

namespace hsmaudit::exporters::snmp {
namespace {

// The built-in rules. The appliance tags its sensor and NTLS lines with structured data
// (hsmcore/appliance/appliance_events.cpp: sensor@32473, ntls@32473) because, as the vendor warns,
// message texts change between releases; the text rules at the end catch lines without it.
constexpr std::string_view kDefaultRules = R"yaml(rules:
  # Sensors (ipmievd, smartd): a threshold asserted, or cleared to a lower but not normal level,
  # raises the condition at that level; cleared to normal clears it. Reading changes are ignored.
  - name: temperature-alarm
    match: {sd.sensor@32473.type: "cpu_temperature|ambient_temperature|temperature", sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmTemperatureAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &sensor {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "1", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: temperature-clear
    match: {sd.sensor@32473.type: "cpu_temperature|ambient_temperature|temperature", sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmTemperatureClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *sensor
  - name: fan-alarm
    match: {sd.sensor@32473.type: fan, sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmFanAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &fan {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "2", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: fan-clear
    match: {sd.sensor@32473.type: fan, sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmFanClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *fan
  - name: psu-alarm
    match: {sd.sensor@32473.type: psu, sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmPowerSupplyAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &psu {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "3", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: psu-clear
    match: {sd.sensor@32473.type: psu, sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmPowerSupplyClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *psu
  - name: disk-alarm
    match: {sd.sensor@32473.type: disk, sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmDiskAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &disk {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "4", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: disk-clear
    match: {sd.sensor@32473.type: disk, sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmDiskClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *disk
  - name: cpu-alarm
    match: {sd.sensor@32473.type: "cpu|cpu_usage", sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmCpuAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &cpu {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "5", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: cpu-clear
    match: {sd.sensor@32473.type: "cpu|cpu_usage", sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmCpuClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *cpu
  - name: memory-alarm
    match: {sd.sensor@32473.type: "memory|memory_usage", sd.sensor@32473.state: "assert|deassert", sd.sensor@32473.level: "warning|critical"}
    notification: hsmMemoryAlarm
    action: raise
    condition: "sensor:{sd.sensor@32473.name}"
    values: &memory {hsmNotifySensorName: "{sd.sensor@32473.name}", hsmNotifySensorType: "6", hsmNotifyValue: "{sd.sensor@32473.value}", hsmNotifyThreshold: "{sd.sensor@32473.threshold}", hsmNotifyUnit: "{sd.sensor@32473.unit}"}
  - name: memory-clear
    match: {sd.sensor@32473.type: "memory|memory_usage", sd.sensor@32473.state: deassert, sd.sensor@32473.level: normal}
    notification: hsmMemoryClear
    action: clear
    condition: "sensor:{sd.sensor@32473.name}"
    values: *memory
  # NTLS client links (NTLS LINKDOWN / LINKUP): one condition per client address and name.
  - name: ntls-link-down
    match: {sd.ntls@32473.event: link_down}
    notification: hsmNtlsLinkDown
    action: raise
    severity: warning
    condition: "ntls:{sd.ntls@32473.client}/{sd.ntls@32473.name}"
    values: {hsmNotifyNtlsClient: "{sd.ntls@32473.client} {sd.ntls@32473.name}"}
  - name: ntls-link-up
    match: {sd.ntls@32473.event: link_up}
    notification: hsmNtlsLinkUp
    action: clear
    condition: "ntls:{sd.ntls@32473.client}/{sd.ntls@32473.name}"
    values: {hsmNotifyNtlsClient: "{sd.ntls@32473.client} {sd.ntls@32473.name}"}
  # The same from the vendor's texts, for lines without structured data.
  - name: ntls-link-down-text
    match: {app: NTLS, sd.ntls@32473.event: "", msg: '.*NTLS Client "([^"]*)" Disconnected\. Link down : (\S+).*'}
    notification: hsmNtlsLinkDown
    action: raise
    severity: warning
    condition: "ntls:{2}/{1}"
    values: {hsmNotifyNtlsClient: "{2} {1}"}
  - name: ntls-link-up-text
    match: {app: NTLS, sd.ntls@32473.event: "", msg: '.*NTLS Client "([^"]*)" Connected\. Link up : (\S+).*'}
    notification: hsmNtlsLinkUp
    action: clear
    condition: "ntls:{2}/{1}"
    values: {hsmNotifyNtlsClient: "{2} {1}"}
)yaml";

constexpr std::string_view kFields[] = {"app", "host", "procid", "msgid", "msg", "severity", "facility", "peer"};

bool known_field(std::string_view name) {
    if (std::find(std::begin(kFields), std::end(kFields), name) != std::end(kFields)) return true;
    if (!name.starts_with("sd.")) return false;
    const auto rest = name.substr(3);
    const auto dot = rest.rfind('.');
    return dot != std::string_view::npos && dot > 0 && dot + 1 < rest.size();
}

std::string where(const std::string& name, const YAML::Node& n) {
    return name + ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
}

// Checks that every {x} in `tmpl` names a field or a group 1..9.
std::string check_template(std::string_view tmpl) {
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '{') continue;
        const auto end = tmpl.find('}', i);
        if (end == std::string_view::npos) return "unclosed '{' in \"" + std::string(tmpl) + "\"";
        const auto name = tmpl.substr(i + 1, end - i - 1);
        const bool group = name.size() == 1 && name[0] >= '1' && name[0] <= '9';
        if (!group && !known_field(name))
            return "unknown field {" + std::string(name) +
                   "} (app, host, procid, msgid, msg, severity, facility, peer, sd.<SD-ID>.<param>, 1..9)";
        i = end;
    }
    return {};
}

NotifySeverity from_syslog(int severity) {
    if (severity >= 0 && severity <= 2) return NotifySeverity::critical;
    if (severity == 3 || severity == 4) return NotifySeverity::warning;
    return NotifySeverity::info;
}

// The objects the exporter fills itself for every notification; a rule may not set them.
constexpr std::string_view kManaged[] = {"hsmNotifyCondition", "hsmNotifySeverity",   "hsmNotifyLogReference",
                                         "hsmNotifyEventId",   "hsmNotifySuppressed", "hsmNotifyTime",
                                         "hsmModuleSerial"};

}  // namespace

std::string_view to_string(Action a) {
    switch (a) {
        case Action::raise: return "raise";
        case Action::clear: return "clear";
        case Action::event: return "event";
    }
    return "?";
}

std::optional<std::string> syslog_field(const agent::SyslogFields& s, std::string_view name) {
    if (name == "app") return s.app;
    if (name == "host") return s.host;
    if (name == "procid") return s.procid;
    if (name == "msgid") return s.msgid;
    if (name == "msg") return s.msg.empty() && !s.malformed.empty() ? s.raw : s.msg;
    if (name == "severity") return s.severity < 0 ? std::string() : std::to_string(s.severity);
    if (name == "facility") return s.facility < 0 ? std::string() : std::to_string(s.facility);
    if (name == "peer") return s.peer;
    if (!known_field(name)) return std::nullopt;
    const auto rest = name.substr(3);
    const auto dot = rest.rfind('.');
    const auto id = rest.substr(0, dot);
    const auto param = rest.substr(dot + 1);
    for (const auto& [sd_id, params] : s.sd) {
        if (sd_id != id) continue;
        for (const auto& [k, v] : params)
            if (k == param) return v;
    }
    return std::string();
}

std::string expand_template(std::string_view tmpl, const agent::SyslogFields& s, const std::smatch* groups) {
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '{') {
            out += tmpl[i];
            continue;
        }
        const auto end = tmpl.find('}', i);
        if (end == std::string_view::npos) {
            out += tmpl.substr(i);
            break;
        }
        const auto name = tmpl.substr(i + 1, end - i - 1);
        if (name.size() == 1 && name[0] >= '1' && name[0] <= '9') {
            const auto g = static_cast<std::size_t>(name[0] - '0');
            if (groups != nullptr && g < groups->size()) out += (*groups)[g].str();
        } else if (auto v = syslog_field(s, name)) {
            out += *v;
        }
        i = end;
    }
    return out;
}

Result<RuleSet> RuleSet::parse(std::string_view yaml, const std::string& name) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        return make_error(errc::rules_error, name + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                 std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    RuleSet set;
    try {
        if (!root.IsMap() || !root["rules"] || !root["rules"].IsSequence())
            return make_error(errc::rules_error, name + ": expected a mapping with a list 'rules:'");
        std::set<std::string> names;
        for (const auto& node : root["rules"]) {
            auto fail = [&](const YAML::Node& at, const std::string& msg) {
                return make_error(errc::rules_error, where(name, at) + ": " + msg);
            };
            if (!node.IsMap()) return fail(node, "a rule is a mapping (name, match, notification, action...)");
            Rule r;
            r.line = node.Mark().line + 1;
            for (const auto& kv : node) {
                const auto key = kv.first.as<std::string>();
                static const std::set<std::string> kKeys = {"name",      "match",    "notification", "action",
                                                            "condition", "severity", "values"};
                if (!kKeys.contains(key))
                    return fail(kv.first, "unknown key '" + key +
                                              "' (name, match, notification, action, condition, severity, values)");
            }
            if (!node["name"] || !node["name"].IsScalar() || node["name"].Scalar().empty())
                return fail(node, "a rule needs a name");
            r.name = node["name"].Scalar();
            if (!names.insert(r.name).second) return fail(node["name"], "rule name '" + r.name + "' is used twice");
            if (!node["match"] || !node["match"].IsMap() || node["match"].size() == 0)
                return fail(node, "rule '" + r.name + "' needs a non-empty 'match:' mapping");
            for (const auto& kv : node["match"]) {
                const auto field = kv.first.as<std::string>();
                if (!known_field(field))
                    return fail(kv.first, "unknown field '" + field +
                                              "' (app, host, procid, msgid, msg, severity, facility, peer, "
                                              "sd.<SD-ID>.<param>)");
                if (!kv.second.IsScalar()) return fail(kv.second, "the pattern of '" + field + "' must be a string");
                Rule::Match m{field, kv.second.Scalar(), {}};
                try {
                    m.re = std::regex(m.pattern, std::regex::ECMAScript);
                } catch (const std::regex_error& e) {
                    return fail(kv.second, "bad regular expression for '" + field + "': " + e.what());
                }
                r.match.push_back(std::move(m));
            }
            if (!node["notification"] || !node["notification"].IsScalar())
                return fail(node, "rule '" + r.name + "' needs a notification (a NOTIFICATION-TYPE of HSMAUDIT-MIB)");
            r.notification = find_notification(node["notification"].Scalar());
            if (r.notification == nullptr)
                return fail(node["notification"],
                            "'" + node["notification"].Scalar() + "' is not a notification of HSMAUDIT-MIB");
            const std::string action = node["action"] ? node["action"].as<std::string>() : "";
            if (action == "raise")
                r.action = Action::raise;
            else if (action == "clear")
                r.action = Action::clear;
            else if (action == "event")
                r.action = Action::event;
            else
                return fail(node["action"] ? node["action"] : node, "action must be raise, clear or event");
            if (node["condition"]) {
                r.condition = node["condition"].as<std::string>();
            } else if (r.action != Action::event) {
                return fail(node, "rule '" + r.name + "' raises or clears a condition: it needs 'condition:'");
            } else {
                r.condition = "rule:" + r.name;
            }
            if (auto msg = check_template(r.condition); !msg.empty()) return fail(node["condition"], msg);
            if (node["severity"]) {
                const auto sev = node["severity"].as<std::string>();
                if (sev == "info")
                    r.severity = NotifySeverity::info;
                else if (sev == "warning")
                    r.severity = NotifySeverity::warning;
                else if (sev == "critical")
                    r.severity = NotifySeverity::critical;
                else if (sev != "from-syslog")
                    return fail(node["severity"], "severity must be info, warning, critical or from-syslog");
            }
            if (node["values"]) {
                if (!node["values"].IsMap()) return fail(node["values"], "'values:' is a mapping of object: template");
                for (const auto& kv : node["values"]) {
                    const auto object = kv.first.as<std::string>();
                    const auto& objs = r.notification->objects;
                    if (std::find(objs.begin(), objs.end(), object) == objs.end())
                        return fail(kv.first,
                                    "'" + object + "' is not an object of " + std::string(r.notification->name));
                    if (std::find(std::begin(kManaged), std::end(kManaged), object) != std::end(kManaged))
                        return fail(kv.first, "'" + object + "' is set by the exporter, not by rules");
                    if (!kv.second.IsScalar()) return fail(kv.second, "a value is a string template");
                    if (auto msg = check_template(kv.second.Scalar()); !msg.empty()) return fail(kv.second, msg);
                    r.values.emplace_back(object, kv.second.Scalar());
                }
            }
            set.rules_.push_back(std::move(r));
        }
    } catch (const YAML::Exception& e) {
        return make_error(errc::rules_error, name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    return set;
}

Result<RuleSet> RuleSet::load(const std::string& path) {
    auto text = base::read_file(path, 1 << 20);
    if (!text) return make_error(errc::rules_error, "rules file " + path + ": " + text.error().describe());
    return parse(*text, path);
}

std::string_view RuleSet::default_rules_yaml() {
    return kDefaultRules;
}

Status RuleSet::append(const RuleSet& other) {
    for (const auto& r : other.rules_) {
        for (const auto& mine : rules_)
            if (mine.name == r.name)
                return make_error(errc::rules_error, "rule name '" + r.name + "' is also a built-in rule's name");
        rules_.push_back(r);
    }
    return {};
}

std::optional<Notification> RuleSet::apply(const agent::SyslogFields& s) const {
    for (const auto& r : rules_) {
        bool ok = true;
        std::smatch groups;
        bool have_groups = false;
        // The msg text must outlive `groups`.
        const std::string msg = *syslog_field(s, "msg");
        for (const auto& m : r.match) {
            if (m.field == "msg") {
                if (!std::regex_match(msg, groups, m.re)) {
                    ok = false;
                    break;
                }
                have_groups = true;
            } else {
                const auto value = syslog_field(s, m.field).value_or("");
                if (!std::regex_match(value, m.re)) {
                    ok = false;
                    break;
                }
            }
        }
        if (!ok) continue;
        const std::smatch* g = have_groups ? &groups : nullptr;
        Notification n;
        n.def = r.notification;
        n.action = r.action;
        n.severity = r.action == Action::clear ? NotifySeverity::cleared : r.severity.value_or(from_syslog(s.severity));
        n.condition = expand_template(r.condition, s, g);
        n.set("hsmNotifyText", msg);
        n.set("hsmNotifyAlertKind", "rule:" + r.name);
        n.set("hsmNotifyHost", s.host);
        for (const auto& [object, tmpl] : r.values) n.set(object, expand_template(tmpl, s, g));
        return n;
    }
    return std::nullopt;
}

}  // namespace hsmaudit::exporters::snmp
