// The raw HMAC-SHA256 reference of bench/side_by_side/verify_side_by_side.py: reads the same
// segment files `hsmaudit verify` reads (1 MiB read() buffer, page cache) and computes one
// HMAC(K, body_i || MAC_{i-1}) per record line; nothing else (no MAC comparison, no parsing, no
// seals, no key evolution).
//
// The HMAC is the fastest honest way through OpenSSL (issue 18): mac::HmacSha256, whose key's
// inner and outer pad blocks are hashed once and each message starts from a copy of those two
// SHA-256 states (OpenSSL's SHA256_CTX with SHA-NI): the message's blocks plus one outer block,
// no allocation. `--impl evp` is the reference as it was before issue 18: one EVP_MAC "HMAC"
// context keyed once and re-initialised per message (EVP_MAC_init with a null key), which in
// OpenSSL 3.0 duplicates two provider digest contexts (malloc + free) per message.
//
//   hsmaudit_hmac_lines [--impl pads|evp] --key audit.key PATH...   (files or directories of *.log segments)
//
// Prints one line of JSON: impl, records, bytes, cpu_seconds (process CPU), wall_seconds, records_per_s.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "mac/crypto.h"
#include "mac/keys.h"

namespace {

using namespace hsmaudit;
namespace fs = std::filesystem;

constexpr std::size_t kBuffer = 1 << 20;
constexpr std::size_t kMacField = 69;  // " mac=" + 64 hex digits

double process_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The pre-issue-18 reference: EVP_MAC keyed once, re-initialised per message.
class EvpHmac {
public:
    explicit EvpHmac(mac::ByteView key) {
        EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        ctx_ = m != nullptr ? EVP_MAC_CTX_new(m) : nullptr;
        EVP_MAC_free(m);
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
        ok_ = ctx_ != nullptr && EVP_MAC_init(ctx_, key.data(), key.size(), params) == 1;
    }
    ~EvpHmac() { EVP_MAC_CTX_free(ctx_); }
    EvpHmac(const EvpHmac&) = delete;
    EvpHmac& operator=(const EvpHmac&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }
    mac::Bytes32 compute(mac::ByteView a, mac::ByteView b) {
        mac::Bytes32 out{};
        std::size_t len = 0;
        if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1 || EVP_MAC_update(ctx_, a.data(), a.size()) != 1 ||
            EVP_MAC_update(ctx_, b.data(), b.size()) != 1 || EVP_MAC_final(ctx_, out.data(), &len, out.size()) != 1)
            out.fill(0);
        return out;
    }

private:
    EVP_MAC_CTX* ctx_ = nullptr;
    bool ok_ = false;
};

struct Totals {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    mac::Mac prev{};
};

template <typename Hmac>
bool hmac_file(const std::string& path, Hmac& h, std::vector<char>& buf, Totals& t) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)std::fprintf(stderr, "%s: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    std::size_t have = 0;  // bytes of an unfinished line at the start of buf
    for (;;) {
        const ssize_t n = ::read(fd, buf.data() + have, buf.size() - have);
        if (n < 0) {
            (void)std::fprintf(stderr, "%s: %s\n", path.c_str(), std::strerror(errno));
            ::close(fd);
            return false;
        }
        if (n == 0) break;
        t.bytes += static_cast<std::uint64_t>(n);
        const char* p = buf.data();
        const char* end = buf.data() + have + static_cast<std::size_t>(n);
        while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) {
            const std::string_view line(p, static_cast<std::size_t>(nl - p));
            if (!line.empty() && line[0] >= '0' && line[0] <= '9' && line.size() > kMacField) {
                t.prev = h.compute(mac::as_bytes(line.substr(0, line.size() - kMacField)), t.prev);
                ++t.records;
            }
            p = nl + 1;
        }
        have = static_cast<std::size_t>(end - p);
        std::memmove(buf.data(), p, have);
    }
    ::close(fd);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string key_path;
    std::string impl = "pads";
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--key" && i + 1 < argc) {
            key_path = argv[++i];
        } else if (a == "--impl" && i + 1 < argc) {
            impl = argv[++i];
            if (impl != "pads" && impl != "evp") {
                (void)std::fprintf(stderr, "--impl takes pads or evp\n");
                return 2;
            }
        } else if (a == "-h" || a == "--help") {
            std::printf("usage: %s [--impl pads|evp] --key audit.key PATH...\n", argv[0]);
            return 0;
        } else if (fs::is_directory(argv[i])) {
            std::vector<std::string> in_dir;
            for (const auto& e : fs::directory_iterator(argv[i]))
                if (e.is_regular_file() && e.path().extension() == ".log") in_dir.push_back(e.path().string());
            std::sort(in_dir.begin(), in_dir.end());
            files.insert(files.end(), in_dir.begin(), in_dir.end());
        } else {
            files.emplace_back(argv[i]);
        }
    }
    if (key_path.empty() || files.empty()) {
        (void)std::fprintf(stderr, "usage: %s --key audit.key PATH...\n", argv[0]);
        return 2;
    }
    auto key = mac::load_audit_key(key_path);
    if (!key) {
        (void)std::fprintf(stderr, "%s: %s\n", key_path.c_str(), key.error().message.c_str());
        return 2;
    }
    auto h = mac::HmacSha256::create(key->secret());
    EvpHmac evp(key->secret());
    if (!h || !evp.ok()) return 2;
    std::vector<char> buf(kBuffer);
    Totals t;
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    for (const auto& f : files)
        if (!(impl == "evp" ? hmac_file(f, evp, buf, t) : hmac_file(f, *h, buf, t))) return 2;
    const double cpu = process_cpu_seconds() - c0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    std::printf(
        "{\"impl\": \"%s\", \"records\": %llu, \"bytes\": %llu, \"cpu_seconds\": %.6f, \"wall_seconds\": %.6f, "
        "\"records_per_s\": %.0f, \"last_mac_byte\": %u}\n",
        impl.c_str(), static_cast<unsigned long long>(t.records), static_cast<unsigned long long>(t.bytes), cpu, wall,
        static_cast<double>(t.records) / cpu, static_cast<unsigned>(t.prev[0]));
    return 0;
}
