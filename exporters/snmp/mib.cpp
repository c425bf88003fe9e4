#include "exporters/snmp/mib.h"

#include <charconv>

#include "exporters/snmp/errc.h"

namespace hsmaudit::exporters::snmp {
namespace {

// Generated from config/mibs/HSMAUDIT-MIB.txt; the mib_consistency test compares the two.
const ObjectDef kObjects[] = {
    {"hsmModuleSerial", {1, 1, 1}, SmiType::display_string, true},
    {"hsmModuleLabel", {1, 1, 2}, SmiType::display_string, true},
    {"hsmModuleFirmware", {1, 1, 3}, SmiType::display_string, true},
    {"hsmModuleBlocked", {1, 1, 4}, SmiType::integer32, true},
    {"hsmModuleBootCounter", {1, 1, 5}, SmiType::unsigned32, true},
    {"hsmModuleOperationRequests", {1, 1, 6}, SmiType::counter64, true},
    {"hsmModuleOperationErrors", {1, 1, 7}, SmiType::counter64, true},
    {"hsmModuleCryptoRequests", {1, 1, 8}, SmiType::counter64, true},
    {"hsmModuleCryptoErrors", {1, 1, 9}, SmiType::counter64, true},
    {"hsmModuleCriticalEvents", {1, 1, 10}, SmiType::counter64, true},
    {"hsmModuleNonCriticalEvents", {1, 1, 11}, SmiType::counter64, true},
    {"hsmRingCapacity", {1, 2, 1}, SmiType::gauge32, true},
    {"hsmRingUsed", {1, 2, 2}, SmiType::gauge32, true},
    {"hsmRingUsedRecords", {1, 2, 3}, SmiType::gauge32, true},
    {"hsmRingFillPercent", {1, 2, 4}, SmiType::gauge32, true},
    {"hsmRingFillLevel", {1, 2, 5}, SmiType::integer32, true},
    {"hsmRingSecondsToFull", {1, 2, 6}, SmiType::integer32, true},
    {"hsmDrainLagRecords", {1, 3, 1}, SmiType::gauge32, true},
    {"hsmDrainLagSeconds", {1, 3, 2}, SmiType::gauge32, true},
    {"hsmDrainPaused", {1, 3, 3}, SmiType::integer32, true},
    {"hsmChainStatus", {1, 4, 1}, SmiType::integer32, true},
    {"hsmChainFaults", {1, 4, 2}, SmiType::counter64, true},
    {"hsmChainLastFaultKind", {1, 4, 3}, SmiType::display_string, true},
    {"hsmChainLastFaultText", {1, 4, 4}, SmiType::display_string, true},
    {"hsmStoreUsed", {1, 5, 1}, SmiType::gauge32, true},
    {"hsmStoreQuota", {1, 5, 2}, SmiType::gauge32, true},
    {"hsmStoreQuotaLevel", {1, 5, 3}, SmiType::integer32, true},
    {"hsmExporterName", {1, 6, 1, 1, 2}, SmiType::display_string, false},
    {"hsmExporterState", {1, 6, 1, 1, 3}, SmiType::integer32, false},
    {"hsmExporterLagRecords", {1, 6, 1, 1, 4}, SmiType::gauge32, false},
    {"hsmExporterLagSeconds", {1, 6, 1, 1, 5}, SmiType::gauge32, false},
    {"hsmSensorName", {1, 7, 1, 1, 2}, SmiType::display_string, false},
    {"hsmSensorType", {1, 7, 1, 1, 3}, SmiType::integer32, false},
    {"hsmSensorValue", {1, 7, 1, 1, 4}, SmiType::display_string, false},
    {"hsmSensorUnit", {1, 7, 1, 1, 5}, SmiType::display_string, false},
    {"hsmSensorLevel", {1, 7, 1, 1, 6}, SmiType::integer32, false},
    {"hsmNotifyCondition", {1, 8, 1}, SmiType::display_string, true},
    {"hsmNotifySeverity", {1, 8, 2}, SmiType::integer32, true},
    {"hsmNotifyText", {1, 8, 3}, SmiType::display_string, true},
    {"hsmNotifyLogReference", {1, 8, 4}, SmiType::display_string, true},
    {"hsmNotifyEventId", {1, 8, 5}, SmiType::display_string, true},
    {"hsmNotifySuppressed", {1, 8, 6}, SmiType::unsigned32, true},
    {"hsmNotifyAlertKind", {1, 8, 7}, SmiType::display_string, true},
    {"hsmNotifyTime", {1, 8, 8}, SmiType::date_and_time, true},
    {"hsmNotifyRecordSeq", {1, 8, 9}, SmiType::display_string, true},
    {"hsmNotifyExporterName", {1, 8, 10}, SmiType::display_string, true},
    {"hsmNotifySensorName", {1, 8, 11}, SmiType::display_string, true},
    {"hsmNotifySensorType", {1, 8, 12}, SmiType::integer32, true},
    {"hsmNotifyValue", {1, 8, 13}, SmiType::display_string, true},
    {"hsmNotifyThreshold", {1, 8, 14}, SmiType::display_string, true},
    {"hsmNotifyUnit", {1, 8, 15}, SmiType::display_string, true},
    {"hsmNotifyNtlsClient", {1, 8, 16}, SmiType::display_string, true},
    {"hsmNotifyHost", {1, 8, 17}, SmiType::display_string, true},
};

const NotificationDef kNotifications[] = {
    {"hsmRingFillWarning",
     1,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmRingFillPercent", "hsmRingUsedRecords",
      "hsmRingSecondsToFull"}},
    {"hsmRingFillCritical",
     2,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmRingFillPercent", "hsmRingUsedRecords",
      "hsmRingSecondsToFull"}},
    {"hsmRingFillClear",
     3,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmRingFillPercent", "hsmRingUsedRecords",
      "hsmRingSecondsToFull"}},
    {"hsmRingPredictedFull",
     4,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmRingFillPercent", "hsmRingUsedRecords",
      "hsmRingSecondsToFull"}},
    {"hsmRingPredictedFullClear",
     5,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmRingFillPercent", "hsmRingUsedRecords",
      "hsmRingSecondsToFull"}},
    {"hsmModuleBlockedNotify",
     6,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmModuleBlocked", "hsmRingFillPercent",
      "hsmRingUsedRecords", "hsmRingSecondsToFull"}},
    {"hsmModuleResumedNotify",
     7,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmModuleBlocked", "hsmRingFillPercent",
      "hsmRingUsedRecords", "hsmRingSecondsToFull"}},
    {"hsmChainVerificationFailure",
     8,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind", "hsmNotifyRecordSeq",
      "hsmChainFaults"}},
    {"hsmChainSequenceGap",
     9,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind", "hsmNotifyRecordSeq",
      "hsmChainFaults"}},
    {"hsmModuleBootChange",
     10,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind", "hsmModuleBootCounter"}},
    {"hsmModuleClockDrift",
     11,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind", "hsmNotifyRecordSeq"}},
    {"hsmStoreQuotaWarning",
     12,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmStoreUsed", "hsmStoreQuota"}},
    {"hsmStoreQuotaFull",
     13,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmStoreUsed", "hsmStoreQuota", "hsmDrainPaused"}},
    {"hsmStoreQuotaClear",
     14,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmStoreUsed", "hsmStoreQuota", "hsmDrainPaused"}},
    {"hsmExporterDown",
     15,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyExporterName", "hsmNotifyAlertKind"}},
    {"hsmExporterUp",
     16,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyExporterName", "hsmNotifyAlertKind"}},
    {"hsmAgentStarted",
     17,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyHost"}},
    {"hsmAgentStopping",
     18,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyHost"}},
    {"hsmTemperatureAlarm",
     19,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmTemperatureClear",
     20,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmFanAlarm",
     21,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmFanClear",
     22,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmPowerSupplyAlarm",
     23,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmPowerSupplyClear",
     24,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmDiskAlarm",
     25,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmDiskClear",
     26,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmCpuAlarm",
     27,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmCpuClear",
     28,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmMemoryAlarm",
     29,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmMemoryClear",
     30,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifySensorName", "hsmNotifySensorType",
      "hsmNotifyValue", "hsmNotifyThreshold", "hsmNotifyUnit", "hsmNotifyHost", "hsmNotifyAlertKind"}},
    {"hsmNtlsLinkDown",
     31,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyNtlsClient", "hsmNotifyHost",
      "hsmNotifyAlertKind"}},
    {"hsmNtlsLinkUp",
     32,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyNtlsClient", "hsmNotifyHost",
      "hsmNotifyAlertKind"}},
    {"hsmAgentAlert",
     33,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind"}},
    {"hsmSyslogEvent",
     34,
     {"hsmNotifyCondition", "hsmNotifySeverity", "hsmNotifyText", "hsmNotifyLogReference", "hsmNotifyEventId",
      "hsmNotifySuppressed", "hsmNotifyTime", "hsmModuleSerial", "hsmNotifyAlertKind", "hsmNotifyHost"}},
};

}  // namespace

std::span<const ObjectDef> mib_objects() {
    return kObjects;
}

std::span<const NotificationDef> mib_notifications() {
    return kNotifications;
}

const ObjectDef* find_object(std::string_view name) {
    for (const auto& o : kObjects)
        if (o.name == name) return &o;
    return nullptr;
}

const NotificationDef* find_notification(std::string_view name) {
    for (const auto& n : kNotifications)
        if (n.name == name) return &n;
    return nullptr;
}

Result<Oid> parse_oid(std::string_view text) {
    Oid out;
    std::string_view rest = text;
    if (!rest.empty() && rest.front() == '.') rest.remove_prefix(1);
    while (!rest.empty()) {
        const auto dot = rest.find('.');
        const auto part = rest.substr(0, dot);
        std::uint32_t v = 0;
        auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
        if (part.empty() || ec != std::errc{} || p != part.data() + part.size())
            return make_error(errc::config_error, "'" + std::string(text) + "' is not an OID (digits and dots)");
        out.push_back(v);
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
        if (rest.empty()) return make_error(errc::config_error, "'" + std::string(text) + "' ends with a dot");
    }
    if (out.size() < 2 || out.size() > 64)
        return make_error(errc::config_error, "'" + std::string(text) + "' must have 2 to 64 arcs");
    return out;
}

std::string to_string(const Oid& oid) {
    std::string s;
    for (auto v : oid) {
        s += '.';
        s += std::to_string(v);
    }
    return s;
}

const Oid& sys_uptime_oid() {
    static const Oid kOid{1, 3, 6, 1, 2, 1, 1, 3, 0};
    return kOid;
}

const Oid& snmp_trap_oid() {
    static const Oid kOid{1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
    return kOid;
}

Oid object_oid(const Oid& base, const ObjectDef& object) {
    Oid o = base;
    o.insert(o.end(), object.suffix.begin(), object.suffix.end());
    if (object.scalar) o.push_back(0);
    return o;
}

Oid notification_oid(const Oid& base, const NotificationDef& notification) {
    Oid o = base;
    o.push_back(0);
    o.push_back(notification.sub_id);
    return o;
}

}  // namespace hsmaudit::exporters::snmp
