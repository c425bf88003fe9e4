// Error codes of the journal collector. See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::collectors::journal {

enum class errc {
    ok = 0,
    invalid_argument = 1,  // a malformed option: a match that is not FIELD=value, an unknown start
    open_failed = 2,       // the journal (or its directory) could not be opened
    read_error = 3,        // sd-journal failed while reading or seeking
    cursor_damaged = 4,    // the cursor file is not one this collector wrote (cut, edited, bit rot)
    io_error = 5,          // the cursor file could not be read or written
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::collectors::journal

template <>
struct std::is_error_code_enum<hsmaudit::collectors::journal::errc> : std::true_type {};
