#include "hsmcore/module/key_object.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>

#include "hsmcore/errc.h"

namespace hsmaudit::hsmcore::module {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

Error ossl(std::string what) {
    return make_error(errc::crypto_error, what + ": " + mac::openssl_error());
}

const EVP_MD* digest_for(KeyAlg alg) {
    return alg == KeyAlg::ec_p384 ? EVP_sha384() : EVP_sha256();
}

const unsigned char* ucp(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

/// RFC 5649 AES key wrap with padding (encrypt = true) or unwrap.
Result<std::string> aes_kwp(const std::array<std::uint8_t, 32>& kek, std::string_view in, bool encrypt) {
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) return ossl("EVP_CIPHER_CTX_new");
    if (EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_wrap_pad(), kek.data(), nullptr, encrypt ? 1 : 0, nullptr) != 1)
        return ossl("AES key wrap init");
    std::string out(in.size() + 16, '\0');
    int n = 0;
    if (EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, ucp(in),
                         static_cast<int>(in.size())) != 1 ||
        n < 0)
        return make_error(errc::crypto_error,
                          encrypt ? "AES key wrap failed" : "unwrap failed: wrong key or damaged blob");
    int m = 0;
    if (EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &m) != 1)
        return make_error(errc::crypto_error, "AES key wrap final failed");
    out.resize(static_cast<std::size_t>(n + m));
    return out;
}

}  // namespace

struct KeyObject::Impl {
    PkeyPtr pkey;                        // RSA / EC
    std::array<std::uint8_t, 32> aes{};  // AES-256
    ~Impl() { mac::secure_zero(aes.data(), aes.size()); }
};

const char* key_alg_name(KeyAlg alg) noexcept {
    switch (alg) {
        case KeyAlg::rsa2048: return "RSA-2048";
        case KeyAlg::rsa3072: return "RSA-3072";
        case KeyAlg::ec_p256: return "EC-P256";
        case KeyAlg::ec_p384: return "EC-P384";
        case KeyAlg::aes256: return "AES-256";
    }
    return "?";
}

Result<KeyAlg> parse_key_alg(std::string_view name) {
    for (KeyAlg a : {KeyAlg::rsa2048, KeyAlg::rsa3072, KeyAlg::ec_p256, KeyAlg::ec_p384, KeyAlg::aes256})
        if (name == key_alg_name(a)) return a;
    return make_error(errc::invalid_argument, "unknown key algorithm '" + std::string(name.substr(0, 32)) +
                                                  "' (RSA-2048, RSA-3072, EC-P256, EC-P384, AES-256)");
}

const char* sign_mechanism(KeyAlg alg) noexcept {
    switch (alg) {
        case KeyAlg::rsa2048:
        case KeyAlg::rsa3072: return "CKM_SHA256_RSA_PKCS";
        case KeyAlg::ec_p256: return "CKM_ECDSA_SHA256";
        case KeyAlg::ec_p384: return "CKM_ECDSA_SHA384";
        case KeyAlg::aes256: return "CKM_AES_GCM";
    }
    return "?";
}

const char* encrypt_mechanism(KeyAlg alg) noexcept {
    return alg == KeyAlg::aes256 ? "CKM_AES_GCM" : "CKM_RSA_PKCS_OAEP";
}

KeyObject::KeyObject(KeyAlg alg, std::uint32_t partition, std::string label, std::unique_ptr<Impl> impl)
    : alg_(alg), partition_(partition), label_(std::move(label)), impl_(std::move(impl)) {}
KeyObject::~KeyObject() = default;

Result<std::shared_ptr<KeyObject>> KeyObject::generate(KeyAlg alg, std::uint32_t partition, std::string label) {
    auto impl = std::make_unique<Impl>();
    switch (alg) {
        case KeyAlg::rsa2048:
        case KeyAlg::rsa3072:
            impl->pkey.reset(
                EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{alg == KeyAlg::rsa2048 ? 2048u : 3072u}));
            break;
        case KeyAlg::ec_p256: impl->pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); break;
        case KeyAlg::ec_p384: impl->pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384")); break;
        case KeyAlg::aes256: HSMAUDIT_TRY(mac::random_bytes(impl->aes)); break;
    }
    if (alg != KeyAlg::aes256 && !impl->pkey) return ossl(std::string("generate ") + key_alg_name(alg));
    return std::shared_ptr<KeyObject>(new KeyObject(alg, partition, std::move(label), std::move(impl)));
}

Result<std::string> KeyObject::sign(std::string_view data) const {
    if (!asymmetric()) return make_error(errc::invalid_argument, "an AES key cannot sign");
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest_for(alg_), nullptr, impl_->pkey.get()) != 1)
        return ossl("sign init");
    std::size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, ucp(data), data.size()) != 1) return ossl("sign size");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, ucp(data), data.size()) != 1)
        return ossl("sign");
    sig.resize(len);
    return sig;
}

Result<bool> KeyObject::verify(std::string_view data, std::string_view signature) const {
    if (!asymmetric()) return make_error(errc::invalid_argument, "an AES key cannot verify");
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(alg_), nullptr, impl_->pkey.get()) != 1)
        return ossl("verify init");
    const int rc = EVP_DigestVerify(ctx.get(), ucp(signature), signature.size(), ucp(data), data.size());
    ERR_clear_error();
    return rc == 1;
}

