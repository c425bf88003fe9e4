// Chain-head checkpoints (docs/FORMAT.md, "Checkpoints"): the module's signed statement that its
// chain reached record `seq` with MAC `mac`. Copies held off the box (a SIEM, Kafka) prove later
// that a trail was not truncated or rolled back: `hsmaudit verify --anchors FILE`.
//
//   @checkpoint v=1 chain=<32 hex> serial=<s> epoch=<e> seq=<n> time=<time> mac=<64 hex> sig=<128 hex>
//
// The Ed25519 signature (the module's audit signing key) covers the line's bytes before " sig=".
// seq 0 (no record yet) carries 32 zero bytes as its MAC.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mac/crypto.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

struct Checkpoint {
    ChainId chain{};
    std::string serial;
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    std::int64_t time_ms = 0;
    Mac mac{};
    Ed25519Signature sig{};

    /// The bytes the signature covers.
    [[nodiscard]] std::string signed_body() const;
    /// The whole line, without LF.
    [[nodiscard]] std::string line() const;
    /// True if `pub` signed it.
    [[nodiscard]] bool verify(const Ed25519PublicKey& pub) const;
};

/// Builds and signs a checkpoint.
Result<Checkpoint> make_checkpoint(const ChainId& chain, std::string serial, std::uint64_t epoch, std::uint64_t seq,
                                   std::int64_t time_ms, const Mac& mac, const Ed25519PrivateKey& signer);
/// Parses a checkpoint line (without LF); strict.
Result<Checkpoint> parse_checkpoint_line(std::string_view line);
/// Reads every checkpoint line of a file (other lines, such as JSON wrappers around them, are
/// searched for an embedded "@checkpoint " line); errors name the file and line.
Result<std::vector<Checkpoint>> read_checkpoints(const std::string& path);

}  // namespace hsmaudit::mac
