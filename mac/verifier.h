// The offline verifier: checks segment files against the chain rules of docs/FORMAT.md and
// reports every fault with file, line and sequence number. It streams: memory stays bounded
// by the number of files and the fault cap, not by their size.
//
// Thread-safety: verify_paths() is reentrant. With VerifyOptions::jobs > 1 one call starts that
// many worker threads, joined before it returns; every callback of VerifyOptions (progress,
// containers, on_record_line) is still called on the calling thread only.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/line_reader.h"
#include "base/result.h"
#include "mac/checkpoint.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

enum class FaultKind : std::uint8_t {
    record_mac_mismatch,    // a record was modified, forged or inserted
    sequence_gap,           // records are missing (deleted)
    sequence_duplicate,     // a record number appears again (duplicated or inserted record)
    sequence_reordered,     // a record number goes backwards (reordered records)
    malformed_line,         // a line that is not a record, open or seal line
    torn_line,              // the file ends inside a line (torn or truncated write)
    open_mac_mismatch,      // the open line was modified
    seal_missing,           // a segment that should be sealed is not (truncated, or --require-sealed)
    seal_mismatch,          // the seal's count, range or final MAC disagree with the records
    seal_mac_mismatch,      // the seal line was modified (MAC)
    digest_mismatch,        // bytes before the seal differ from what was sealed
    bad_signature,          // the seal's Ed25519 signature does not verify
    data_after_seal,        // lines after the seal
    segment_missing,        // a whole segment (epoch) is missing
    segment_duplicate,      // an epoch appears in two files (duplicated or replayed segment)
    chain_link_broken,      // a segment does not continue the previous segment's last MAC
    foreign_chain,          // a segment of another chain
    foreign_module,         // a segment naming another module serial
    wrong_key,              // the key given does not verify this chain
    not_a_segment,          // the file does not start with an open line
    encrypted_damaged,      // an encrypted file's chunk is torn or fails authentication
    archive_damaged,        // an archive (or one of its members) cannot be read back in full
    anchor_bad_signature,   // a checkpoint of this chain given with --anchors whose signature does not verify
    anchor_mismatch,        // the trail's record at a checkpoint's sequence has another MAC
    trail_truncated,        // a checkpoint proves records beyond the trail's end (truncated or rolled back)
    epoch_out_of_range,     // an epoch too far beyond the chain's (chain_verifier.h kMaxEpochStep): not verified
    anchor_record_missing,  // a checkpoint's record lies in a range the trail lacks (deleted records or segments)
    trail_head_missing,     // the trail starts after the first record a v=2 checkpoint says the store retained
    malformed_record,       // a record line whose fields break the syntax of FORMAT.md 2.1, 2.2, 2.5
    unreadable_path,        // a file or directory of the trail that could not be read (link, permission, type)
};
inline constexpr std::size_t kFaultKindCount = 30;
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
    bool open_tail = false;      // the newest segment, still being written
    bool authenticated = false;  // its records' bytes were proven (MACs, or digest and signature)
};

/// A segment inside a container (a tar archive of segments): its name there, its size, and how
/// to read its bytes as stored (encrypted at rest or not; the verifier decrypts as for files).
struct ContainerMember {
    std::string name;
    std::uint64_t size = 0;
    /// Opens the member. A container may allow one open member at a time: opening another
    /// ends the previous one (the verifier reads members one after the other).
    std::function<Result<std::unique_ptr<base::ByteSource>>()> open;
};

/// What a container holds: its segment members in container order, and, if it could not be read
/// to its end, why (the members listed before the damage are still verified).
struct ContainerContents {
    std::vector<ContainerMember> members;
    std::optional<std::string> damage;
};

/// The hook through which the verifier reads segments inside archives. mac/ knows no archive
/// format; the agent implements this with libarchive (agent/engine/store/archiver.h) and the CLI passes it.
/// A member whose bytes end early reports it through its base::ByteSource's damage() (an
/// archive_damaged fault).
///
/// Thread-safety: used by one verify_paths() call at a time.
class ContainerExpander {
public:
    virtual ~ContainerExpander() = default;
    /// True if `path` names a container this expander reads (decided by its name: ".tar", ".tgz").
    [[nodiscard]] virtual bool handles(const std::string& path) const = 0;
    /// Lists the segment members of the container. An error only if it cannot be opened at all.
    virtual Result<ContainerContents> expand(const std::string& path) const = 0;
};

/// How a member is named in reports: "<container>(<member>)", as ar(1) and make name members.
std::string container_member_name(std::string_view container, std::string_view member);

