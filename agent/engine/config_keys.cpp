#include "agent/engine/config_keys.h"

#include <unistd.h>

#include "agent/engine/export/manager.h"

namespace hsmaudit::agent {

std::span<const base::KeySpec> agent_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"agent.state_dir", base::KeyType::path, "/var/lib/hsmaudit",
         "Where the agent keeps its store (segments, archives, cursors, alerts). Created 0700."},
        {"agent.log_level", base::KeyType::choice, "info",
         "The agent's own log (stderr or journald, never the audit trail).", 0, INT64_MAX,
         "trace|debug|info|warn|error"},
        {"agent.status_interval", base::KeyType::duration, "1s",
         "How often the agent writes status.json for `hsmaudit status`.", 100, 60'000},
        {"module.mode", base::KeyType::choice, "embedded",
         "`embedded`: run the module emulator inside the agent (the default demo); `connect`: drain a module "
         "served by `hsmcore serve` in module.dir.",
         0, INT64_MAX, "embedded|connect"},
        {"module.dir", base::KeyType::path, "/var/lib/hsmaudit/module",
         "The module's state directory (ring file, keys, control socket). `embedded` creates it if missing."},
        {"module.serial", base::KeyType::string, "150123", "Serial of an embedded module created on first start."},
        {"module.ring_size", base::KeyType::bytes, "16MiB",
         "NVRAM ring size of an embedded module created on first start.", std::int64_t{64} * 1024, 1LL << 32},
        {"module.workload.rate", base::KeyType::integer, "0",
         "Embedded mode: operations per second of the built-in client workload (0 = none).", 0, 1'000'000},
        {"module.workload.mix", base::KeyType::string, "sign=70,verify=10,encrypt=10,keygen=5,login=5",
         "Embedded mode: the workload's operation mix."},
        {"agent.hostname", base::KeyType::string, "",
         "The appliance's name in exported events (RFC 5424 HOSTNAME, CEF dvchost...). Empty: the system's host "
         "name."},
        {"audit.key", base::KeyType::path, "",
         "The audit secret the agent verifies with and encrypts at rest with (`audit.key`, mode 0600). "
         "Empty: module.dir/audit.key."},
    };
    return kKeys;
}

std::string appliance_host_name(const base::Config& config) {
    std::string hostname = config.str("agent.hostname");
    if (hostname.empty()) {
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) == 0) hostname = name;
    }
    return hostname;
}

std::vector<base::KeySpec> all_config_keys(std::span<const base::KeySpec> plugins) {
    std::vector<base::KeySpec> all;
    for (auto list : {agent_config_keys(), drain_config_keys(), store_config_keys(), archive_config_keys(),
                      syslog_config_keys(), export_config_keys(), plugins})
        all.insert(all.end(), list.begin(), list.end());
    return all;
}

}  // namespace hsmaudit::agent
