// Error codes of the syslog exporter (RFC 5425 TLS, RFC 6587 TCP, UDP). See base/result.h.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::syslog {

enum class errc {
    ok = 0,
    config_error = 1,    // a key is missing or wrong (the message names it)
    connect_failed = 2,  // resolve, TCP connect or TLS handshake failed or timed out
    auth_failed = 3,     // the server's certificate, name or fingerprint is not permitted
    send_failed = 4,     // a write failed or timed out, or the server closed the connection
    internal = 5,        // OpenSSL refused a call that should not fail
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::syslog

template <>
struct std::is_error_code_enum<hsmaudit::exporters::syslog::errc> : std::true_type {};
