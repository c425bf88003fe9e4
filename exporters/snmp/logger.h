// The SNMP exporter's log: the agent's own log (stderr, hence the journal), never the audit trail.
// Credentials are never logged. Thread-safety: spdlog loggers are thread-safe.
#pragma once

#include <spdlog/logger.h>

#include "base/logger.h"

namespace hsmaudit::exporters::snmp {

inline spdlog::logger& logger() {
    return base::logger();
}

}  // namespace hsmaudit::exporters::snmp
