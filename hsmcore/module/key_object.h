// In-memory key objects of the emulated module and the real OpenSSL 3 operations on them:
// RSA-2048/3072 and EC P-256/P-384 (sign/verify; RSA also OAEP encrypt/decrypt) and AES-256
// (GCM encrypt/decrypt, RFC 5649 key wrap of other keys).
//
// Thread-safety: a KeyObject is immutable after creation except its first-use flag (atomic), so
// several threads may use one key at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mac/crypto.h"

namespace hsmaudit::hsmcore::module {

enum class KeyAlg : std::uint8_t { rsa2048 = 1, rsa3072 = 2, ec_p256 = 3, ec_p384 = 4, aes256 = 5 };

/// "RSA-2048", "RSA-3072", "EC-P256", "EC-P384", "AES-256" (the names records carry).
const char* key_alg_name(KeyAlg alg) noexcept;
Result<KeyAlg> parse_key_alg(std::string_view name);
/// The mechanism name a record carries for sign/encrypt with this algorithm.
const char* sign_mechanism(KeyAlg alg) noexcept;
const char* encrypt_mechanism(KeyAlg alg) noexcept;

class KeyObject {
public:
    static Result<std::shared_ptr<KeyObject>> generate(KeyAlg alg, std::uint32_t partition, std::string label);
    ~KeyObject();
    KeyObject(const KeyObject&) = delete;
    KeyObject& operator=(const KeyObject&) = delete;

    [[nodiscard]] KeyAlg alg() const { return alg_; }
    [[nodiscard]] std::uint32_t partition() const { return partition_; }
    [[nodiscard]] const std::string& label() const { return label_; }
    [[nodiscard]] bool asymmetric() const { return alg_ != KeyAlg::aes256; }
    /// True the first time it is called for this key (the "first" audit class).
    bool mark_used() { return !used_.exchange(true); }

    Result<std::string> sign(std::string_view data) const;
    Result<bool> verify(std::string_view data, std::string_view signature) const;
    /// AES: 12-byte nonce || ciphertext || 16-byte tag. RSA: OAEP (SHA-256). EC: not supported.
    Result<std::string> encrypt(std::string_view plaintext) const;
    Result<std::string> decrypt(std::string_view ciphertext) const;
    /// This AES key wraps `target` (RFC 5649): the blob is alg byte || wrapped key material.
    Result<std::string> wrap(const KeyObject& target) const;
    /// This AES key unwraps a blob made by wrap().
    Result<std::shared_ptr<KeyObject>> unwrap(std::string_view blob, std::uint32_t partition, std::string label) const;

private:
    struct Impl;
    KeyObject(KeyAlg alg, std::uint32_t partition, std::string label, std::unique_ptr<Impl> impl);
    KeyAlg alg_;
    std::uint32_t partition_;
    std::string label_;
    std::unique_ptr<Impl> impl_;
    std::atomic<bool> used_{false};
};

}  // namespace hsmaudit::hsmcore::module
