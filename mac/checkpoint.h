// Chain-head checkpoints (docs/FORMAT.md, "Checkpoints"): the module's signed statement that its
// chain reached record `seq` with MAC `mac`. Copies held off the box (a SIEM, Kafka) prove later
// that a trail was not truncated or rolled back: `hsmaudit verify --anchors FILE`.
//
//   @checkpoint v=1 chain=<32 hex> serial=<s> epoch=<e> seq=<n> time=<time> mac=<64 hex> sig=<128 hex>
//   @checkpoint v=2 chain=<32 hex> serial=<s> epoch=<e> seq=<n> retained=<r> time=<time> mac=<64 hex> sig=<128 hex>
//
// The Ed25519 signature (the module's audit signing key) covers the line's bytes before " sig=".
// seq 0 (no record yet) carries 32 zero bytes as its MAC. Version 2 also states `retained`, the
// first sequence number the agent's store still held (1 <= retained <= seq + 1; seq + 1: none),
// so that deleting the oldest segments is detectable.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <optional>
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
    std::uint32_t version = 1;   // 1 or 2
    std::uint64_t retained = 0;  // version 2: the first sequence number the store held (0 in version 1)

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
/// Builds and signs a version 2 checkpoint stating `retained` (1 .. seq + 1, else an error).
Result<Checkpoint> make_checkpoint(const ChainId& chain, std::string serial, std::uint64_t epoch, std::uint64_t seq,
                                   std::uint64_t retained, std::int64_t time_ms, const Mac& mac,
                                   const Ed25519PrivateKey& signer);
/// Parses a checkpoint line (without LF) of version 1 or 2; strict.
Result<Checkpoint> parse_checkpoint_line(std::string_view line);
/// Finds a checkpoint inside `text` (a line of a file, possibly a SIEM record wrapping one): the
/// first `@checkpoint ` that starts a valid checkpoint line, which ends after its signature's 128
/// hex digits. nullopt if there is none.
std::optional<Checkpoint> find_checkpoint(std::string_view text);

/// The checkpoints of a file and how many of its lines held none.
struct CheckpointFile {
    std::vector<Checkpoint> checkpoints;
    std::uint64_t lines = 0;    // lines read
    std::uint64_t skipped = 0;  // non-empty lines without a valid checkpoint (find_checkpoint)
};
/// Reads every checkpoint of a file (find_checkpoint on each line); other lines are skipped and
/// counted. An error only if the file cannot be read.
Result<CheckpointFile> read_checkpoints(const std::string& path);

}  // namespace hsmaudit::mac
