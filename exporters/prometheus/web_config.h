// The web configuration file of the metrics endpoint, in the format of Prometheus'
// exporter-toolkit (`--web.config.file`), so operators reuse what they know:
//
//   tls_server_config:
//     cert_file: server.pem          # relative paths are relative to this file's directory
//     key_file: server.key           # 0600: refused if group or others may read it
//     client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default), VerifyClientCertIfGiven
//     client_ca_file: clients-ca.pem
//     min_version: TLS12             # or TLS13
//   basic_auth_users:
//     prometheus: $2b$12$...         # bcrypt hashes (htpasswd -B, mkpasswd -m bcrypt)
//
// The file itself must be 0600 (it holds password hashes). Keys hsmauditd does not implement
// (cipher_suites, curve_preferences, max_version, client_allowed_sans, http_server_config...)
// are refused rather than ignored, so a setting never silently does nothing.
//
// Thread-safety: a value type; load_web_config() is reentrant.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/result.h"

namespace hsmaudit::exporters::prometheus {

enum class ClientAuth : std::uint8_t { none, verify_if_given, require_and_verify };

struct TlsServerConfig {
    std::string cert_file;  // absolute after loading
    std::string key_file;
    std::string client_ca_file;
    ClientAuth client_auth = ClientAuth::none;
    int min_version = 12;  // 12: TLS 1.2, 13: TLS 1.3
};

struct WebConfig {
    std::optional<TlsServerConfig> tls;
    std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
};

/// Reads and validates `path`; errors name the file and the key.
Result<WebConfig> load_web_config(const std::string& path);
/// Parses YAML text (tests); relative paths resolve against `base_dir`.
Result<WebConfig> parse_web_config(const std::string& text, const std::string& name, const std::string& base_dir);

}  // namespace hsmaudit::exporters::prometheus
