// AuditStore: the agent's durable copy of the module's audit trail, as segment files (docs/FORMAT.md),
// optionally encrypted at rest. It is the disk buffer between the module and every exporter: a
// record is acknowledged to the module only after commit() made it durable here.
//
// Layout under `dir`:
//   current/<segment>.log            the open segment (at most one)
//   ready_for_archive/<segment>.log  sealed segments, waiting to be bundled
//   position                         what is durable: two 512-byte slots, written alternately,
//                                    then (optional) two annex slots of kAnnexSlotBytes (see set_annex)
//
// Crash safety: append() writes and seals files but moves nothing the position file points to;
// commit() fsyncs the data, then writes the position slot and fsyncs it. Recovery (in open())
// trusts only the position: it cuts the open segment back to the recorded length, moves back a
// segment sealed after the last commit, and removes files created after it. Everything cut was
// never acknowledged, so the module's ring still holds it and it is drained again.
//
// Failure safety: a failed write, short write, fsync, rename or open (ENOSPC, EIO) leaves the
// store broken(): an unknown prefix of the batch may be on disk, an fsync error may have dropped
// dirty pages, and the encryption's chunk counter ran ahead. Every later append()/commit() fails
// until reopen() runs the same recovery as a restart (fresh descriptors, cut back to the durable
// length, chain and chunk state re-derived from disk) and writes the position again under a new
// generation, so nothing rests on an fsync that failed once. The caller then reads again from
// durable().entry_no: the module still holds everything after it.
//
// Thread-safety: not thread-safe; owned and driven by the drain thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/source.h"
#include "base/config/config.h"
#include "base/file_system.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "mac/chain_verifier.h"
#include "mac/encrypted_file.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

struct AuditStoreOptions {
    std::string dir;
    bool encrypt = true;  // AES-256-GCM at rest, key derived from the audit secret
    /// Every write, fsync, rename, truncate and unlink goes through it (tests inject faults).
    base::FileSystem* fs = &base::posix_file_system();
};

/// What is durable: the position the drain resumes from after a restart.
struct StorePosition {
    std::uint64_t generation = 0;
    std::uint64_t entry_no = 0;  // the last entry stored
    std::uint64_t next_seq = 1;  // the sequence number the next record will have
    bool has_end = false;        // chain end at the last seal (for link checks after a restart)
    std::uint64_t end_epoch = 0;
    std::uint64_t end_next_seq = 1;
    mac::Mac end_mac{};
    std::string current;  // the open segment's file name, "" if none
    std::uint64_t current_bytes = 0;

    /// The chain end at the last seal, as a verifier resumes from it.
    [[nodiscard]] std::optional<mac::ChainEnd> chain_end() const;
};

// ---- The position file (its one owner: the store writes it; fsck, the exporters' reader and the
// agent's status read it through these). Two slots of kPositionSlotBytes, each one text line
// "hsmaudit-position/1 gen=... sum=<16 hex>" padded with NUL bytes; generation g is written into
// slot g % 2, so a torn write leaves the other slot intact.

inline constexpr std::size_t kPositionSlotBytes = 512;
/// The annex: what the drain commits with each position (its Merkle tree, one text line). Slot
/// g % 2 at offset 2 * kPositionSlotBytes + (g % 2) * kAnnexSlotBytes holds generation g's annex:
/// "hsmaudit-annex/1 gen=<g> sum=<16 hex> <text>\n" padded with NUL bytes (sum: the first 8 bytes
/// of SHA-256 over "gen=<g> <text>"). It is written before the position slot and made durable by
/// the same fdatasync; an annex whose generation differs from the position's is ignored.
inline constexpr std::size_t kAnnexSlotBytes = 8192;

/// The position file as it is on disk, both slots (for `hsmaudit fsck`).
struct PositionFileState {
    std::array<std::optional<StorePosition>, 2> slots;  // a valid slot, or nullopt
    std::array<bool, 2> slot_empty{};                   // never written (all zero bytes, or beyond the file's end)
    std::uint64_t file_bytes = 0;
    int current = -1;  // the slot the store trusts (valid, higher generation); -1 if none
};

