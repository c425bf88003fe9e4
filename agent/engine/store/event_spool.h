// EventSpool: a durable, hash-chained spool of event lines (the appliance's syslog stream), with
// its own quota: when full, the oldest segment files are deleted first, as the appliance does
// with its syslog folder. Unlike the audit trail it carries no MACs from the module; the hash
// chain lets anyone check that the spooled lines were not edited, reordered or cut in the middle.
//
// Files under `dir`: spool-<16 hex digits of the first line number>.log, each starting with
//   @spool v=1 name=<name> first=<n> prev=<64 hex>
// and then lines `<n> <time> <payload> h=<64 hex>`, where h_n = SHA-256(h_(n-1) || the line's
// bytes before " h=") and h_0 = SHA-256("hsmaudit/v1/spool/" || name). `prev` is h of the line
// before the segment. docs/FORMAT.md, "Event spool".
//
// Failures (issue 13): a line is numbered and hashed once, when it leaves the queue, and kept
// (as the exact bytes) until an fdatasync has made it durable. After any failed write, fsync,
// create or directory sync the spool is broken: the writer cuts the segment back to its durable
// length and re-opens it through recover(), the path open() takes at start, then writes the kept
// lines again, byte for byte (a reader that saw part of them reads the same bytes again), in
// order, exactly once. While broken it takes nothing more from the queue (which stays bounded:
// pushes beyond it are dropped and counted) and the writer thread backs off.
//
// Memory (issue 17): what the spool holds (queued lines and lines taken but not yet durable) is
// bounded in bytes (`queue_max_bytes`) as well as in lines. At that bound the spool is "full":
// has_room() turns false and room_fd() unreadable, and the TCP listeners stop reading (the kernel's
// window closes and the senders slow down) until it has drained to 3/4 of the bound; datagram
// listeners drop and count. push() itself never waits: it takes a line over the bound (a listener
// finishes the frames of the read it is in), and drops only beyond twice the bound or the line
// count, for a source that does not watch has_room().
//
// Thread-safety: push(), has_room(), room_fd() and stats() from any thread (a bounded queue; push
// never blocks); flush() from one thread at a time (the writer thread, or a test without one);
// stop() from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/api/notice_limiter.h"
#include "base/config/config.h"
#include "base/file_system.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "mac/crypto.h"

