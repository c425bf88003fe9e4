// Where the operator tools (`hsmaudit status`, `tail`, `fsck`) find an agent's files: the state
// directory from --state-dir or from the agent's configuration file (agent.state_dir), the audit
// key from --key or from the configuration (audit.key, else module.dir/audit.key).
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <string>

#include "agent/engine/store/state_layout.h"
#include "base/config/config.h"
#include "base/result.h"

namespace hsmaudit::agent::tools {

/// The paths a tool works on.
struct ToolPaths {
    std::string state_dir;                   // the agent's state directory
    std::string key_path;                    // "" when neither --key nor a configuration names one
    std::int64_t status_interval_ms = 1000;  // how often the agent writes status.json
};

/// Resolves --state-dir / -c / --key (exactly one of state_dir and config_path must be given).
/// `plugin_keys`: the keys of the exporter kinds the program knows (a configuration names them).
Result<ToolPaths> resolve_tool_paths(const std::string& state_dir, const std::string& config_path,
                                     const std::string& key_path, std::span<const base::KeySpec> plugin_keys = {});

}  // namespace hsmaudit::agent::tools
