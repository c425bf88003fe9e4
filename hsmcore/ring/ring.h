// The NVRAM audit ring: a fixed-capacity file of binary entries (entry_codec.h) that the module
// writes and the agent reads, plus a private state file holding the committed state and the chain
// head. Layout, memory ordering and the crash-safety argument: docs/ARCHITECTURE.md, "Host interface
// (hsmcore)".
//
//   D/nvram.ring   (0640) static header, a seqlock-protected "live" area of atomics, the data area
//   D/nvram.state  (0600) two checksummed state slots (positions, counters, mac::ChainHead with the
//                  epoch key): the newest valid slot is the truth after a crash
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "hsmcore/ring/entry_codec.h"
#include "hsmcore/ring/mapped_file.h"
#include "mac/chain_writer.h"

namespace hsmaudit::hsmcore::ring {

inline constexpr char kRingFile[] = "nvram.ring";
inline constexpr char kStateFile[] = "nvram.state";
inline constexpr std::uint32_t kRingVersion = 1;
inline constexpr std::size_t kHeaderBytes = 4096;
inline constexpr std::size_t kDefaultRingBytes = 16u << 20;  // file size, header included
inline constexpr std::size_t kMinRingBytes = 64u << 10;
/// Space always kept for a seal and the next open entry, even inside the reserve.
inline constexpr std::uint64_t kSealFloorBytes = 2048;

/// The module counters shown to administrators (kept in the ring so they survive restarts).
struct Counters {
    std::uint64_t op_requests = 0;
    std::uint64_t op_errors = 0;
    std::uint64_t crypto_requests = 0;
    std::uint64_t crypto_errors = 0;
    std::uint64_t critical_events = 0;
    std::uint64_t noncritical_events = 0;
    std::uint64_t refused_log_full = 0;  // operations refused because the ring was at its reserve
    std::uint64_t unlogged_events = 0;   // events that should have been logged but found no space
};

/// What the committed state holds: the newest valid state slot.
struct CommittedState {
    std::uint64_t gen = 0;
    std::uint64_t end_pos = 0;     // logical byte position after the newest entry
    std::uint64_t next_entry = 1;  // entry number the next entry gets
    std::uint64_t tail_pos = 0;    // logical position of the oldest unacknowledged entry
    std::uint64_t tail_entry = 1;  // its entry number
    std::uint64_t acked_seq = 0;   // highest record sequence number acknowledged (freed)
    std::uint32_t boot = 0;
    std::uint32_t flags = 0;  // bit 0: blocked (free space below the reserve)
    Counters counters;
    mac::ChainHead head;
};

/// A consistent snapshot of the ring's live area, as any reader sees it.
struct RingStatus {
    std::string serial;
    std::uint64_t capacity = 0;  // data bytes
    std::uint64_t reserve = 0;   // bytes below which the module blocks
    std::uint64_t used_bytes = 0;
    std::uint64_t tail_pos = 0;
    std::uint64_t end_pos = 0;
    std::uint64_t oldest_entry = 1;  // first unacknowledged entry number (== next_entry when empty)
    std::uint64_t next_entry = 1;
    std::uint64_t oldest_seq = 1;  // first unacknowledged record sequence number
    std::uint64_t next_seq = 1;    // sequence number of the next record
    std::uint64_t epoch = 0;
    std::uint32_t boot = 0;
    bool blocked = false;
    std::uint64_t writer_pid = 0;  // 0 when no module process has the ring open
    Counters counters;

    [[nodiscard]] std::uint64_t records_used() const { return next_seq - oldest_seq; }
    [[nodiscard]] std::uint64_t entries_used() const { return next_entry - oldest_entry; }
};

/// What recovery found when a writer opened the ring.
struct RecoveryReport {
    std::uint64_t slot_gen = 0;
    bool other_slot_valid = true;  // false: the other slot was torn (a crash during a commit) or blank
    std::uint64_t entries = 0;
    std::uint64_t records = 0;
    std::uint64_t opens = 0;
    std::uint64_t seals = 0;
    std::uint64_t first_entry = 0;
    std::uint64_t last_entry = 0;
    bool discarded_unpublished = false;  // a complete entry after the committed end (never reported done)
    bool discarded_torn = false;         // a partial entry after the committed end

