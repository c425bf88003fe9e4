#include "exporters/prometheus/web_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "base/files.h"
#include "exporters/prometheus/errc.h"

namespace hsmaudit::exporters::prometheus {
namespace {
namespace fs = std::filesystem;

Error bad(const std::string& name, const std::string& what) {
    return make_error(errc::config_error, name + ": " + what);
}

Status only_keys(const YAML::Node& map, const std::set<std::string>& allowed, const std::string& name,
                 const std::string& where) {
    for (const auto& kv : map) {
        const auto key = kv.first.as<std::string>();
        if (!allowed.contains(key))
            return bad(
                name, where + key + ": not supported by hsmauditd (supported: " + [&] {
                    std::string s;
                    for (const auto& a : allowed) s += (s.empty() ? "" : ", ") + a;
                    return s;
                }() + ")");
    }
    return {};
}

std::string resolve(const std::string& base_dir, const std::string& p) {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(base_dir) / p).lexically_normal().string();
}

bool valid_bcrypt(const std::string& h) {
    // $2a$, $2b$ or $2y$, a two-digit cost, 53 characters of salt and hash.
    return h.size() == 60 && h[0] == '$' && h[1] == '2' && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$' &&
           h[6] == '$';
}

}  // namespace

Result<WebConfig> parse_web_config(const std::string& text, const std::string& name, const std::string& base_dir) {
    WebConfig c;
    try {
        const YAML::Node root = YAML::Load(text);
        if (!root || root.IsNull()) return c;
        if (!root.IsMap()) return bad(name, "the web config must be a mapping");
        HSMAUDIT_TRY(only_keys(root, {"tls_server_config", "basic_auth_users"}, name, ""));
        if (const auto tls = root["tls_server_config"]; tls && !tls.IsNull()) {
            if (!tls.IsMap()) return bad(name, "tls_server_config must be a mapping");
            HSMAUDIT_TRY(only_keys(tls, {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"},
                                   name, "tls_server_config."));
            TlsServerConfig t;
            t.cert_file = resolve(base_dir, tls["cert_file"] ? tls["cert_file"].as<std::string>() : "");
            t.key_file = resolve(base_dir, tls["key_file"] ? tls["key_file"].as<std::string>() : "");
            if (t.cert_file.empty() || t.key_file.empty())
                return bad(name, "tls_server_config needs both cert_file and key_file");
            t.client_ca_file = resolve(base_dir, tls["client_ca_file"] ? tls["client_ca_file"].as<std::string>() : "");
            const std::string auth = tls["client_auth_type"] ? tls["client_auth_type"].as<std::string>() : "";
            if (auth.empty() || auth == "NoClientCert")
                t.client_auth = ClientAuth::none;
            else if (auth == "VerifyClientCertIfGiven")
                t.client_auth = ClientAuth::verify_if_given;
            else if (auth == "RequireAndVerifyClientCert")
                t.client_auth = ClientAuth::require_and_verify;
            else
                return bad(name, "tls_server_config.client_auth_type: '" + auth +
                                     "' is not supported (NoClientCert, VerifyClientCertIfGiven, "
                                     "RequireAndVerifyClientCert)");
            if (t.client_auth != ClientAuth::none && t.client_ca_file.empty())
                return bad(name, "tls_server_config.client_auth_type " + auth + " needs client_ca_file");
            const std::string minv = tls["min_version"] ? tls["min_version"].as<std::string>() : "TLS12";
            if (minv == "TLS12")
                t.min_version = 12;
            else if (minv == "TLS13")
                t.min_version = 13;
            else
                return bad(name, "tls_server_config.min_version: '" + minv + "' is not supported (TLS12, TLS13)");
            c.tls = std::move(t);
        }
        if (const auto users = root["basic_auth_users"]; users && !users.IsNull()) {
            if (!users.IsMap()) return bad(name, "basic_auth_users must map user names to bcrypt hashes");
            for (const auto& kv : users) {
                const auto user = kv.first.as<std::string>();
                const auto hash = kv.second.as<std::string>();
                if (user.empty() || user.find(':') != std::string::npos)
                    return bad(name, "basic_auth_users: a user name must be non-empty and have no ':'");
                // The hash is never echoed: it is a secret.
                if (!valid_bcrypt(hash))
                    return bad(name, "basic_auth_users." + user + ": not a bcrypt hash ($2a$, $2b$ or $2y$)");
                c.basic_auth_users[user] = hash;
            }
        }
    } catch (const YAML::Exception& e) {
        return bad(name, std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    return c;
}

Result<WebConfig> load_web_config(const std::string& path) {
    auto text = base::read_secret_file(path, 1 << 20);
    if (!text) return make_error(errc::config_error, "metrics.web_config: " + text.error().describe());
    return parse_web_config(*text, path, fs::path(path).parent_path().string());
}

}  // namespace hsmaudit::exporters::prometheus
