// libFuzzer target for the agent's configuration (agent/config): YAML text -> Config, validated
// against every key hsmauditd accepts (the agent's and the built-in exporter kinds'), then the
// checks `hsmauditd --check-config` adds (validate_exporters) and the option builders the service
// calls on a loaded Config. A bad file must be an error naming file and line, never a crash or an
// exception. Properties checked besides "no crash": an error names the file; a loaded Config
// has a value for every plain key and every instance it lists.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/config/keys.h"
#include "agent/export/manager.h"
#include "agent/pipeline/drain.h"
#include "agent/store/archiver.h"
#include "agent/store/audit_store.h"
#include "agent/store/event_spool.h"
#include "agent/store/retention.h"
#include "exporters/registry.h"

using namespace hsmaudit;
using namespace hsmaudit::agent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<KeySpec> keys = all_config_keys(exporters::exporter_config_keys());
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    auto c = Config::parse(yaml, "fuzz.yaml", keys);
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
        if (!valid_instance_name(name) || !c->has("exporters." + name + ".type")) std::abort();
    (void)validate_exporters(*c, exporters::builtin_exporters());
    (void)make_drain_options(*c);
    (void)make_store_options(*c, "/nonexistent/audit");
    (void)make_archiver_options(*c, "/nonexistent/audit");
    (void)make_spool_options(*c, "/nonexistent/spool");
    (void)make_retention_options(*c, "/nonexistent/audit");
    for (const auto& item : split_list(c->str("syslog.listen"))) (void)item;
    return 0;
}
