#include "exporters/prometheus/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <memory>

namespace hsmaudit::exporters::prometheus {
namespace {

// A valid bcrypt hash of a random password nobody knows, checked when the user does not exist.
constexpr char kDummyHash[] = "$2b$10$wQ2Z8Y4GdS3T0u1v2w3x4uGm3bq5lQ0o9e5b0W8pQzqz8o6d1r6e2";
constexpr std::size_t kMaxCached = 64;

std::string cache_key(const std::string& user, const std::string& password, const std::string& hash) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    const std::size_t ul = user.size();
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), &ul, sizeof ul) != 1 || EVP_DigestUpdate(ctx.get(), user.data(), ul) != 1 ||
        EVP_DigestUpdate(ctx.get(), hash.data(), hash.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1)
        return {};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out;
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof *data);
    // crypt_rn returns null (or a string starting with '*') on failure; compare in constant time.
    const bool ok = out != nullptr && out[0] != '*' && std::strlen(out) == hash.size() &&
                    CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
    OPENSSL_cleanse(data.get(), sizeof *data);
    return ok;
}

}  // namespace

bool BasicAuth::check(const std::string& user, const std::string& password) {
    const auto it = users_.find(user);
    if (it == users_.end()) {
        (void)bcrypt_matches(password, kDummyHash);
        return false;
    }
    const std::string key = cache_key(user, password, it->second);
    {
        std::lock_guard lock(mutex_);
        if (!key.empty() && verified_.contains(key)) return true;
    }
    if (!bcrypt_matches(password, it->second)) return false;
    std::lock_guard lock(mutex_);
    if (verified_.size() >= kMaxCached) verified_.clear();
    if (!key.empty()) verified_.insert(key);
    return true;
}

std::size_t BasicAuth::cached() const {
    std::lock_guard lock(mutex_);
    return verified_.size();
}

std::string bcrypt_hash(const std::string& password, int cost) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, salt, sizeof salt) == nullptr) return {};
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(password.c_str(), salt, data.get(), sizeof *data);
    std::string h = out != nullptr && out[0] != '*' ? out : "";
    OPENSSL_cleanse(data.get(), sizeof *data);
    return h;
}

}  // namespace hsmaudit::exporters::prometheus
