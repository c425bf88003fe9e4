#include "agent/tools/tool_paths.h"

#include <filesystem>

#include "agent/api/errc.h"
#include "agent/engine/config_keys.h"
#include "base/config/config.h"
#include "mac/keys.h"

namespace hsmaudit::agent::tools {

Result<ToolPaths> resolve_tool_paths(const std::string& state_dir, const std::string& config_path,
                                     const std::string& key_path, std::span<const base::KeySpec> plugin_keys) {
    if (state_dir.empty() == config_path.empty())
        return make_error(errc::invalid_argument, "give exactly one of --state-dir DIR and -c CONFIG");
    ToolPaths p;
    p.key_path = key_path;
    if (!state_dir.empty()) {
        p.state_dir = state_dir;
        return p;
    }
    const auto keys = all_config_keys(plugin_keys);
    auto config = base::Config::load(config_path, keys);
    if (!config) return std::move(config).error();
    p.state_dir = config->str("agent.state_dir");
    p.status_interval_ms = config->integer("agent.status_interval");
    if (p.key_path.empty()) {
        p.key_path = config->str("audit.key");
        if (p.key_path.empty())
            p.key_path = (std::filesystem::path(config->str("module.dir")) / mac::kAuditKeyFile).string();
    }
    return p;
}

}  // namespace hsmaudit::agent::tools
