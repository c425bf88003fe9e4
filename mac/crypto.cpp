#include "mac/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <bit>
#include <cstring>

#include "mac/errc.h"

namespace hsmaudit::mac {

void EvpMacCtxDeleter::operator()(EVP_MAC_CTX* p) const {
    EVP_MAC_CTX_free(p);
}
void EvpMdCtxDeleter::operator()(EVP_MD_CTX* p) const {
    EVP_MD_CTX_free(p);
}
void EvpMdDeleter::operator()(EVP_MD* p) const {
    EVP_MD_free(p);
}
void EvpPkeyDeleter::operator()(EVP_PKEY* p) const {
    EVP_PKEY_free(p);
}

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Digit values, -1 for anything else: uppercase is rejected on purpose (one byte string per
// value). A table, not branches: the verifier decodes 64 random hex digits per record, and the
// branchy version mispredicted on about half of them (22% of verification time under perf).
constexpr std::array<std::int8_t, 256> kHexValues = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(c - 'a' + 10);
    return t;
}();

int hex_value(char c) {
    return kHexValues[static_cast<unsigned char>(c)];
}

Error crypto_failure(const char* what) {
    return make_error(errc::crypto_error, std::string(what) + ": " + openssl_error());
}

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfDeleter {
    void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
    void operator()(EVP_KDF_CTX* k) const { EVP_KDF_CTX_free(k); }
};

}  // namespace

std::string openssl_error() {
    std::string out;
    unsigned long e = 0;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "no OpenSSL error queued" : out;
}

std::string hex_encode(ByteView data) {
    std::string out;
    hex_append(data, out);
    return out;
}

void hex_append(ByteView data, std::string& out) {
    const std::size_t base = out.size();
    out.resize(base + 2 * data.size());
    char* p = out.data() + base;
    for (std::uint8_t b : data) {
        *p++ = kHexDigits[b >> 4];
        *p++ = kHexDigits[b & 0x0f];
    }
}

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

/// Bytes of `x` (each below 0x80) in [lo, hi]: 0x80 in each such byte, 0 elsewhere. No carry
/// crosses a byte: every sum stays below 0x100.
constexpr std::uint64_t bytes_in_range(std::uint64_t x, std::uint8_t lo, std::uint8_t hi) {
    const std::uint64_t at_least_lo = x + (0x80 - lo) * kOnes;
    const std::uint64_t above_hi = x + (0x7F - hi) * kOnes;
    return at_least_lo & ~above_hi & kHighBits;
}

/// Eight lowercase hex digits (loaded little-endian) to four bytes; false if any is not one.
/// Eight digits per step instead of one: the verifier decodes 64 digits per record, and the
/// digit-at-a-time loop was 9% of `hsmaudit verify` under perf.
inline bool hex8(const char* in, std::uint8_t* out) {
    std::uint64_t x = 0;
    std::memcpy(&x, in, 8);
    if constexpr (std::endian::native != std::endian::little) x = __builtin_bswap64(x);
    const std::uint64_t valid = bytes_in_range(x, '0', '9') | bytes_in_range(x, 'a', 'f');
    if ((x & kHighBits) != 0 || valid != kHighBits) return false;
    // '0'..'9' -> 0..9 (low nibble); 'a'..'f' (bit 6 set) -> low nibble 1..6, plus 9.
    const std::uint64_t v = (x & 0x0F0F0F0F0F0F0F0FULL) + ((x >> 6) & kOnes) * 9;
    const std::uint64_t w = (v << 4) | (v >> 8);  // byte 2k: (digit 2k << 4) | digit 2k+1
    out[0] = static_cast<std::uint8_t>(w);
    out[1] = static_cast<std::uint8_t>(w >> 16);
    out[2] = static_cast<std::uint8_t>(w >> 32);
    out[3] = static_cast<std::uint8_t>(w >> 48);
    return true;
}

}  // namespace

bool hex_decode(std::string_view hex, std::span<std::uint8_t> out) {
    if (hex.size() != 2 * out.size()) return false;
    std::size_t i = 0;
    bool ok = true;
    for (; i + 4 <= out.size(); i += 4) ok &= hex8(hex.data() + 2 * i, out.data() + i);
    int bad = ok ? 0 : -1;  // negative once any digit was invalid (-1 sets every bit)
    for (; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]);
        const int lo = hex_value(hex[2 * i + 1]);
        bad |= hi | lo;
        out[i] = static_cast<std::uint8_t>((hi << 4) | (lo & 0x0f));
    }
    return bad >= 0;
}

