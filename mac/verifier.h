// The offline verifier: checks segment files against the chain rules of docs/FORMAT.md and
// reports every fault with file, line and sequence number. It streams: memory stays bounded
// by the number of files and the fault cap, not by their size.
//
// Thread-safety: verify_paths() is reentrant; one call uses one thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mac/keys.h"
#include "mac/result.h"

namespace hsmaudit::mac {

enum class FaultKind : std::uint8_t {
    record_mac_mismatch,  // a record was modified, forged or inserted
    sequence_gap,         // records are missing (deleted)
    sequence_duplicate,   // a record number appears again (duplicated or inserted record)
    sequence_reordered,   // a record number goes backwards (reordered records)
    malformed_line,       // a line that is not a record, open or seal line
    torn_line,            // the file ends inside a line (torn or truncated write)
    open_mac_mismatch,    // the open line was modified
    seal_missing,         // a segment that should be sealed is not (truncated, or --require-sealed)
    seal_mismatch,        // the seal's count, range or final MAC disagree with the records
    seal_mac_mismatch,    // the seal line was modified (MAC)
    digest_mismatch,      // bytes before the seal differ from what was sealed
    bad_signature,        // the seal's Ed25519 signature does not verify
    data_after_seal,      // lines after the seal
    segment_missing,      // a whole segment (epoch) is missing
    segment_duplicate,    // an epoch appears in two files (duplicated or replayed segment)
    chain_link_broken,    // a segment does not continue the previous segment's last MAC
    foreign_chain,        // a segment of another chain
    foreign_module,       // a segment naming another module serial
    wrong_key,            // the key given does not verify this chain
    not_a_segment,        // the file does not start with an open line
    encrypted_damaged,    // an encrypted file's chunk is torn or fails authentication
};
inline constexpr std::size_t kFaultKindCount = 21;
std::string_view to_string(FaultKind kind);

struct Fault {
    FaultKind kind{};
    std::string file;
    std::uint64_t line = 0;  // 0 = the file as a whole
    std::uint64_t seq = 0;   // 0 = no sequence number applies
    std::string message;
};

struct SegmentReport {
    std::string file;
    std::string serial;
    std::uint64_t epoch = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;  // first_seq - 1 if empty
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    bool sealed = false;
    bool open_tail = false;  // the newest segment, still being written
};

struct VerifyOptions {
    std::optional<AuditKey> key;     // checks MACs (and, with its public key, seals)
    std::optional<AuditPub> pub;     // checks seals only
    bool require_sealed = false;     // the open tail segment is then a fault
    std::size_t max_faults = 10000;  // faults kept in full; all are counted
    /// Called every few MiB with (bytes done, bytes total).
    std::function<void(std::uint64_t, std::uint64_t)> progress;
};

struct VerifyReport {
    std::vector<SegmentReport> segments;  // in chain order
    std::vector<Fault> faults;            // at most max_faults, in the order found
    std::array<std::uint64_t, kFaultKindCount> fault_counts{};
    std::uint64_t faults_total = 0;
    std::string chain_hex;
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::int64_t first_time_ms = 0;
    std::int64_t last_time_ms = 0;
    std::size_t sealed_segments = 0;
    std::size_t open_segments = 0;
    bool macs_checked = false;        // an audit key was given
    bool signatures_checked = false;  // a public key was available

    [[nodiscard]] bool verified() const { return faults_total == 0; }
};

/// Verifies the segment files named by `paths` (files, or directories searched recursively for
/// *.log), plain or encrypted at rest (decrypted with the audit key). Returns an error only for
/// usage and I/O problems; integrity faults are in the report.
Result<VerifyReport> verify_paths(const std::vector<std::string>& paths, const VerifyOptions& options);

}  // namespace hsmaudit::mac
