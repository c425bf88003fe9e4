// Error codes of the mac module (the audit chain). See base/result.h for the error model.
#pragma once

#include <system_error>

namespace hsmaudit::mac {

enum class errc {
    ok = 0,
    io_error = 1,          // a file could not be read or written
    bad_format = 2,        // input does not follow docs/FORMAT.md
    bad_mac = 3,           // an HMAC did not verify
    bad_signature = 4,     // an Ed25519 signature did not verify
    bad_key = 5,           // a key file is malformed or does not belong to this chain
    bad_passphrase = 6,    // a wrapped secret could not be opened with the passphrase given
    insecure_file = 7,     // a secret file is readable by group or others
    crypto_error = 8,      // OpenSSL reported a failure
    invalid_argument = 9,  // a caller passed a value out of range
    invalid_state = 10,    // an operation was called in the wrong state (e.g. seal before open)
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::mac

template <>
struct std::is_error_code_enum<hsmaudit::mac::errc> : std::true_type {};
