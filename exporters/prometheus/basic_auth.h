// HTTP basic authentication against bcrypt hashes, as exporter-toolkit's basic_auth_users.
//
// bcrypt is slow on purpose (cost 10 is ~50-100 ms), and Prometheus scrapes every few seconds
// with the same credentials, so a successful check is cached: the cache key is a SHA-256 of
// user, password and hash, never the password itself. An unknown user still costs one bcrypt
// computation (against a fixed dummy hash), so timing does not tell which users exist.
//
// Thread-safety: check() from any thread (the HTTP server's workers); the cache has a mutex.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>

namespace hsmaudit::exporters::prometheus {

class BasicAuth {
public:
    explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}
    /// True if `password` matches the user's bcrypt hash (libxcrypt's crypt_rn).
    bool check(const std::string& user, const std::string& password);
    [[nodiscard]] std::size_t cached() const;

private:
    std::map<std::string, std::string> users_;
    mutable std::mutex mutex_;
    std::set<std::string> verified_;  // SHA-256 hex of user, password and hash
};

/// A bcrypt hash of `password` with `cost` (tests and documentation; libxcrypt's $2b$).
std::string bcrypt_hash(const std::string& password, int cost);

}  // namespace hsmaudit::exporters::prometheus
