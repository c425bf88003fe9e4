// Thin RAII wrappers over the OpenSSL 3 primitives the chain uses: HMAC-SHA256 (EVP_MAC),
// SHA-256 (EVP_MD), Ed25519 (EVP_PKEY), scrypt (EVP_KDF), AES-256-GCM (EVP_CIPHER) and the
// CSPRNG. No primitive is implemented here; these only own handles and check return codes.
//
// Thread-safety: each object is used by one thread at a time; distinct objects are independent.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

typedef struct evp_mac_ctx_st EVP_MAC_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_pkey_st EVP_PKEY;

namespace hsmaudit::mac {

using Bytes32 = std::array<std::uint8_t, 32>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// Lowercase hex of `data`.
std::string hex_encode(ByteView data);
/// Appends lowercase hex of `data` to `out` (no allocation beyond growth of `out`).
void hex_append(ByteView data, std::string& out);
/// Strict decode: exactly 2*out.size() lowercase hex digits, else false.
bool hex_decode(std::string_view hex, std::span<std::uint8_t> out);

/// Fills `out` from OpenSSL's CSPRNG.
Status random_bytes(std::span<std::uint8_t> out);
/// Overwrites memory that held key material (OPENSSL_cleanse: not optimized away).
void secure_zero(void* p, std::size_t n);
/// Constant-time comparison.
bool equal_ct(ByteView a, ByteView b);

struct EvpMacCtxDeleter {
    void operator()(EVP_MAC_CTX* p) const;
};
struct EvpMdCtxDeleter {
    void operator()(EVP_MD_CTX* p) const;
};
struct EvpMdDeleter {
    void operator()(EVP_MD* p) const;
};
struct EvpPkeyDeleter {
    void operator()(EVP_PKEY* p) const;
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

/// HMAC-SHA256 (RFC 2104) under one key. The key's two pad blocks are hashed once, by rekey():
/// each message then starts from a copy of those two SHA-256 states (OpenSSL's SHA256_CTX, its
/// SHA-NI/AVX2 block functions), so a MAC costs the message's blocks plus one outer block and no
/// allocation. OpenSSL 3.0's EVP_MAC re-init instead duplicated two provider digest contexts
/// (malloc + free each) per message: about half of a record's verification time. The SHA-256
/// states are key material: cleansed when replaced and when the object is destroyed.
/// Unit-tested against EVP_MAC "HMAC" and RFC 4231 (tests/unit/mac/crypto_test.cpp).
class HmacSha256 {
public:
    static Result<HmacSha256> create(ByteView key);
    ~HmacSha256();
    HmacSha256(HmacSha256&&) noexcept = default;
    HmacSha256& operator=(HmacSha256&&) noexcept = default;

    /// HMAC(key, a || b).
    Bytes32 compute(ByteView a, ByteView b = {});
    /// Replaces the key (the old pad states are cleansed).
    Status rekey(ByteView key);

    struct Pads;  // the inner and outer SHA-256 states after the key's pad blocks (crypto.cpp)
    struct PadsDeleter {
        void operator()(Pads* p) const;  // cleanses, then frees
    };

private:
    explicit HmacSha256(std::unique_ptr<Pads, PadsDeleter> pads) : pads_(std::move(pads)) {}
    std::unique_ptr<Pads, PadsDeleter> pads_;
};

/// One-shot HMAC-SHA256(key, a || b).
Result<Bytes32> hmac_sha256(ByteView key, ByteView a, ByteView b = {});

/// SHA-256 with a reusable context.
class Sha256 {
public:
    static Result<Sha256> create();
    /// SHA-256(a || b).
    Bytes32 compute(ByteView a, ByteView b = {});

private:
    Sha256(std::unique_ptr<EVP_MD, EvpMdDeleter> md, std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx)
        : md_(std::move(md)), ctx_(std::move(ctx)) {}
    std::unique_ptr<EVP_MD, EvpMdDeleter> md_;
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx_;
};

using Ed25519Signature = std::array<std::uint8_t, 64>;

/// An Ed25519 public key (32 raw bytes, RFC 8032).
class Ed25519PublicKey {
public:
    static Result<Ed25519PublicKey> from_raw(ByteView raw);
    [[nodiscard]] const Bytes32& raw() const { return raw_; }
    [[nodiscard]] bool verify(ByteView message, const Ed25519Signature& sig) const;

private:
    Ed25519PublicKey(Bytes32 raw, EvpPkeyPtr key) : raw_(raw), key_(std::move(key)) {}
    Bytes32 raw_{};
    std::shared_ptr<EVP_PKEY> key_;  // EVP_PKEY is immutable after creation; sharing is safe
};

/// An Ed25519 private key (the module's audit signing key).
class Ed25519PrivateKey {
public:
    static Result<Ed25519PrivateKey> generate();
    /// Parses a PKCS#8 PEM private key.
    static Result<Ed25519PrivateKey> from_pem(std::string_view pem);
    [[nodiscard]] Result<std::string> to_pem() const;
    [[nodiscard]] Result<Ed25519Signature> sign(ByteView message) const;
    [[nodiscard]] Ed25519PublicKey public_key() const;

private:
    Ed25519PrivateKey(EvpPkeyPtr key, Ed25519PublicKey pub) : key_(std::move(key)), pub_(std::move(pub)) {}
    std::shared_ptr<EVP_PKEY> key_;
    Ed25519PublicKey pub_;
};

/// scrypt (RFC 7914) through EVP_KDF.
Result<std::array<std::uint8_t, 32>> scrypt_kdf(std::string_view passphrase, ByteView salt, std::uint64_t n,
                                                std::uint32_t r, std::uint32_t p);

/// AES-256-GCM seal/open with a 12-byte nonce and a 16-byte tag.
Result<std::string> aes256gcm_seal(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext,
                                   std::array<std::uint8_t, 16>& tag_out);
/// The same, writing the ciphertext (plaintext.size() bytes) to `out` instead of a new string:
/// the store's chunks are sealed straight into its write buffer (no allocation, no copy).
Status aes256gcm_seal_to(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext, std::uint8_t* out,
                         std::array<std::uint8_t, 16>& tag_out);
Result<std::string> aes256gcm_open(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext, ByteView tag);
/// The same, into `out` (resized to the plaintext; its capacity is kept, so a reader of many chunks
/// reuses one buffer). On failure `out` is wiped and empty.
Status aes256gcm_open_to(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext, ByteView tag,
                         std::string& out);

/// The last OpenSSL error as text (and clears the queue).
std::string openssl_error();

}  // namespace hsmaudit::mac
