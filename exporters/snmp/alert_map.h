// Which notification each agent alert becomes (docs/SNMP.md, "Notifications and their triggers").
// Alerts the table does not name become hsmAgentAlert, so no alert goes unreported.
//
// Thread-safety: free functions over immutable tables.
#pragma once

#include "agent/api/alerts.h"
#include "exporters/snmp/notification.h"

namespace hsmaudit::exporters::snmp {

/// The notification for `alert`: definition, action, condition, severity, hsmNotifyText and
/// hsmNotifyAlertKind, hsmNotifyRecordSeq, hsmNotifyExporterName (exporter.down/up: the name the
/// runner quotes, "destination 'siem' is down: ...", or else the message's first word).
Notification map_alert(const agent::Alert& alert);

}  // namespace hsmaudit::exporters::snmp