Status random_bytes(std::span<std::uint8_t> out) {
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) return crypto_failure("RAND_bytes");
    return {};
}

void secure_zero(void* p, std::size_t n) {
    OPENSSL_cleanse(p, n);
}

bool equal_ct(ByteView a, ByteView b) {
    if (a.size() != b.size()) return false;
    // Eight bytes a step (CRYPTO_memcmp goes byte by byte: 6% of a record's verification on a MAC
    // of 32 bytes). Constant time in the contents: every byte is read, the differences are ORed,
    // and the empty asm keeps the compiler from reasoning about `diff` (no early exit).
    std::uint64_t diff = 0;
    std::size_t i = 0;
    for (; i + 8 <= a.size(); i += 8) {
        std::uint64_t x = 0;
        std::uint64_t y = 0;
        std::memcpy(&x, a.data() + i, 8);
        std::memcpy(&y, b.data() + i, 8);
        diff |= x ^ y;
        __asm__("" : "+r"(diff));
    }
    for (; i < a.size(); ++i) {
        diff |= static_cast<std::uint64_t>(a[i] ^ b[i]);
        __asm__("" : "+r"(diff));
    }
    return diff == 0;
}

// ---- HMAC-SHA256 ----
//
// RFC 2104 over OpenSSL's SHA-256 (SHA256_Init/Update/Final, the block functions with SHA-NI):
// H((K ^ opad) || H((K ^ ipad) || m)), the two pad blocks hashed once per key. These functions
// are deprecated in OpenSSL 3 in favour of EVP, whose HMAC re-init duplicates provider digest
// contexts (two mallocs and frees per message in 3.0); they remain in libcrypto 3 and this file
// is their only user. No SHA-256 or HMAC arithmetic is implemented here.

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

struct HmacSha256::Pads {
    SHA256_CTX inner;
    SHA256_CTX outer;
};

void HmacSha256::PadsDeleter::operator()(Pads* p) const {
    const std::unique_ptr<Pads> owned(p);  // freed after the cleanse
    OPENSSL_cleanse(p, sizeof *p);
}

HmacSha256::~HmacSha256() = default;

Result<HmacSha256> HmacSha256::create(ByteView key) {
    HmacSha256 h(std::unique_ptr<Pads, PadsDeleter>(new Pads{}));
    HSMAUDIT_TRY(h.rekey(key));
    return h;
}

Status HmacSha256::rekey(ByteView key) {
    constexpr std::size_t kBlock = SHA256_CBLOCK;  // 64
    std::array<std::uint8_t, kBlock> k{};
    if (key.size() > kBlock) {  // RFC 2104: a longer key is hashed first
        if (SHA256(key.data(), key.size(), k.data()) == nullptr) return crypto_failure("SHA256");
    } else if (!key.empty()) {
        std::memcpy(k.data(), key.data(), key.size());
    }
    std::array<std::uint8_t, kBlock> ipad{};
    std::array<std::uint8_t, kBlock> opad{};
    for (std::size_t i = 0; i < kBlock; ++i) {
        ipad[i] = static_cast<std::uint8_t>(k[i] ^ 0x36);
        opad[i] = static_cast<std::uint8_t>(k[i] ^ 0x5c);
    }
    Pads fresh{};
    const bool ok = SHA256_Init(&fresh.inner) == 1 && SHA256_Update(&fresh.inner, ipad.data(), kBlock) == 1 &&
                    SHA256_Init(&fresh.outer) == 1 && SHA256_Update(&fresh.outer, opad.data(), kBlock) == 1;
    if (ok) *pads_ = fresh;
    OPENSSL_cleanse(&fresh, sizeof fresh);
    OPENSSL_cleanse(k.data(), k.size());
    OPENSSL_cleanse(ipad.data(), ipad.size());
    OPENSSL_cleanse(opad.data(), opad.size());
    if (!ok) return crypto_failure("SHA256_Init");
    return {};
}

