// Error codes of the syslog collector. See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::collectors::syslog {

enum class errc {
    ok = 0,
    invalid_argument = 1,  // a malformed endpoint or option
    io_error = 2,          // a socket or file operation failed
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::collectors::syslog

template <>
struct std::is_error_code_enum<hsmaudit::collectors::syslog::errc> : std::true_type {};