    [[nodiscard]] std::string summary() const;
};

struct RingPaths {
    std::string ring;
    std::string state;
    static RingPaths in_dir(const std::string& dir);
};

struct RingGeometry {
    std::size_t file_bytes = kDefaultRingBytes;
    std::size_t reserve_bytes = 0;  // 0: 1/16 of the data area (at least 4 KiB)
};

struct RingOptions {
    bool sync_each_commit = false;  // msync entries and state before a commit returns (power-loss durability)
};

class RingReader;

/// The single writer of a ring (the module). Commits are atomic: entries become visible to readers
/// and durable across a kill -9 together with the state (positions, counters, chain head).
/// Thread-safety: not thread-safe; the module serialises calls. Readers in other threads or
/// processes may read concurrently (see RingReader).
class RingWriter {
public:
    /// Creates the ring and state files (they must not exist).
    static Status create(const RingPaths& paths, const RingGeometry& geometry, std::string_view serial,
                         const mac::ChainHead& head);
    /// Opens, locks (one writer per ring), checks and recovers a ring; see recovery().
    static Result<RingWriter> open(const RingPaths& paths, const RingOptions& options = {});

    RingWriter(RingWriter&&) noexcept;
    RingWriter& operator=(RingWriter&&) noexcept;
    ~RingWriter();

    [[nodiscard]] const RecoveryReport& recovery() const { return recovery_; }
    [[nodiscard]] const CommittedState& state() const { return state_; }
    [[nodiscard]] const std::string& serial() const { return serial_; }
    [[nodiscard]] std::uint64_t capacity() const { return capacity_; }
    [[nodiscard]] std::uint64_t reserve() const { return reserve_; }
    [[nodiscard]] std::uint64_t used() const { return state_.end_pos - state_.tail_pos; }
    [[nodiscard]] std::uint64_t free_bytes() const { return capacity_ - used(); }
    /// Free bytes left after appending entries of the given sizes (negative: they do not fit).
    [[nodiscard]] std::int64_t free_after(std::span<const std::size_t> sizes) const;

    /// Counters and flags are changed in memory and persisted/published by the next commit.
    Counters& counters() { return state_.counters; }
    void set_blocked(bool blocked);
    void set_boot(std::uint32_t boot) { state_.boot = boot; }

    /// Appends the encoded entries (numbered from state().next_entry on) and commits them with
    /// `head`. Fails with errc::log_full if they do not fit (nothing is written then).
    Status commit(std::span<const std::string_view> entries, const mac::ChainHead& head);
    /// Persists and publishes counters and flags without entries.
    Status commit_state();
    /// Frees every entry up to and including `entry_no`.
    Status ack_through(std::uint64_t entry_no);

    /// A reader sharing this writer's mapping (the in-process host interface).
    [[nodiscard]] RingReader reader() const;

    /// Test hook: writes raw bytes at the committed end without committing (a crash mid-append).
    void write_uncommitted_for_test(std::span<const std::uint8_t> bytes);

private:
    RingWriter() = default;
    void write_slot();
    void publish();
    Status sync_range(std::uint64_t from_pos, std::uint64_t to_pos);

    std::shared_ptr<MappedFile> ring_;
    MappedFile state_file_;
    std::string serial_;
    std::uint64_t capacity_ = 0;
    std::uint64_t reserve_ = 0;
    RingOptions options_;
    CommittedState state_;
    RecoveryReport recovery_;
};

/// A view of one entry: its parsed header and spans into the mapped ring. The spans stay valid
/// until the entry is acknowledged (after that the writer may reuse the bytes).
struct EntryView {
    RawEntry entry;
    std::uint64_t pos = 0;  // logical position in the ring
};

/// Reads entries and the live status of a ring. Thread-safety: one RingReader per thread; any
/// number of readers (threads or processes) may run concurrently with the writer.
class RingReader {
public:
    /// Maps a ring file read-only (the cross-process agent).
    static Result<RingReader> open(const std::string& ring_path);

    /// A consistent snapshot of the live area (seqlock).
    [[nodiscard]] RingStatus status() const;
    /// Appends to `out` up to `max` entries with entry_no > `after` (oldest first). Returns how many.
    /// errc::overrun if some of them were acknowledged and may have been reused meanwhile.
    Result<std::size_t> read_after(std::uint64_t after, std::size_t max, std::vector<EntryView>& out);
    [[nodiscard]] const std::string& serial() const { return serial_; }
    [[nodiscard]] std::uint64_t capacity() const { return capacity_; }

private:
    friend class RingWriter;
    RingReader(std::shared_ptr<const MappedFile> map, std::string serial, std::uint64_t capacity, std::uint64_t reserve)
        : map_(std::move(map)), serial_(std::move(serial)), capacity_(capacity), reserve_(reserve) {}
    std::shared_ptr<const MappedFile> map_;
    std::string serial_;
    std::uint64_t capacity_ = 0;
    std::uint64_t reserve_ = 0;
    std::uint64_t cursor_pos_ = 0;    // cached position of entry cursor_entry_
    std::uint64_t cursor_entry_ = 0;  // 0: no cache
};

}  // namespace hsmaudit::hsmcore::ring
