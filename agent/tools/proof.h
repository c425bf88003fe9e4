// `hsmaudit prove` and `hsmaudit verify-proof`: RFC 6962 inclusion proofs for one record and
// consistency proofs between two tree heads of a chain, in the proof file format of
// docs/FORMAT.md section 10.4, checked offline with only the chain's public key.
//
// Thread-safety: the functions run on the caller's thread and share no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mac/merkle.h"
#include "mac/note.h"

namespace hsmaudit::agent::tools {

enum class ProofKind : std::uint8_t { inclusion, consistency };

/// One proof file (docs/FORMAT.md 10.4).
struct Proof {
    ProofKind kind = ProofKind::inclusion;
    std::string origin;
    std::uint64_t old_size = 0;  // consistency: the older tree head
    mac::tlog::Hash old_root{};
    std::uint64_t size = 0;  // the tree head the proof is against (the newer one)
    mac::tlog::Hash root{};
    std::uint64_t index = 0;  // inclusion: the leaf index (record seq - 1) and the record line
    std::string leaf;
    std::vector<mac::tlog::Hash> hashes;  // the RFC 9162 proof, in order
    std::string old_checkpoint;           // the signed note of the older head ("" if none)
    std::string checkpoint;               // the signed note of the head ("" if none)

    friend bool operator==(const Proof&, const Proof&) = default;
};

inline constexpr std::size_t kMaxProofBytes = 1 << 20;  // far above any real proof (64 hashes, one record)

/// The proof file text.
std::string render_proof(const Proof& proof);
/// Strict parse of a proof file (field order, numbers, base64, sizes); bad_format if malformed.
Result<Proof> parse_proof(std::string_view text);

/// What verify-proof concluded.
struct ProofCheck {
    bool valid = false;
    std::string message;  // why not, or what was proven
};

/// Checks a proof: the hashes against the heads, each embedded checkpoint opened with `v` and
/// equal to the head it signs, and every head authenticated (embedded, or among `given`: signed
/// notes the caller holds). An inclusion leaf must be the record line with sequence index + 1.
ProofCheck check_proof(const Proof& proof, const mac::note::NoteVerifier& v, const std::vector<std::string>& given);

// ---- the commands ----

struct ProveArgs {
    std::string key_file;      // audit.key (reads the encrypted store and checks MACs)
    std::string wrapped_file;  // or a wrapped audit secret + passphrase file
    std::string pass_file;
    std::string pub_file;                   // or audit.pub (seals only)
    std::optional<std::uint64_t> seq;       // inclusion: the record's sequence number
    std::string event_id;                   // or its event id "<serial>-<boot>-<seq>"
    std::string checkpoint;                 // signed note of the head to prove against
    std::optional<std::uint64_t> size;      // or a tree size (default: the whole trail)
    std::string old_checkpoint;             // consistency: the older head as a signed note
    std::optional<std::uint64_t> old_size;  // or its size
    std::string sign_key;                   // audit.sign: sign heads that no checkpoint signs
    std::string out;                        // the proof file ("" or "-": stdout)
    std::vector<std::string> paths;         // the trail, as `hsmaudit verify` takes it
};
/// Reads and verifies the trail, builds the proof, writes it. Exit 0, 1 (the trail does not
/// verify, or does not match a checkpoint given), 2 (usage, I/O).
int run_prove(const ProveArgs& args);

struct VerifyProofArgs {
    std::string pub_file;                  // audit.pub
    std::string vkey;                      // or a note verifier key (the string, or a file holding it)
    std::vector<std::string> checkpoints;  // signed notes authenticating heads the proof does not embed
    std::string proof_file;
    bool quiet = false;
};
/// Exit 0 valid, 1 invalid (including a malformed proof), 2 usage or I/O.
int run_verify_proof(const VerifyProofArgs& args);

}  // namespace hsmaudit::agent::tools
