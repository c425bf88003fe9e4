// The one code path that builds hsmauditd's configuration: `hsmauditd --check-config`, the start
// and a reload (SIGHUP) all call load_agent_config(), so "configuration OK" means the start cannot
// fail on the configuration (only on what may pass on retry: the module not reachable, the store
// locked, an address in use).
//
// It loads the file (base::Config::load: a regular file under 1 MiB, no duplicate or unknown keys,
// not empty) and checks, without connecting, binding, or touching the module or the store:
//   - every enabled destination: its kind and common keys (validate_exporters), then its kind's own
//     check (ExporterFactory::validate: files with their modes, TLS material that parses, ports,
//     the format and its options such as leef_delimiter, UDP syslog only with allow_loss);
//   - the metrics endpoint when enabled (listen address, metrics.web_config present, 0600, valid);
//   - the syslog intake's listen addresses (syntax, port range, an existing unix path a socket);
//   - the embedded workload's mix; the audit key file when it exists (format and mode 0600).
// Every error names "file:line: key: what" (the line of the key, or of its enclosing section when
// the key took its default).
//
// Thread-safety: free functions; call from one thread at a time (they may log warnings a kind
// gives about its options, e.g. UDP syslog).
#pragma once

#include <string>

#include "agent/daemon/service.h"
#include "base/config/config.h"
#include "base/result.h"

namespace hsmaudit::agent {

/// Loads `path` and checks everything the start checks before it opens the module (above).
/// Errors: errc::config_error, the message naming file:line and key.
Result<base::Config> load_agent_config(const std::string& path, const ServicePlugins& plugins);

/// The checks of load_agent_config() on an already parsed configuration (tests, parse()).
Status check_agent_config(const base::Config& config, const ServicePlugins& plugins);

}  // namespace hsmaudit::agent
