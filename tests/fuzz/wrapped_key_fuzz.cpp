// libFuzzer target for the wrapped audit secret (unwrap_audit_key) and the key file parsers.
//
// scrypt cost is bounded so an input stays fast: a blob whose parameters the unwrapper would
// accept but that costs more than N*r*p = 2^14 is skipped. Parameters beyond the accepted
// bounds are still fed in: the unwrapper must refuse them before any work.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mac/keys.h"
#include "mac/record.h"
#include "mac/wrap.h"
#include "tests/fuzz/fuzz_keys.h"

namespace {

using namespace hsmaudit;

constexpr std::uint64_t kMaxAcceptedN = 1ULL << 22;  // mac/wrap.cpp's bound
constexpr std::uint64_t kBudget = 1ULL << 14;        // N * r * p the fuzzer will pay for

/// Largest value of any "name: digits" line (0 if none parse as the unwrapper would).
std::uint64_t max_field(std::string_view blob, std::string_view name) {
    std::uint64_t best = 0;
    std::size_t pos = 0;
    while (pos <= blob.size()) {
        const auto nl = blob.find('\n', pos);
        const std::string_view line =
            blob.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.size() > name.size() + 2 && line.substr(0, name.size()) == name &&
            line.substr(name.size(), 2) == ": ") {
            std::uint64_t v = 0;
            if (mac::parse_u64(line.substr(name.size() + 2), v) && v > best) best = v;
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return best;
}

bool too_expensive(std::string_view blob) {
    const std::uint64_t n = max_field(blob, "n");
    const std::uint64_t r = max_field(blob, "r");
    const std::uint64_t p = max_field(blob, "p");
    if (n > kMaxAcceptedN || r > 32 || p > 16) return false;  // refused by the parser, cheaply
    return n * std::max<std::uint64_t>(r, 1) * std::max<std::uint64_t>(p, 1) > kBudget;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    (void)mac::AuditKey::parse(input);
    (void)mac::AuditPub::parse(input);
    if (too_expensive(input)) return 0;
    auto key = mac::unwrap_audit_key(input, fuzz::kPassphrase);
    if (key) {
        // Whatever unwraps must be a consistent key: its chain id belongs to its public key.
        if (mac::chain_id_of(key->pubkey()) != key->chain()) std::abort();
    }
    return 0;
}