Bytes32 HmacSha256::compute(ByteView a, ByteView b) {
    Bytes32 out{};
    std::array<std::uint8_t, SHA256_DIGEST_LENGTH> inner_hash{};
    SHA256_CTX c = pads_->inner;
    // These calls cannot fail on valid pointers (they return 1); a failure is a broken library,
    // and an all-zero MAC then fails every comparison (fail-safe).
    bool ok = SHA256_Update(&c, a.data(), a.size()) == 1 && SHA256_Update(&c, b.data(), b.size()) == 1 &&
              SHA256_Final(inner_hash.data(), &c) == 1;
    c = pads_->outer;
    ok = ok && SHA256_Update(&c, inner_hash.data(), inner_hash.size()) == 1 && SHA256_Final(out.data(), &c) == 1;
    if (!ok) out.fill(0);
    return out;
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

Result<Bytes32> hmac_sha256(ByteView key, ByteView a, ByteView b) {
    auto h = HmacSha256::create(key);
    if (!h) return std::move(h).error();
    return h->compute(a, b);
}

// ---- SHA-256 ----

Result<Sha256> Sha256::create() {
    std::unique_ptr<EVP_MD, EvpMdDeleter> md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    if (!md) return crypto_failure("EVP_MD_fetch(SHA256)");
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx) return crypto_failure("EVP_MD_CTX_new");
    return Sha256(std::move(md), std::move(ctx));
}

// SHA-256 through OpenSSL's SHA256_CTX (see HMAC-SHA256 above): EVP_DigestInit_ex2 per message
// costs a provider context round trip; the Merkle tree hashes one leaf and about one node per
// record with it.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
Bytes32 Sha256::compute(ByteView a, ByteView b) {
    Bytes32 out{};
    SHA256_CTX c;
    if (SHA256_Init(&c) != 1 || SHA256_Update(&c, a.data(), a.size()) != 1 ||
        SHA256_Update(&c, b.data(), b.size()) != 1 || SHA256_Final(out.data(), &c) != 1) {
        out.fill(0);  // see HmacSha256::compute
    }
    return out;
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// ---- Ed25519 ----

Result<Ed25519PublicKey> Ed25519PublicKey::from_raw(ByteView raw) {
    if (raw.size() != 32) return make_error(errc::bad_key, "an Ed25519 public key is 32 bytes");
    EvpPkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
    if (!key) return crypto_failure("EVP_PKEY_new_raw_public_key");
    Bytes32 copy{};
    std::memcpy(copy.data(), raw.data(), 32);
    return Ed25519PublicKey(copy, std::move(key));
}

bool Ed25519PublicKey::verify(ByteView message, const Ed25519Signature& sig) const {
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx) return false;
    if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key_.get(), nullptr) != 1) {
        ERR_clear_error();
        return false;
    }
    const bool ok = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

namespace {
Result<Ed25519PublicKey> public_of(EVP_PKEY* key) {
    Bytes32 raw{};
    std::size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size())
        return crypto_failure("EVP_PKEY_get_raw_public_key");
    return Ed25519PublicKey::from_raw(raw);
}
}  // namespace

Result<Ed25519PrivateKey> Ed25519PrivateKey::generate() {
    EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (raw == nullptr) return crypto_failure("EVP_PKEY_Q_keygen(ED25519)");
    EvpPkeyPtr key(raw);
    auto pub = public_of(key.get());
    if (!pub) return std::move(pub).error();
    return Ed25519PrivateKey(std::move(key), std::move(*pub));
}

Result<Ed25519PrivateKey> Ed25519PrivateKey::from_pem(std::string_view pem) {
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return crypto_failure("BIO_new_mem_buf");
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
        ERR_clear_error();
        return make_error(errc::bad_key, "not a PEM private key");
    }
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) return make_error(errc::bad_key, "not an Ed25519 key");
    auto pub = public_of(key.get());
    if (!pub) return std::move(pub).error();
    return Ed25519PrivateKey(std::move(key), std::move(*pub));
}

Result<std::string> Ed25519PrivateKey::to_pem() const {
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_secmem()));
    if (!bio) return crypto_failure("BIO_new");
    if (PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return crypto_failure("PEM_write_bio_PrivateKey");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

Result<Ed25519Signature> Ed25519PrivateKey::sign(ByteView message) const {
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx) return crypto_failure("EVP_MD_CTX_new");
    if (EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, key_.get(), nullptr) != 1)
        return crypto_failure("EVP_DigestSignInit_ex");
    Ed25519Signature sig{};
    std::size_t len = sig.size();
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 || len != sig.size())
        return crypto_failure("EVP_DigestSign");
    return sig;
}

Ed25519PublicKey Ed25519PrivateKey::public_key() const {
    return pub_;
}

