// The TLS material a destination names (CA file, client certificate, client key), checked as
// OpenSSL will load it at connect, so `hsmauditd --check-config` refuses a file that is missing or
// does not parse instead of the first connection failing (and retrying) for ever.
// Thread-safety: a free function; reentrant (its own SSL_CTX per call).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace hsmaudit::exporters::common {

/// Checks, for the non-empty paths: `ca` is a regular file holding PEM certificate(s); `cert` is
/// a PEM certificate chain; `key` is a PEM private key (never prompted for: an encrypted key is
/// refused) that matches `cert`. `key_prefix` ("exporters.siem.relp.") names the keys in errors:
/// "exporters.siem.relp.ca: /etc/x.pem: no such file". Error: agent::errc::config_error.
Status check_tls_files(std::string_view key_prefix, const std::string& ca, const std::string& cert,
                       const std::string& key);

}  // namespace hsmaudit::exporters::common
