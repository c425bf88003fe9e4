#include "exporters/common/tls_files.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "agent/api/errc.h"

namespace hsmaudit::exporters::common {
namespace {

std::string openssl_errors() {
    std::string out;
    for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "no detail from OpenSSL" : out;
}

/// A password callback that gives none: an encrypted key is refused instead of prompting on a terminal.
int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
    return 0;
}

Status regular_file(const std::string& key, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return make_error(agent::errc::config_error, key + ": " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return make_error(agent::errc::config_error, key + ": " + path + ": not a regular file");
    return {};
}

}  // namespace

Status check_tls_files(std::string_view key_prefix, const std::string& ca, const std::string& cert,
                       const std::string& key) {
    const std::string prefix(key_prefix);
    const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return make_error(agent::errc::internal, "SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_default_passwd_cb(ctx.get(), no_password);
    ERR_clear_error();
    if (!ca.empty()) {
        HSMAUDIT_TRY(regular_file(prefix + "ca", ca));
        if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1)
            return make_error(agent::errc::config_error,
                              prefix + "ca: " + ca + ": no PEM CA certificate could be loaded: " + openssl_errors());
    }
    if (!cert.empty()) {
        HSMAUDIT_TRY(regular_file(prefix + "cert", cert));
        if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1)
            return make_error(agent::errc::config_error,
                              prefix + "cert: " + cert + ": not a PEM certificate chain: " + openssl_errors());
    }
    if (!key.empty()) {
        HSMAUDIT_TRY(regular_file(prefix + "key", key));
        // First alone (does it parse?), then beside the certificate (does it match?).
        const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> alone(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
        if (!alone) return make_error(agent::errc::internal, "SSL_CTX_new: " + openssl_errors());
        SSL_CTX_set_default_passwd_cb(alone.get(), no_password);
        if (SSL_CTX_use_PrivateKey_file(alone.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
            return make_error(agent::errc::config_error,
                              prefix + "key: " + key + ": not an unencrypted PEM private key: " + openssl_errors());
        if (!cert.empty() && (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
                              SSL_CTX_check_private_key(ctx.get()) != 1))
            return make_error(agent::errc::config_error, prefix + "key: " + key + " does not match " + prefix +
                                                             "cert (" + cert + "): " + openssl_errors());
    }
    return {};
}

}  // namespace hsmaudit::exporters::common
