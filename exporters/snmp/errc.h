// Error codes of the SNMP exporter (exporters/snmp). See base/result.h.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::snmp {

enum class errc {
    ok = 0,
    config_error = 1,  // a key of exporters.<name>.snmp is wrong (the message names it)
    rules_error = 2,   // the rules file is wrong (the message names file, line and column)
    credentials = 3,   // a community or password file is missing, unreadable or not 0600
    state_error = 4,   // the engine state file in the exporter's state directory is damaged or unwritable
    session = 5,       // net-snmp could not open a session to a receiver
    send_failed = 6,   // net-snmp could not send a notification
    internal = 7,      // net-snmp failed where it should not
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::snmp

template <>
struct std::is_error_code_enum<hsmaudit::exporters::snmp::errc> : std::true_type {};
