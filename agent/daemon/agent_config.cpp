#include "agent/daemon/agent_config.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "agent/api/errc.h"
#include "agent/engine/config_keys.h"
#include "base/config/config.h"
#include "collectors/syslog/listener.h"
#include "exporters/prometheus/endpoint.h"
#include "mac/keys.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

/// Drops alerts: nothing is running while the configuration is checked.
class NoAlerts final : public AlertSink {
public:
    void alert(Alert&& /*a*/) override {}
};

bool key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/// `error` as "file:line: key: what". The key is the configuration key the message names first
/// (a kind's error starts with it: "exporters.siem.relp.key: ..."; the longest at one place), else
/// `fallback`. A message that already names the file (base::Config's own) is kept as it is.
Error located(const base::Config& config, const Error& error, std::string_view fallback) {
    const std::string& message = error.message;
    if (message.starts_with(config.source_name() + ":")) return Error{error.code, message};
    std::string best;
    std::size_t best_at = std::string::npos;
    for (const auto& k : config.keys()) {
        for (auto at = message.find(k); at != std::string::npos && at <= best_at; at = message.find(k, at + 1)) {
            const std::size_t end = at + k.size();
            const bool bounded = (at == 0 || !key_char(message[at - 1])) &&
                                 (end == message.size() || !key_char(message[end]) ||
                                  (message[end] == '.' && (end + 1 == message.size() || message[end + 1] == ' ')));
            if (bounded && (at < best_at || k.size() > best.size())) {
                best = k;
                best_at = at;
                break;
            }
        }
    }
    const std::string key = best.empty() ? std::string(fallback) : best;
    std::string what = message;
    if (what.starts_with(key + ": ")) what.erase(0, key.size() + 2);
    return make_error(errc::config_error, config.locate(key) + ": " + key + ": " + what);
}

const ExporterFactory* find_factory(std::span<const ExporterFactory> factories, std::string_view type) {
    for (const auto& f : factories)
        if (f.type == type) return &f;
    return nullptr;
}

Status check_destinations(const base::Config& config, const ServicePlugins& plugins) {
    HSMAUDIT_TRY(validate_exporters(config, plugins.exporters));
    NoAlerts alerts;
    for (const auto& name : config.instances("exporters")) {
        const std::string section = "exporters." + name;
        if (!config.boolean(section + ".enabled")) continue;
        const ExporterFactory* f = find_factory(plugins.exporters, config.str(section + ".type"));
        if (f == nullptr || f->validate == nullptr) continue;  // validate_exporters refused an unknown kind
        const ExporterContext context{name, config, "", alerts, {}};
        if (auto st = f->validate(context); !st) return located(config, st.error(), section + ".type");
    }
    return {};
}

Status check_metrics(const base::Config& config) {
    if (!config.boolean("metrics.enabled")) return {};
    if (auto st = exporters::prometheus::check_endpoint_options(exporters::prometheus::make_endpoint_options(config));
        !st)
        return located(config, st.error(), "metrics.web_config");
    return {};
}

Status check_syslog_intake(const base::Config& config) {
    for (const auto& endpoint : base::split_list(config.str("syslog.listen")))
        if (auto st = collectors::syslog::check_listener_endpoint(endpoint); !st)
            return make_error(errc::config_error, config.locate("syslog.listen") + ": syslog.listen: '" + endpoint +
                                                      "': " + st.error().message);
    return {};
}

Status check_module(const base::Config& config) {
    if (auto mix = parse_workload_mix(config.str("module.workload.mix")); !mix)
        return make_error(errc::config_error,
                          config.locate("module.workload.mix") + ": module.workload.mix: " + mix.error().message);
    // The audit key: checked when it is there. A missing one is not a configuration error: the
    // embedded module creates it at its first start, and a served module's may appear later
    // (hsmcore init, a systemd credential); the start then fails and may pass on retry.
    std::string key = config.str("audit.key");
    if (key.empty()) key = (fs::path(config.str("module.dir")) / mac::kAuditKeyFile).string();
    struct stat st {};
    if (::stat(key.c_str(), &st) != 0) return {};
    const std::string where = config.locate("audit.key") + ": audit.key";
    if (!S_ISREG(st.st_mode)) return make_error(errc::config_error, where + ": " + key + " is not a regular file");
    if (auto k = mac::load_audit_key(key); !k)
        return make_error(errc::config_error, where + ": " + k.error().describe());
    return {};
}

}  // namespace

Status check_agent_config(const base::Config& config, const ServicePlugins& plugins) {
    HSMAUDIT_TRY(check_module(config));
    HSMAUDIT_TRY(check_syslog_intake(config));
    HSMAUDIT_TRY(check_destinations(config, plugins));
    HSMAUDIT_TRY(check_metrics(config));
    return {};
}

Result<base::Config> load_agent_config(const std::string& path, const ServicePlugins& plugins) {
    const auto keys = all_config_keys(plugins.keys);
    auto config = base::Config::load(path, keys);
    if (!config) return config;
    HSMAUDIT_TRY(check_agent_config(*config, plugins));
    return config;
}

}  // namespace hsmaudit::agent
