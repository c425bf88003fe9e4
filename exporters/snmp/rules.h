// Syslog rules: which appliance syslog lines become which notifications, the way the appliance's
// own trap agent derives traps from its syslog (docs/SNMP.md, "Rules"). A rules file is YAML:
//
//   rules:
//     - name: fan-threshold                 # unique; shown in hsmNotifyAlertKind as "rule:<name>"
//       match:                              # every field must match its regular expression (whole value)
//         app: ipmievd
//         sd.sensor@32473.type: fan          # structured data: sd.<SD-ID>.<param>; absent reads as ""
//         sd.sensor@32473.level: warning|critical
//       notification: hsmFanAlarm            # a NOTIFICATION-TYPE of HSMAUDIT-MIB
//       action: raise                        # raise | clear | event
//       condition: "sensor:{sd.sensor@32473.name}"   # raise and clear of one condition must agree
//       severity: from-syslog                # info | warning | critical | from-syslog (default)
//       values:                              # optional: more varbinds, objects of the notification
//         hsmNotifySensorName: "{sd.sensor@32473.name}"
//
// Fields: app, host, procid, msgid, msg, severity (0..7), facility (0..23), peer, sd.<SD-ID>.<param>.
// Templates: {field} and {1}..{9}, the groups of the `msg` expression. The first rule that matches
// wins; the user's rules come before the built-in ones (default_rules()).
//
// Thread-safety: a RuleSet is immutable after parse(); match() may be called from any thread.
#pragma once

#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/api/event.h"
#include "base/result.h"
#include "exporters/snmp/mib.h"
#include "exporters/snmp/notification.h"

namespace hsmaudit::exporters::snmp {

struct Rule {
    std::string name;
    int line = 0;  // in its file, for messages
    struct Match {
        std::string field;
        std::string pattern;
        std::regex re;
    };
    std::vector<Match> match;
    const NotificationDef* notification = nullptr;
    Action action = Action::event;
    std::string condition;                                    // template
    std::optional<NotifySeverity> severity;                   // nullopt: from the syslog severity
    std::vector<std::pair<std::string, std::string>> values;  // object name, template
};

class RuleSet {
public:
    /// Parses rules YAML; `name` (a file name) is used in error messages with line and column.
    static Result<RuleSet> parse(std::string_view yaml, const std::string& name);
    /// Reads and parses a rules file.
    static Result<RuleSet> load(const std::string& path);
    /// The built-in rules: the appliance's sensor (sensor@32473), NTLS (ntls@32473) structured
    /// data, with fallbacks on the vendor's message texts for lines without structured data.
    static std::string_view default_rules_yaml();

    /// Appends `other`'s rules after this set's (names must stay unique).
    Status append(const RuleSet& other);

    /// The notification for `syslog` from the first matching rule, or nullopt. Fills condition,
    /// severity, action, hsmNotifyText ({msg} unless the rule sets it), hsmNotifyAlertKind and
    /// hsmNotifyHost, plus the rule's values.
    [[nodiscard]] std::optional<Notification> apply(const agent::SyslogFields& syslog) const;

    [[nodiscard]] const std::vector<Rule>& rules() const { return rules_; }

private:
    std::vector<Rule> rules_;
};

/// A field of a syslog message as rules name it ("app", "sd.sensor@32473.name"); nullopt if the
/// name is not a field. Absent structured data reads as "".
std::optional<std::string> syslog_field(const agent::SyslogFields& s, std::string_view name);

/// Expands {field} and {1}..{9} in `tmpl`.
std::string expand_template(std::string_view tmpl, const agent::SyslogFields& s, const std::smatch* msg_groups);

}  // namespace hsmaudit::exporters::snmp
