// Exporting the audit secret wrapped under a domain passphrase, and importing it back
// (docs/FORMAT.md, "Wrapped secret"): scrypt derives a key-encryption key from the passphrase,
// AES-256-GCM encrypts audit.key's contents, and the header (format, KDF parameters, salt,
// nonce) is authenticated as associated data.
//
// Thread-safety: free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

struct WrapParams {
    std::uint64_t scrypt_n = 1ULL << 17;  // 128 MiB with r = 8: OWASP's recommendation
    std::uint32_t scrypt_r = 8;
    std::uint32_t scrypt_p = 1;
};

inline constexpr std::size_t kMinPassphraseLength = 8;

/// Wraps `key` under `passphrase` (at least kMinPassphraseLength bytes).
Result<std::string> wrap_audit_key(const AuditKey& key, std::string_view passphrase, const WrapParams& params = {});

/// Unwraps a blob made by wrap_audit_key(). A wrong passphrase gives errc::bad_passphrase;
/// KDF parameters beyond sane bounds are refused before any work is done.
Result<AuditKey> unwrap_audit_key(std::string_view blob, std::string_view passphrase);

/// Reads a passphrase file (a secret file: 0600): its first line, without the line ending.
Result<std::string> read_passphrase_file(const std::string& path);

}  // namespace hsmaudit::mac
