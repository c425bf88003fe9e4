// Error codes of the RELP exporter. See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::relp {

enum class errc {
    ok = 0,
    config_error = 1,    // a key is missing or wrong (the message names it)
    connect_failed = 2,  // TCP connect, TLS handshake or RELP open failed or timed out
    auth_failed = 3,     // the peer's certificate, name or fingerprint is not permitted
    send_failed = 4,     // the session broke while sending, or the server answered an error
    not_confirmed = 5,   // the close handshake that confirms the tail did not complete
    internal = 6,        // librelp refused a call that should not fail
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::relp

template <>
struct std::is_error_code_enum<hsmaudit::exporters::relp::errc> : std::true_type {};
