// What the network exporters (relp, syslog) share below the Exporter interface: parsing a
// destination's host:port. Exporters never depend on each other; they may depend on common/.
// Thread-safety: free functions on values.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

namespace hsmaudit::exporters::common {

/// Parses "host:port" or "[v6addr]:port" into (host, port). `key` names the configuration key in
/// the error ("exporters.siem.relp.target: 'x' has no port (expected host:port or [v6addr]:port)").
Result<std::pair<std::string, std::string>> parse_host_port(std::string_view text, std::string_view key);

}  // namespace hsmaudit::exporters::common