Result<std::string> KeyObject::encrypt(std::string_view plaintext) const {
    if (alg_ == KeyAlg::aes256) {
        std::array<std::uint8_t, 12> nonce{};
        HSMAUDIT_TRY(mac::random_bytes(nonce));
        std::array<std::uint8_t, 16> tag{};
        auto ct = mac::aes256gcm_seal(impl_->aes, nonce, {}, mac::as_bytes(plaintext), tag);
        if (!ct) return make_error(errc::crypto_error, ct.error().message);
        std::string out(reinterpret_cast<const char*>(nonce.data()), nonce.size());
        out += *ct;
        out.append(reinterpret_cast<const char*>(tag.data()), tag.size());
        return out;
    }
    if (alg_ != KeyAlg::rsa2048 && alg_ != KeyAlg::rsa3072)
        return make_error(errc::invalid_argument, std::string(key_alg_name(alg_)) + " keys cannot encrypt");
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(impl_->pkey.get(), nullptr));
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1)
        return ossl("encrypt init");
    std::size_t len = 0;
    if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, ucp(plaintext), plaintext.size()) != 1) return ossl("encrypt");
    std::string out(len, '\0');
    if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, ucp(plaintext),
                         plaintext.size()) != 1)
        return ossl("encrypt (plaintext too long for RSA-OAEP?)");
    out.resize(len);
    return out;
}

Result<std::string> KeyObject::decrypt(std::string_view ciphertext) const {
    if (alg_ == KeyAlg::aes256) {
        if (ciphertext.size() < 28) return make_error(errc::invalid_argument, "ciphertext shorter than nonce and tag");
        auto pt = mac::aes256gcm_open(impl_->aes, mac::as_bytes(ciphertext.substr(0, 12)), {},
                                      mac::as_bytes(ciphertext.substr(12, ciphertext.size() - 28)),
                                      mac::as_bytes(ciphertext.substr(ciphertext.size() - 16)));
        if (!pt) return make_error(errc::crypto_error, "decrypt: authentication failed");
        return std::move(*pt);
    }
    if (alg_ != KeyAlg::rsa2048 && alg_ != KeyAlg::rsa3072)
        return make_error(errc::invalid_argument, std::string(key_alg_name(alg_)) + " keys cannot decrypt");
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(impl_->pkey.get(), nullptr));
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1)
        return ossl("decrypt init");
    std::size_t len = 0;
    if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ucp(ciphertext), ciphertext.size()) != 1) return ossl("decrypt");
    std::string out(len, '\0');
    if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, ucp(ciphertext),
                         ciphertext.size()) != 1) {
        ERR_clear_error();
        return make_error(errc::crypto_error, "decrypt: bad ciphertext");
    }
    out.resize(len);
    return out;
}

Result<std::string> KeyObject::wrap(const KeyObject& target) const {
    if (alg_ != KeyAlg::aes256) return make_error(errc::invalid_argument, "only an AES-256 key can wrap");
    std::string material;
    if (target.alg_ == KeyAlg::aes256) {
        material.assign(reinterpret_cast<const char*>(target.impl_->aes.data()), 32);
    } else {
        unsigned char* der = nullptr;
        const int n = i2d_PrivateKey(target.impl_->pkey.get(), &der);
        if (n <= 0) return ossl("encode private key");
        material.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
        OPENSSL_clear_free(der, static_cast<std::size_t>(n));
    }
    auto w = aes_kwp(impl_->aes, material, true);
    mac::secure_zero(material.data(), material.size());
    if (!w) return std::move(w).error();
    return std::string(1, static_cast<char>(target.alg_)) + *w;
}

Result<std::shared_ptr<KeyObject>> KeyObject::unwrap(std::string_view blob, std::uint32_t partition,
                                                     std::string label) const {
    if (alg_ != KeyAlg::aes256) return make_error(errc::invalid_argument, "only an AES-256 key can unwrap");
    if (blob.size() < 2 || blob[0] < 1 || blob[0] > 5)
        return make_error(errc::invalid_argument, "wrapped blob: unknown key algorithm byte");
    const auto alg = static_cast<KeyAlg>(blob[0]);
    auto material = aes_kwp(impl_->aes, blob.substr(1), false);
    if (!material) return std::move(material).error();
    auto impl = std::make_unique<Impl>();
    if (alg == KeyAlg::aes256) {
        if (material->size() != 32) return make_error(errc::invalid_argument, "wrapped AES key has a wrong length");
        std::copy(material->begin(), material->end(), impl->aes.begin());
    } else {
        const auto* p = reinterpret_cast<const unsigned char*>(material->data());
        impl->pkey.reset(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(material->size())));
        if (!impl->pkey) return ossl("decode unwrapped private key");
    }
    mac::secure_zero(material->data(), material->size());
    return std::shared_ptr<KeyObject>(new KeyObject(alg, partition, std::move(label), std::move(impl)));
}

}  // namespace hsmaudit::hsmcore::module
