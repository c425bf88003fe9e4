// The explicit registration list of configuration keys: every component's base::KeySpec table,
// concatenated in one place (no static self-registration).
#pragma once

#include <string>
#include <vector>

#include "base/config/config.h"

namespace hsmaudit::agent {

/// Keys of the agent itself: state directory, module connection, audit key, logging.
std::span<const base::KeySpec> agent_config_keys();
/// Keys of the drain: batching, rotation, ring watch (agent/engine/pipeline/drain_config.cpp).
std::span<const base::KeySpec> drain_config_keys();
/// Keys of the store: encryption, quota, archives (agent/engine/store/store_config.cpp).
std::span<const base::KeySpec> store_config_keys();

/// Keys of the syslog intake and its spool (agent/engine/store/spool_config.cpp).
std::span<const base::KeySpec> syslog_config_keys();

/// Keys of archiving and retention: schedule, compression, quota (agent/engine/store/archive_config.cpp).
std::span<const base::KeySpec> archive_config_keys();

/// The appliance's host name in exported events (Event::host): agent.hostname, else the system's
/// (gethostname). hsmauditd and `hsmaudit tap` take it from here.
std::string appliance_host_name(const base::Config& config);

/// Every key hsmauditd accepts, in documentation order: the agent's own, the exporters' common
/// keys (agent/engine/export/manager.cpp) and `plugins`, the keys of the exporter kinds built in
/// (exporters::component_config_keys(), passed by the programs that link them).
std::vector<base::KeySpec> all_config_keys(std::span<const base::KeySpec> plugins = {});

}  // namespace hsmaudit::agent
