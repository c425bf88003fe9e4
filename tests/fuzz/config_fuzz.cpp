// libFuzzer target for the agent's configuration (base/config): YAML text -> base::Config, validated
// against every key hsmauditd accepts (the agent's and the built-in exporter kinds'), then the
// checks `hsmauditd --check-config` adds (validate_exporters) and the option builders the service
// calls on a loaded base::Config. A bad file must be an error naming file and line, never a crash or an
// exception. Properties checked besides "no crash": an error names the file; a loaded base::Config
// has a value for every plain key and every instance it lists.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent/daemon/exporter_registry.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/export/manager.h"
#include "agent/engine/pipeline/drain.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/retention.h"
#include "base/config/config.h"

using namespace hsmaudit;
using namespace hsmaudit::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<base::KeySpec> keys = all_config_keys(exporters::component_config_keys());
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    auto c = base::Config::parse(yaml, "fuzz.yaml", keys);
    if (!c) {
        if (c.error().message.find("fuzz.yaml") == std::string::npos) std::abort();
        return 0;
    }
    for (const auto& k : keys) {
        if (k.key.find('*') != std::string_view::npos) continue;
        if (!c->has(k.key)) std::abort();
        (void)c->origin(k.key);
    }
    for (const auto& name : c->instances("exporters"))
        if (!base::valid_instance_name(name) || !c->has("exporters." + name + ".type")) std::abort();
    (void)validate_exporters(*c, exporters::builtin_exporters());
    (void)make_drain_options(*c);
    (void)make_store_options(*c, "/nonexistent/audit");
    (void)make_archiver_options(*c, "/nonexistent/audit");
    (void)make_spool_options(*c, "/nonexistent/spool");
    (void)make_retention_options(*c, "/nonexistent/audit");
    for (const auto& item : base::split_list(c->str("syslog.listen"))) (void)item;
    return 0;
}
