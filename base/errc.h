// Error codes of the base library (file I/O helpers, line reading, parsing). See base/result.h.
#pragma once

#include <string>
#include <system_error>

namespace hsmaudit::base {

enum class errc {
    ok = 0,
    io_error = 1,          // a file could not be opened, read or written
    bad_format = 2,        // input is malformed or larger than the caller allows
    invalid_argument = 3,  // a caller passed a value out of range, or a file is not what it must be
    insecure_file = 4,     // a secret file is readable by group or others
    config_error = 5,      // a configuration file or value is invalid (the message names file and line)
};

namespace detail {

class ErrorCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.base"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::io_error: return "I/O error";
            case errc::bad_format: return "malformed input";
            case errc::invalid_argument: return "invalid argument";
            case errc::insecure_file: return "insecure file permissions";
            case errc::config_error: return "configuration error";
        }
        return "unknown base error " + std::to_string(ev);
    }
};

}  // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::ErrorCategory category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::base

template <>
struct std::is_error_code_enum<hsmaudit::base::errc> : std::true_type {};
