// Error codes of the hsmcore module (the module emulator, its NVRAM ring and its host interface).
// See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::hsmcore {

enum class errc {
    ok = 0,
    io_error = 1,          // a file, mapping or socket operation failed
    corrupt = 2,           // the ring or its state file fails a check (magic, checksum, sequence)
    log_full = 3,          // the audit ring is at its reserve: the operation is refused until the agent acks
    invalid_argument = 4,  // a caller passed a value out of range or malformed
    invalid_state = 5,     // wrong state for the operation (not logged in, segment not open...)
    not_found = 6,         // no such partition, session, key or entry
    pin_incorrect = 7,     // login with a wrong PIN
    pin_locked = 8,        // too many failed logins: the role is locked out
    not_permitted = 9,     // the role logged in may not do this
    crypto_error = 10,     // OpenSSL reported a failure
    protocol_error = 11,   // a control-socket message is malformed
    overrun = 12,          // a reader asked for entries the ring no longer holds (acknowledged and reused)
    unavailable = 13,      // the serving module is not reachable
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// Stable lower-case names used on the control socket ("log_full") and their inverse.
const char* errc_name(errc e) noexcept;
errc errc_from_name(std::string_view name) noexcept;

}  // namespace hsmaudit::hsmcore

template <>
struct std::is_error_code_enum<hsmaudit::hsmcore::errc> : std::true_type {};