struct VerifyOptions {
    std::optional<AuditKey> key;     // checks MACs (and, with its public key, seals)
    std::optional<AuditPub> pub;     // checks seals only
    bool require_sealed = false;     // the open tail segment is then a fault
    std::size_t max_faults = 10000;  // faults kept in full; all are counted
    /// Called every few MiB with (bytes done, bytes total).
    std::function<void(std::uint64_t, std::uint64_t)> progress;
    /// Reads archives given (or found in directories) alongside segment files; nullptr: none.
    /// Must outlive the verify_paths() call.
    const ContainerExpander* containers = nullptr;
    /// Chain-head checkpoints held off the box (mac/checkpoint.h): the trail must contain each
    /// checkpoint's record with the checkpoint's MAC, and must reach the newest one.
    std::vector<Checkpoint> anchors;
    /// Lines of the anchor files that held no checkpoint (mac/anchors.h load_anchor_files).
    std::uint64_t anchors_skipped = 0;
    /// Lists the checkpoints of other chains found among the anchors, per chain (--all-chains);
    /// they are counted either way and never checked against this trail.
    bool all_chains = false;
    /// The chain the trail must be of (`--chain`): segments of any other chain are faults, and a
    /// key of another chain verifies nothing (wrong_key). nullopt: the key's chain.
    std::optional<ChainId> expect_chain;
    /// The module serial every segment must name (`--serial`): others are foreign_module.
    std::optional<std::string> expect_serial;
    /// Called with every complete record line (without LF), in chain order, as it is read (it may
    /// still be found faulty: act on it only if the report is clean). `hsmaudit prove` builds its
    /// Merkle leaves (docs/FORMAT.md section 10) from these.
    std::function<void(std::string_view line)> on_record_line;
    /// Threads verifying segment files at once (`hsmaudit verify --jobs`). 1: the calling thread
    /// alone, segment after segment. More: segments are verified by a pool of that many threads,
    /// at most 2 * jobs segments in flight, and their results merged in chain order, so the report
    /// is the one a single thread gives, byte for byte (the links between segments are checked
    /// in order as they are merged). Members of containers are read on the calling thread (a
    /// container reads its members through one sequential reader). With on_record_line set the
    /// call runs as with 1 (records are handed over in chain order as they are read).
    unsigned jobs = 1;
};

/// The checkpoints of another chain among the anchors (VerifyOptions::all_chains).
struct AnchorChain {
    std::string chain_hex;
    std::string serial;  // of its newest checkpoint, escaped as in the line (no control byte, no space)
    std::uint64_t checkpoints = 0;
    std::uint64_t newest_seq = 0;
    std::int64_t newest_time_ms = 0;
};

/// A file holding exactly the bytes of another file of the same epoch (a copy, counted once).
struct IdenticalCopy {
    std::string file;
    std::string same_as;  // the file verified in its place
};

struct VerifyReport {
    std::vector<SegmentReport> segments;  // in chain order
    std::vector<Fault> faults;            // at most max_faults, in the order found
    std::array<std::uint64_t, kFaultKindCount> fault_counts{};
    std::uint64_t faults_total = 0;
    std::string chain_hex;
    std::string serial;  // the pinned serial, else the first segment's ("" if none was read)
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::int64_t first_time_ms = 0;
    std::int64_t last_time_ms = 0;
    std::size_t sealed_segments = 0;
    std::size_t open_segments = 0;
    bool macs_checked = false;               // an audit key was given
    bool signatures_checked = false;         // a public key was available
    std::size_t anchors_checked = 0;         // checkpoints matched against a record of the trail
    std::uint64_t anchors_skipped = 0;       // lines of the anchor files without a checkpoint
    std::uint64_t anchors_other_chains = 0;  // checkpoints of other chains, ignored
    std::uint64_t anchors_unchecked = 0;     // valid checkpoints before the trail and before `retained`
    std::uint64_t retained_seq = 0;          // `retained` of the newest valid v=2 checkpoint of this chain (0: none)
    std::vector<AnchorChain> anchor_chains;  // with VerifyOptions::all_chains, in chain id order
    /// Records read whose bytes nothing authenticated: the open tail's, without the audit secret.
    std::uint64_t unproven_records = 0;
    /// Files of one epoch with the same bytes as the file verified for it (not faults).
    std::vector<IdenticalCopy> identical_copies;

    /// No fault. Records may still be unproven (see proven()).
    [[nodiscard]] bool verified() const { return faults_total == 0; }
    /// No fault and every record read authenticated.
    [[nodiscard]] bool proven() const { return verified() && unproven_records == 0; }
};

/// Verifies the segment files named by `paths` (files, or directories searched recursively for
/// *.log), plain or encrypted at rest (decrypted with the audit key). In directories, symbolic
/// links to directories are not followed; a link, file or directory that cannot be read, and a
/// *.log that is not a regular file (never opened), is an `unreadable_path` fault. A path given
/// that does not exist, cannot be resolved or is neither a regular file nor a directory is an
/// error. With options.containers,
/// archives among them (or in the directories) are opened and their segments ordered by chain with
/// the others; a fault in a member names "<archive>(<member>)". Returns an error only for
/// usage and I/O problems; integrity faults are in the report.
Result<VerifyReport> verify_paths(const std::vector<std::string>& paths, const VerifyOptions& options);

}  // namespace hsmaudit::mac
