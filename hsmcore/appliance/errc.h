// Error codes of the appliance emulator (host syslog stream and sensors). See base/result.h.
#pragma once

#include <system_error>

namespace hsmaudit::appliance {

enum class errc {
    ok = 0,
    invalid_argument = 1,  // a caller passed a value out of range (e.g. a malformed destination)
    io_error = 2,          // a socket operation failed
    invalid_state = 3,     // an operation was called in the wrong state (e.g. after stop)
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::appliance

template <>
struct std::is_error_code_enum<hsmaudit::appliance::errc> : std::true_type {};
