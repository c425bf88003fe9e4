// Error codes of the Prometheus metrics endpoint. See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::exporters::prometheus {

enum class errc {
    ok = 0,
    config_error = 1,  // metrics.* keys or the web config file are wrong (the message names which)
    io_error = 2,      // a file could not be read
    bind_failed = 3,   // the HTTP server could not listen (address in use, not permitted...)
    tls_error = 4,     // the certificate or key could not be loaded
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::exporters::prometheus

template <>
struct std::is_error_code_enum<hsmaudit::exporters::prometheus::errc> : std::true_type {};
