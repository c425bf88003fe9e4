// The explicit registration list of configuration keys: every component's KeySpec table,
// concatenated in one place (no static self-registration).
#pragma once

#include <vector>

#include "agent/config/config.h"

namespace hsmaudit::agent {

/// Keys of the agent itself: state directory, module connection, audit key, logging.
std::span<const KeySpec> agent_config_keys();
/// Keys of the drain: batching, rotation, ring watch (agent/pipeline/drain_config.cpp).
std::span<const KeySpec> drain_config_keys();
/// Keys of the store: encryption, quota, archives (agent/store/store_config.cpp).
std::span<const KeySpec> store_config_keys();

/// Keys of the syslog intake and its spool (agent/store/spool_config.cpp).
std::span<const KeySpec> syslog_config_keys();

/// Keys of archiving and retention: schedule, compression, quota (agent/store/archive_config.cpp).
std::span<const KeySpec> archive_config_keys();

/// Every key hsmauditd accepts, in documentation order: the agent's own, the exporters' common
/// keys (agent/export/manager.cpp) and `plugins`, the keys of the exporter kinds built in
/// (exporters::exporter_config_keys(), passed by the programs that link them).
std::vector<KeySpec> all_config_keys(std::span<const KeySpec> plugins = {});

}  // namespace hsmaudit::agent