/// One slot's bytes (the line, padded to kPositionSlotBytes) for `p`; an error if it does not fit.
Result<std::string> position_slot_bytes(const StorePosition& p);
/// Parses the position file's bytes (`file_bytes`: its size on disk; bytes past the end read as
/// zero). The one parser: read_position_file() and the store's own recovery call it.
PositionFileState parse_position_file(std::string_view bytes, std::uint64_t file_bytes);
/// Reads <audit_dir>/position without changing anything. An error only if it cannot be read.
Result<PositionFileState> read_position_file(const std::string& audit_dir);
/// The position the store resumes from: the valid slot with the higher generation; a default
/// (empty store) position if the file is missing or was never written; an error if it is damaged.
Result<StorePosition> read_store_position(const std::string& audit_dir);
/// Replaces <audit_dir>/position atomically with one holding `p` in its generation's slot.
/// Only for a stopped store (`hsmaudit fsck --repair`).
Status write_store_position(const std::string& audit_dir, const StorePosition& p);

// ---- Crash recovery (its one owner: the store applies the plan when it opens, `hsmaudit fsck`
// reports it and, with --repair, carries it out its own way: quarantine instead of delete).

/// A file of the store's current/ or ready_for_archive/ directory, as recovery sees it.
struct StoreFileEntry {
    std::string name;
    std::uint64_t bytes = 0;
};
/// What the store's segment directories hold (the caller chooses which entries count: the store
/// every file of current/, fsck only its segment files).
struct StoreListing {
    std::vector<StoreFileEntry> current;
    std::vector<StoreFileEntry> ready;
};
/// Lists current/ and ready_for_archive/ of `audit_dir` (regular files and anything else, by
/// name; a missing directory is empty).
Result<StoreListing> list_store_files(const std::string& audit_dir);

/// What is committed and what is cut after a crash, decided from the position alone: only what
/// the position names was ever acknowledged to the module, so everything else may go (the
/// module still holds it and it is drained again).
struct RecoveryPlan {
    enum class Open {
        none,                 // the position names no open segment
        in_current,           // current/<name>, as expected
        sealed_after_commit,  // in ready_for_archive/: sealed and moved after the last commit; move it back
        missing,              // nowhere: acknowledged records are lost (damage; the store refuses to open)
    };
    Open open = Open::none;
    std::string open_name;                           // the position's open segment ("" if none)
    std::uint64_t open_bytes = 0;                    // its size on disk (when found)
    std::uint64_t committed_bytes = 0;               // its committed length (the position's current_bytes)
    std::vector<std::string> uncommitted;            // files in current/ the position does not name: created after it
    [[nodiscard]] bool short_of_committed() const {  // damage: fewer bytes than committed
        return (open == Open::in_current || open == Open::sealed_after_commit) && open_bytes < committed_bytes;
    }
    [[nodiscard]] std::uint64_t uncommitted_bytes() const {  // written after the last commit: cut them
        return (open == Open::in_current || open == Open::sealed_after_commit) && open_bytes > committed_bytes
                   ? open_bytes - committed_bytes
                   : 0;
    }
};
/// The plan for the store whose position is `p` and whose directories hold `files`.
RecoveryPlan plan_recovery(const StorePosition& p, const StoreListing& files);

/// A segment file of the store, as its readers (the exporters' reader, hsmaudit tail) see it.
struct StoredSegment {
    std::uint64_t epoch = 0;  // from the file name
    std::string name;
    std::string path;
    bool sealed_dir = false;  // in ready_for_archive/ (else current/)
};
/// The store's segment files in epoch order: ready_for_archive/ and current/, regular files whose
/// names are segment file names (mac::segment_file_epoch); a file in both (recovery moving it
/// back) is the copy in ready_for_archive/. Missing directories are empty (the store may be
/// rotating or not created yet).
std::vector<StoredSegment> list_store_segments(const std::string& audit_dir);