namespace hsmaudit::agent {

// ---- The spool's on-disk format (its one owner: the writer, check_spool and the exporters'
// reader, agent/engine/export/store_source.cpp, all go through these).

/// spool-<16 lowercase hex digits of the first line number>.log
std::string spool_file_name(std::uint64_t first_line);
/// The first line number in a spool file name; nullopt for any other name (wrong prefix or
/// suffix, not exactly 16 lowercase hex digits).
std::optional<std::uint64_t> parse_spool_file_name(std::string_view name);

/// A spool file's first line: "@spool v=1 name=<name> first=<n> prev=<64 hex>".
std::string spool_header_line(std::string_view name, std::uint64_t first_line, const mac::Bytes32& prev);
/// True for a line that is a spool header (valid or not): "@spool ...".
bool is_spool_header(std::string_view line);
struct SpoolHeader {
    std::uint64_t first_line = 0;
    mac::Bytes32 prev{};
};
/// Parses a header line (without LF); nullopt if it is not a valid one.
std::optional<SpoolHeader> parse_spool_header(std::string_view line);

/// What a spool line holds besides its payload: "<n> " (at most 20 digits), "<time> " (the
/// agent's time format, about 30), " h=<64 hex>" and LF; rounded up. A reader takes lines of the
/// payload's bound plus this.
inline constexpr std::size_t kSpoolLineOverheadBytes = 256;

/// A spool line "<n> <time> <payload> h=<64 hex>" (without LF), split into its fields. Lenient:
/// a line that starts with a number is split even if its other fields are missing or damaged;
/// `h` says whether the chain hash parsed (check_spool insists on it, the reader does not).
struct SpoolLineView {
    std::uint64_t number = 0;
    std::string_view time;     // the second field ("" if none)
    std::string_view payload;  // after the time, before its " h=" ("" if none)
    std::string_view hashed;   // what h covers: the line before " h=" (valid when h is set)
    std::optional<mac::Bytes32> h;
};
/// nullopt if the line does not start with "<decimal number> ".
std::optional<SpoolLineView> parse_spool_line(std::string_view line);

struct SpoolOptions {
    std::string dir;
    std::string name = "syslog";
    std::uint64_t segment_max_bytes = 16ULL << 20;
    std::uint64_t quota_bytes = 9'700'000'000ULL;  // the appliance's 9.7 GB syslog folder
    std::size_t queue_max = 65536;
    /// Bytes the spool may hold (queued and not yet durable, each line counted as its payload plus
    /// kLineOverhead): the bound of the backpressure; twice it, pushes are dropped.
    std::uint64_t queue_max_bytes = 16ULL << 20;
    std::chrono::milliseconds flush_interval{100};
    /// While writes fail the writer retries after flush_interval, doubling up to this.
    std::chrono::milliseconds retry_max{5000};
    /// Where the spool's own alerts go (if null they are only logged): spool.write_failed and
    /// spool.dropped (critical; at most once per `notify_interval` each, with counts, so a full
    /// disk does not flood), spool.recovered (info), spool.writer_stopped (critical). Called from
    /// the writer without the queue's lock held; it must outlive the spool.
    AlertSink* alerts = nullptr;
    std::chrono::milliseconds notify_interval{60'000};
    /// Every write, fsync, create, truncate and unlink of the spool goes through this.
    base::FileSystem* fs = &base::posix_file_system();
    /// Called after a flush made new lines durable (the writer's thread, the write lock held; it
    /// must not call back into the spool): the export runners' wake-up, as after the drain's
    /// commits (agent/api/doorbell.h). Once per flush, never per line. Must outlive the spool.
    std::function<void()> on_durable;
};

struct SpoolStats {
    std::uint64_t appended = 0;          // lines durable in the spool
    std::uint64_t dropped = 0;           // lines refused because the queue was full
    std::uint64_t deleted_segments = 0;  // segment files removed by the quota
    std::uint64_t write_errors = 0;      // failed writes, fsyncs, creates (each breaks the spool)
    std::uint64_t recoveries = 0;        // times the spool was re-opened after a failure
    std::uint64_t waiting = 0;           // lines numbered but not yet durable (kept for the retry)
    std::uint64_t next_line = 1;         // the next line number to become durable
    std::uint64_t held_bytes = 0;        // bytes held: queued plus not yet durable (SpoolOptions::queue_max_bytes)
    std::uint64_t full_spells = 0;       // times the spool became full (its sources were held back)
    bool full = false;                   // the spool is full now: TCP is not read, datagrams are dropped
    bool broken = false;                 // the last write failed; the writer is recovering
    std::string last_error;
};

/// SpoolOptions from the syslog keys (agent/engine/store/spool_config.cpp).
SpoolOptions make_spool_options(const base::Config& config, const std::string& dir);

class EventSpool {
public:
    static Result<std::unique_ptr<EventSpool>> open(SpoolOptions options, std::int64_t (*now_ms)());
    ~EventSpool();
    EventSpool(const EventSpool&) = delete;
    EventSpool& operator=(const EventSpool&) = delete;

    /// What one line costs against queue_max_bytes besides its payload (the number, time and hash
    /// it gets, the string and queue overhead).
    static constexpr std::uint64_t kLineOverhead = 128;

