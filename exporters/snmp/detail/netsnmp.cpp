#include "exporters/snmp/detail/netsnmp.h"

#include <cstdlib>
#include <string>

#include "exporters/snmp/logger.h"

namespace hsmaudit::exporters::snmp::detail {
namespace {

int log_to_agent(int /*major*/, int /*minor*/, void* server_arg, void* /*client_arg*/) {
    const auto* msg = static_cast<const snmp_log_message*>(server_arg);
    if (msg == nullptr || msg->msg == nullptr) return 0;
    std::string text = msg->msg;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) return 0;
    // init_mib() looks for net-snmp's default MIB list, which the exporter does not use.
    const bool noise = text.starts_with("Cannot find module") || text.starts_with("MIB search path");
    if ((msg->priority <= LOG_ERR && !noise) || std::getenv("HSMAUDIT_NETSNMP_DEBUG") != nullptr)
        logger().warn("net-snmp: {}", text);
    else
        logger().debug("net-snmp: {}", text);
    return 0;
}

}  // namespace

NetSnmpLibrary& NetSnmpLibrary::instance() {
    // Never destroyed: net-snmp is never shut down (other exporters may still use it until the
    // process exits), and a deleter running during static destruction still finds its lock.
    static auto* const library = new NetSnmpLibrary();  // NOLINT(cppcoreguidelines-owning-memory)
    return *library;
}

NetSnmpLibrary::NetSnmpLibrary() {
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_NO_TOKEN_WARNINGS, 1);
    // No MIB files: an empty search path makes init_mib() load nothing (and print nothing).
    netsnmp_set_mib_directory("");
    netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_ERRORS, 0);
    snmp_disable_log();
    netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, log_to_agent, nullptr);
    if (const char* t = std::getenv("HSMAUDIT_NETSNMP_DEBUG"); t != nullptr && *t != '\0') {
        debug_register_tokens(t);
        snmp_set_do_debugging(1);
    }
    init_snmp("hsmauditd");
}

}  // namespace hsmaudit::exporters::snmp::detail
