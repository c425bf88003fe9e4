// AuditStore: the agent's durable copy of the module's audit trail, as segment files (docs/FORMAT.md),
// optionally encrypted at rest. It is the disk buffer between the module and every exporter: a
// record is acknowledged to the module only after commit() made it durable here.
//
// Layout under `dir`:
//   current/<segment>.log            the open segment (at most one)
//   ready_for_archive/<segment>.log  sealed segments, waiting to be bundled
//   position                         what is durable: two 512-byte slots, written alternately
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
#include <memory>
#include <optional>
#include <string>
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

/// The position file as it is on disk, both slots (for `hsmaudit fsck`).
struct PositionFileState {
    std::array<std::optional<StorePosition>, 2> slots;  // a valid slot, or nullopt
    std::array<bool, 2> slot_empty{};                   // never written (all zero bytes, or beyond the file's end)
    std::uint64_t file_bytes = 0;
    int current = -1;  // the slot the store trusts (valid, higher generation); -1 if none
};

/// Reads <audit_dir>/position without changing anything. An error only if it cannot be read.
Result<PositionFileState> read_position_file(const std::string& audit_dir);
/// The position the store resumes from: the valid slot with the higher generation; a default
/// (empty store) position if the file is missing or was never written; an error if it is damaged.
Result<StorePosition> read_store_position(const std::string& audit_dir);
/// Replaces <audit_dir>/position atomically with one holding `p` in its generation's slot.
/// Only for a stopped store (`hsmaudit fsck --repair`).
Status write_store_position(const std::string& audit_dir, const StorePosition& p);

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
    Status commit();
    /// True after a failed append() or commit(): what was appended since the last commit is
    /// in an unknown state and every append()/commit() fails until reopen() succeeds.
    [[nodiscard]] bool broken() const { return broken_; }
    /// Recovers a broken store as a restart would (see the header comment); the appended state
    /// is then the durable one. On error the store stays broken and reopen() may be tried again.
    Status reopen();

    [[nodiscard]] const StorePosition& durable() const { return durable_; }
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
    AuditStore(AuditStoreOptions options, const mac::AuditKey& key);
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
    StorePosition pos_;      // appended
    StorePosition durable_;  // committed
    std::unique_ptr<OpenFile> cur_;
    bool dir_dirty_ = false;
    bool broken_ = false;
    std::string recovery_;
};

}  // namespace hsmaudit::agent
