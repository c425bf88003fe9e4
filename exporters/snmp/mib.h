// HSMAUDIT-MIB (config/mibs/HSMAUDIT-MIB.txt) as the sender knows it: every object's OID below the
// module's arc and SMI type, and every notification's sub-identifier and OBJECTS, in the MIB's
// order. A test checks this table against the MIB file with snmptranslate, so the two cannot drift.
//
// Thread-safety: immutable tables; read from any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hsmaudit::exporters::snmp {

/// The module's arc with the IANA documentation enterprise number; a vendor sets its own with
/// exporters.<name>.snmp.enterprise_oid (and edits the MIB file the same way, docs/SNMP.md).
inline constexpr std::string_view kDefaultEnterpriseOid = "1.3.6.1.4.1.32473.1";

using Oid = std::vector<std::uint32_t>;

enum class SmiType : std::uint8_t { display_string, integer32, unsigned32, gauge32, counter64, date_and_time };

struct ObjectDef {
    std::string_view name;
    std::initializer_list<std::uint32_t> suffix;  // below the module's arc: {1, 8, 3} is hsmNotifyText
    SmiType type;
    bool scalar;  // instance .0 (the table columns are never carried in notifications)
};

struct NotificationDef {
    std::string_view name;
    std::uint32_t sub_id;  // under the arc's .0
    std::initializer_list<std::string_view> objects;
};

std::span<const ObjectDef> mib_objects();
std::span<const NotificationDef> mib_notifications();
const ObjectDef* find_object(std::string_view name);
const NotificationDef* find_notification(std::string_view name);

/// Parses "1.3.6.1.4.1.32473.1" (digits and dots, 2..64 arcs).
Result<Oid> parse_oid(std::string_view text);
std::string to_string(const Oid& oid);

/// sysUpTime.0 and snmpTrapOID.0 (SNMPv2-MIB): varbinds 1 and 2 of every notification.
const Oid& sys_uptime_oid();
const Oid& snmp_trap_oid();

/// The instance OID of `object` (scalars get .0) and the OID of `notification` below `base`.
Oid object_oid(const Oid& base, const ObjectDef& object);
Oid notification_oid(const Oid& base, const NotificationDef& notification);

}  // namespace hsmaudit::exporters::snmp
