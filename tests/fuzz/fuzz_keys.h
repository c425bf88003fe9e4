// The fixed test key of the fuzz targets and of their seed corpus (tests/fuzz/make_seed_corpus.cpp).
// Fixed so that seeds carry valid MACs and signatures and the fuzzer starts deep in the
// verifier. A published test key: it protects nothing.
#pragma once

#include <cstdlib>
#include <optional>
#include <string_view>

#include "mac/keys.h"

namespace hsmaudit::fuzz {

inline constexpr std::string_view kSigningKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIPz8WkesQaKjgvammWE+aZwv9YhbeVZ7JxSIowb1ucGG\n"
    "-----END PRIVATE KEY-----\n";
inline constexpr std::string_view kPassphrase = "fuzzing passphrase";

struct FixedKeys {
    mac::Ed25519PrivateKey signer;
    mac::AuditKey key;
};

/// The fixed signing key and an audit secret of 32 bytes 0x42. Aborts if OpenSSL fails.
inline FixedKeys fixed_keys() {
    auto signer = mac::Ed25519PrivateKey::from_pem(kSigningKeyPem);
    if (!signer) std::abort();
    mac::Bytes32 secret;
    secret.fill(0x42);
    const mac::Ed25519PublicKey pub = signer->public_key();
    mac::AuditKey key(mac::chain_id_of(pub), secret, pub);
    return FixedKeys{std::move(*signer), std::move(key)};
}

}  // namespace hsmaudit::fuzz