/// AuditStoreOptions from the store's configuration keys (agent/engine/store/store_config.cpp).
AuditStoreOptions make_store_options(const base::Config& config, const std::string& audit_dir);

class AuditStore {
public:
    /// Opens (creating if needed) and recovers a store. `key` is needed for encryption at rest.
    static Result<std::unique_ptr<AuditStore>> open(const AuditStoreOptions& options, const mac::AuditKey& key);
    ~AuditStore();
    AuditStore(const AuditStore&) = delete;
    AuditStore& operator=(const AuditStore&) = delete;

    /// Appends entries in order. They are not durable until commit(). On error the store is
    /// broken() until reopen().
    Status append(const EntryBatch& batch);
    /// Makes everything appended durable. On error the store is broken() until reopen().
    /// `before_position`, if given, runs once the data is durable and before the position (and
    /// its annex) is written: the last moment to set_annex() for this commit.
    Status commit(const std::function<void()>& before_position = {});
    /// True after a failed append() or commit(): what was appended since the last commit is
    /// in an unknown state and every append()/commit() fails until reopen() succeeds.
    [[nodiscard]] bool broken() const { return broken_; }
    /// Recovers a broken store as a restart would (see the header comment); the appended state
    /// is then the durable one. On error the store stays broken and reopen() may be tried again.
    Status reopen();

    [[nodiscard]] const StorePosition& durable() const { return durable_; }
    /// Text (one line without LF, at most kAnnexSlotBytes - 64 bytes) the next commit makes durable
    /// with the position, describing the appended state (the drain's Merkle tree). "" writes none.
    void set_annex(std::string text) { annex_ = std::move(text); }
    /// The annex committed with durable() ("" if none, or if it was lost: a repaired position file).
    [[nodiscard]] const std::string& durable_annex() const { return durable_annex_; }
    [[nodiscard]] std::uint64_t appended_entry_no() const { return pos_.entry_no; }
    /// Bytes of the open segment (written or pending), 0 if none is open.
    [[nodiscard]] std::uint64_t open_segment_bytes() const;
    /// What recovery found and did, one line per action ("" if the store was clean).
    [[nodiscard]] const std::string& recovery_summary() const { return recovery_; }
    /// Path of the open segment, "" if none.
    [[nodiscard]] std::string current_path() const;
    /// Sealed segments waiting in ready_for_archive/, in chain (file name) order.
    [[nodiscard]] Result<std::vector<std::string>> sealed_segments() const;
    [[nodiscard]] const std::string& dir() const { return options_.dir; }
    /// Total bytes of segment files in the store.
    [[nodiscard]] Result<std::uint64_t> bytes_on_disk() const;

private:
    struct OpenFile;
    AuditStore(AuditStoreOptions options, const mac::Bytes32& store_key);
    Status recover();
    Status start_segment(std::string_view open_line);
    Status flush(OpenFile& f, bool sync);
    Status finish_sealed(std::string_view seal_line);
    Status write_position(const StorePosition& p);
    Status fail(Error e);

    AuditStoreOptions options_;
    base::FileSystem& fs_;
    mac::Bytes32 store_key_{};
    UniqueFd position_fd_;
    StorePosition pos_;          // appended
    StorePosition durable_;      // committed
    std::string annex_;          // for pos_ (the next commit)
    std::string durable_annex_;  // committed with durable_
    std::unique_ptr<OpenFile> cur_;
    // Buffers kept across commits and segments (their capacity: one batch), so a batch neither
    // allocates nor page-faults fresh memory: the next segment's pending plaintext, and the
    // sealed chunks being written (chunk_ keeps its size, the largest batch's, and is never
    // zero-filled again; only its first `used` bytes of a flush are written).
    std::string spare_pending_;
    std::string chunk_;
    bool dir_dirty_ = false;
    bool broken_ = false;
    std::string recovery_;
};

}  // namespace hsmaudit::agent