    /// Queues one payload (one line of text, no LF; it is escaped if it holds one). Never waits.
    /// False if the spool holds queue_max lines or twice queue_max_bytes: the line is counted as
    /// dropped (a source that honours has_room() never gets there).
    bool push(std::string payload);
    /// False while the spool is full (it holds queue_max_bytes; true again at 3/4 of it): sources
    /// that can wait (TCP, files) stop reading, datagram sources drop and count.
    [[nodiscard]] bool has_room() const noexcept { return !full_.load(std::memory_order_acquire); }
    /// An eventfd that is readable exactly while has_room() is true (level-triggered): a source
    /// held back polls it with its other descriptors. Never read it; valid until the spool goes.
    [[nodiscard]] int room_fd() const noexcept { return room_.get(); }
    /// Starts the writer thread.
    void start();
    /// Writes what is queued, fsyncs, and joins the writer.
    void stop();
    /// Makes everything queued now durable (the writer thread's work; also for tests without a
    /// thread). On success every line pushed before the call is durable. On failure the spool is
    /// broken and keeps the lines; the next flush recovers and writes them first.
    Status flush();

    [[nodiscard]] SpoolStats stats() const;

private:
    struct Pending {
        std::string text;        // the whole line with its LF
        mac::Bytes32 head;       // h of this line
        std::uint64_t cost = 0;  // what it counts against queue_max_bytes (its payload's cost)
    };

    EventSpool(SpoolOptions options, std::int64_t (*now_ms)());
    Status recover();
    Status reopen();
    Status write_pending();
    Status sync_current();
    Status open_segment();
    Status write_header();
    void enforce_quota();
    Status fail(Error e);
    bool notice_due(std::size_t kind);
    void notify(std::string_view kind, const std::string& message, Severity severity);
    void report_drops();
    void release(std::uint64_t bytes);         // with mutex_ held: lines left the spool's hands
    [[nodiscard]] bool writer_wanted() const;  // with mutex_ held: the queue is half the bound
    void writer_loop(const std::stop_token& stop);

    SpoolOptions options_;
    base::FileSystem& fs_;
    std::int64_t (*now_ms_)();
    mac::Sha256 sha_;

    // Writer state (flush() callers serialise on write_mutex_).
    std::mutex write_mutex_;
    mac::Bytes32 head_{};          // h of the last line on disk (durable or not)
    std::uint64_t next_line_ = 1;  // the number of the next line on disk
    mac::Bytes32 durable_head_{};
    std::uint64_t durable_next_ = 1;
    std::deque<Pending> pending_;  // numbered durable_next_, durable_next_ + 1, ...
    std::size_t written_ = 0;      // pending_[0, written_) are in the current segment, not yet synced
    mac::Bytes32 pending_head_{};  // h of pending_.back() (durable_head_ if none)
    UniqueFd fd_;
    std::string segment_path_;
    std::uint64_t segment_bytes_ = 0;    // bytes in the current segment
    std::uint64_t segment_durable_ = 0;  // of which durable
    bool header_needed_ = false;         // the current segment is empty: its header comes first
    bool dir_sync_needed_ = false;       // the current segment's directory entry is not known durable
    bool broken_ = false;
    // Notices (rate-limited per kind: write failures, drops, quota failures).
    NoticeLimiter notices_[3];
    std::uint64_t errors_since_notice_ = 0;
    bool failing_noticed_ = false;
    std::uint64_t dropped_noticed_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    std::uint64_t queued_bytes_ = 0;  // the cost of queue_ (stats_.held_bytes adds the writer's)
    SpoolStats stats_;
    std::atomic<bool> full_{false};  // set and cleared under mutex_, with room_'s state
    UniqueFd room_;                  // eventfd: readable while !full_
    bool writer_early_ = true;       // the writer may be woken before its interval (not backing off)
    std::jthread writer_;
};

/// What check_spool() found.
struct SpoolCheck {
    std::uint64_t segments = 0;
    std::uint64_t lines = 0;
    std::uint64_t first_line = 0;
    std::uint64_t last_line = 0;
    std::vector<std::string> faults;  // "file:line: what"
};
/// Checks a spool directory's hash chain and numbering (segments deleted by the quota at the
/// start are expected: the check begins at the oldest segment left).
Result<SpoolCheck> check_spool(const std::string& dir);

}  // namespace hsmaudit::agent