// ---- scrypt, AES-256-GCM ----

Result<std::array<std::uint8_t, 32>> scrypt_kdf(std::string_view passphrase, ByteView salt, std::uint64_t n,
                                                std::uint32_t r, std::uint32_t p) {
    std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
    if (!kdf) return crypto_failure("EVP_KDF_fetch(SCRYPT)");
    std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) return crypto_failure("EVP_KDF_CTX_new");
    std::uint64_t maxmem = 1ULL << 31;  // 2 GiB ceiling; the default (32 MiB) rejects N=2^17, r=8
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(passphrase.data()),
                                          passphrase.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end()};
    std::array<std::uint8_t, 32> out{};
    if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) return crypto_failure("scrypt");
    return out;
}

Status aes256gcm_seal_to(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext, std::uint8_t* out,
                         std::array<std::uint8_t, 16>& tag_out) {
    if (key.size() != 32 || nonce.size() != 12) return make_error(errc::invalid_argument, "AES-256-GCM key/nonce size");
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return crypto_failure("EVP_CIPHER_CTX_new");
    if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), nonce.data(), nullptr) != 1)
        return crypto_failure("EVP_EncryptInit_ex2");
    int len = 0;
    if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
        return crypto_failure("EVP_EncryptUpdate(aad)");
    if (EVP_EncryptUpdate(ctx.get(), out, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1)
        return crypto_failure("EVP_EncryptUpdate");
    int total = len;
    // GCM is a stream mode: EncryptUpdate wrote every byte and Final writes none (asserted below).
    if (EVP_EncryptFinal_ex(ctx.get(), out + total, &len) != 1) return crypto_failure("EVP_EncryptFinal_ex");
    total += len;
    if (static_cast<std::size_t>(total) != plaintext.size())
        return make_error(errc::crypto_error, "AES-256-GCM wrote " + std::to_string(total) + " bytes for " +
                                                  std::to_string(plaintext.size()));
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag_out.data()) != 1)
        return crypto_failure("EVP_CTRL_GCM_GET_TAG");
    return {};
}

Result<std::string> aes256gcm_seal(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext,
                                   std::array<std::uint8_t, 16>& tag_out) {
    std::string out(plaintext.size(), '\0');
    HSMAUDIT_TRY(aes256gcm_seal_to(key, nonce, aad, plaintext, reinterpret_cast<std::uint8_t*>(out.data()), tag_out));
    return out;
}

Status aes256gcm_open_to(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext, ByteView tag,
                         std::string& out) {
    // Unauthenticated plaintext is written here before the tag is checked: wiped on any failure
    // (with what `out` held before).
    const auto wipe = [&out] {
        secure_zero(out.data(), out.size());
        out.clear();
    };
    if (key.size() != 32 || nonce.size() != 12 || tag.size() != 16) {
        wipe();
        return make_error(errc::invalid_argument, "AES-256-GCM key/nonce/tag size");
    }
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key.data(), nonce.data(), nullptr) != 1 ||
        (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)) {
        wipe();
        return crypto_failure(!ctx ? "EVP_CIPHER_CTX_new" : "EVP_DecryptInit_ex2/EVP_DecryptUpdate(aad)");
    }
    // Resized from what it held (the previous chunk's plaintext, of about the same size), not from
    // empty: std::string fills only the growth with zeros, so a reader of many chunks does not
    // zero-fill a chunk's worth (1 MiB) before decrypting over it. Capacity kept: no allocation.
    out.resize(ciphertext.size() + 16);
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    if (EVP_DecryptUpdate(ctx.get(), o, &len, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1) {
        wipe();
        return crypto_failure("EVP_DecryptUpdate");
    }
    int total = len;
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, const_cast<std::uint8_t*>(tag.data())) != 1) {
        wipe();
        return crypto_failure("EVP_CTRL_GCM_SET_TAG");
    }
    if (EVP_DecryptFinal_ex(ctx.get(), o + total, &len) != 1) {
        ERR_clear_error();
        wipe();
        return make_error(errc::bad_passphrase, "authentication tag mismatch");
    }
    total += len;
    out.resize(static_cast<std::size_t>(total));
    return {};
}

Result<std::string> aes256gcm_open(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext, ByteView tag) {
    std::string out;
    HSMAUDIT_TRY(aes256gcm_open_to(key, nonce, aad, ciphertext, tag, out));
    return out;
}

}  // namespace hsmaudit::mac
