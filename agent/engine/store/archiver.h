// Archives: sealed segments bundled from <audit>/ready_for_archive/ into tar files under
// <audit>/archive/, as the appliance's `audit log tarlogs` bundles them into `audit-*.tgz`.
//
//   archive/audit-<serial>-<first epoch hex8>-<last epoch hex8>.tgz   (plaintext segments, gzip)
//   archive/audit-<serial>-<first epoch hex8>-<last epoch hex8>.tar   (segments encrypted at rest:
//                                                                       stored as they are, not compressed)
//
// An archive is a pax tar. Its first member, `hsmaudit-archive.txt`, is a manifest (one line per
// segment: name, epoch, sequence range, size), so retention can tell which records an archive
// holds without decrypting or decompressing it all; the segment members follow in chain order,
// byte for byte as they were in ready_for_archive/.
//
// Crash safety: the archive is written to `archive/.tmp-<name>`, fsynced, renamed to its name,
// and the directory fsynced; it is then read back in full and compared byte for byte with the
// segments, and only then are the segments deleted. A crash leaves the segments, the archive, or
// both; every run first removes stale temp files and, for segments that an archive also holds,
// deletes them only after that archive reads back complete and identical.
//
// Failures (a full disk, EIO, a failed fsync or rename): the temp file is removed, nothing is
// deleted, the pass fails and the next one waits (backoff, no spinning); one `archive.failed`
// alert (critical) per failing spell and one `archive.failed_clear` when a pass succeeds again.
// Every write, fsync, rename and unlink goes through ArchiverOptions::file_system (the seam
// tests use to inject faults). The thread body catches what escapes a pass: it alerts
// `archive.crashed` and stops the archiver; segments stay in ready_for_archive.
//
// Thread-safety: Archiver's run_once()/tick() are not reentrant (the archiver's own thread calls
// them, or a test); stats() and hold_passes() from any thread. TarExpander is stateless and reentrant.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/api/alerts.h"
#include "base/config/config.h"
#include "base/file_system.h"
#include "base/result.h"
#include "mac/keys.h"
#include "mac/verifier.h"

namespace hsmaudit::agent {

inline constexpr char kArchiveDir[] = "archive";
inline constexpr char kArchiveManifestName[] = "hsmaudit-archive.txt";

struct ArchiverOptions {
    std::string audit_dir;                           // the store's directory (<state>/audit)
    std::chrono::milliseconds interval{3'600'000};   // bundle on this schedule
    std::size_t max_segments = 64;                   // ... and as soon as more than this many wait
    bool compress = true;                            // gzip (only when the segments are plaintext)
    std::chrono::milliseconds poll_interval{5'000};  // how often the thread looks at the clock and the count
    std::chrono::milliseconds retry_min{5'000};      // after a failed pass, wait this long, doubling...
    std::chrono::milliseconds retry_max{300'000};    // ... up to this (and never longer than interval)
    base::FileSystem* file_system = &base::posix_file_system();  // every write, fsync, rename, unlink
};

/// ArchiverOptions from the archive keys (agent/engine/store/archive_config.cpp).
ArchiverOptions make_archiver_options(const base::Config& config, const std::string& audit_dir);

/// One segment as the manifest describes it.
struct ArchivedSegment {
    std::string name;  // file name, as the member is named
    std::uint64_t epoch = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;  // first_seq - 1 if it holds no record
    std::uint64_t bytes = 0;     // as stored (ciphertext if encrypted at rest)
    bool sealed = false;
    bool encrypted = false;
};

/// What an archive holds, from its manifest.
struct ArchiveManifest {
    std::string serial;
    std::vector<ArchivedSegment> segments;  // chain order

    [[nodiscard]] std::uint64_t first_epoch() const { return segments.empty() ? 0 : segments.front().epoch; }
    [[nodiscard]] std::uint64_t last_seq() const;  // the newest record archived
};

std::string render_manifest(const ArchiveManifest& m);
Result<ArchiveManifest> parse_manifest(std::string_view text);
/// Reads only the manifest (the first member) of an archive.
Result<ArchiveManifest> read_manifest(const std::string& archive_path);

/// Reads an archive to its end and checks that it is complete: every manifest member present
/// with its size, no read error (tar header checksums, gzip CRC), and each member named in
/// `compare` (member name -> file path) byte-identical to that file. An error describes the first
/// difference.
Status check_archive(const std::string& archive_path, const std::vector<std::pair<std::string, std::string>>& compare);

/// True for names the archiver writes and the verifier reads: *.tar, *.tgz, *.tar.gz.
bool is_archive_name(std::string_view path);

// ---- Archive file names (their one owner: the archiver writes them; retention, the store's
// probe and the archiver's own reconciliation read them through these).

/// The temporary name an archive is written under before its rename: ".tmp-<name>".
inline constexpr char kArchiveTempPrefix[] = ".tmp-";
/// audit-<serial>-<first epoch hex8>-<last epoch hex8>[.<n>].<tgz|tar>: `n` > 0 when an archive
/// of the same range is already there (a damaged one, kept aside).
std::string archive_file_name(std::string_view serial, std::uint64_t first_epoch, std::uint64_t last_epoch,
                              bool compressed, int n = 0);
/// The epoch range (first, last) in an archive file name, nullopt if it is not one.
std::optional<std::pair<std::uint64_t, std::uint64_t>> archive_file_epochs(std::string_view name);
/// A finished archive in archive/ (not hidden: no temporary file), by its file name. Their name
/// order is chain order for one serial.
bool is_finished_archive(std::string_view name);

/// What one archiver pass did.
struct ArchiveRun {
    std::vector<std::string> archives;  // written
    std::size_t segments_archived = 0;
    std::size_t duplicates_removed = 0;  // segments already held by a complete archive (an earlier crash)
    std::size_t temps_removed = 0;       // stale temp files (a crash before rename)
    std::size_t segments_waiting = 0;    // in ready_for_archive afterwards
};

struct ArchiverStats {
    std::uint64_t runs = 0;
    std::uint64_t failures = 0;
    std::uint64_t archives_written = 0;
    std::uint64_t segments_archived = 0;
    std::uint64_t duplicates_removed = 0;
    std::uint64_t consecutive_failures = 0;  // 0 once a pass succeeds
    std::int64_t last_run_ms = 0;
    std::int64_t next_attempt_ms = 0;  // when the thread tries again after a failure (0: none pending)
    bool stopped = false;              // the thread stopped on an unexpected exception (archive.crashed)
    std::string last_archive;
    std::string last_error;
};

/// Bundles sealed segments into archives, on a schedule and when too many wait.
/// Thread-safety: see the file comment; start()/stop() from the owner's thread.
class Archiver {
public:
    using NowMs = std::function<std::int64_t()>;
    /// The newest epoch whose seal the store has committed, nullopt if none. Later segments may
    /// still be moved back by the store's crash recovery, so they are never archived.
    using SealedThrough = std::function<std::optional<std::uint64_t>()>;

    Archiver(ArchiverOptions options, const mac::AuditKey& key, AlertSink& alerts, SealedThrough sealed_through,
             NowMs now_ms);
    ~Archiver();
    Archiver(const Archiver&) = delete;
    Archiver& operator=(const Archiver&) = delete;

    /// The highest sequence number every exporter has delivered (DeliveryCursors), nullopt when
    /// no exporter reads the audit stream. When set, a segment is archived only once a record
    /// after it was delivered everywhere, so exporters read segments, never archives.
    using DeliveredThrough = std::function<std::optional<std::uint64_t>()>;
    /// Call before start().
    void set_delivery_gate(DeliveredThrough delivered) { delivered_ = std::move(delivered); }
    /// Holds passes off while the returned lock lives, waiting up to `wait` for a pass under way
    /// to finish (the lock does not own the mutex if it did not): a reload that adds a
    /// destination resolves its start (the oldest record outside archives) and puts it in the
    /// delivery gate before a pass may archive that record. Any thread.
    [[nodiscard]] std::unique_lock<std::mutex> hold_passes(std::chrono::milliseconds wait);

    /// One pass now: clean up after a crash, then bundle every archivable segment.
    Result<ArchiveRun> run_once();
    /// Runs a pass if it is due (the interval has passed since the last, or more than
    /// max_segments segments wait); false if none was due.
    Result<bool> tick();
    /// Calls tick() every poll_interval on an owned thread until stop(); the first pass runs at
    /// once (it finishes what a crash interrupted).
    void start();
    void stop();

    [[nodiscard]] ArchiverStats stats() const;

private:
    struct Segment;
    Result<std::vector<Segment>> scan_ready(ArchiveRun& run);
    Status reconcile(std::vector<Segment>& segments, ArchiveRun& run);
    Status bundle(const std::vector<Segment>& group, ArchiveRun& run);
    Status delete_segments(const std::vector<const Segment*>& segments);
    Status remove_file(const std::string& path);
    void raise(std::string kind, Severity sev, std::string message);
    void thread_body(const std::stop_token& stop);
    [[nodiscard]] std::string ready_dir() const;
    [[nodiscard]] std::string archive_dir() const;

    ArchiverOptions options_;
    const mac::AuditKey& key_;
    AlertSink& alerts_;
    SealedThrough sealed_through_;
    DeliveredThrough delivered_;
    NowMs now_ms_;
    base::FileSystem& fs_;
    std::int64_t next_run_ms_ = 0;              // 0: at the first tick
    std::int64_t retry_at_ms_ = 0;              // after a failure: no pass (not even by count) before this
    std::uint64_t failing_ = 0;                 // consecutive failed passes
    std::size_t waiting_after_run_ = 0;         // the count that did not trigger a useful pass
    std::set<std::string> unreadable_alerted_;  // alert once per segment, once per archive
    std::set<std::string> damaged_alerted_;

    std::mutex pass_mutex_;  // held by run_once(), and by hold_passes()' caller
    mutable std::mutex stats_mutex_;
    ArchiverStats stats_;
    std::mutex wake_mutex_;
    std::condition_variable_any wake_;
    std::jthread thread_;
};

/// Opens tar archives (.tar, .tgz, .tar.gz) of segments for the verifier (`hsmaudit verify`),
/// with libarchive: members whose names end in ".log", in archive order. Members are read
/// through one sequential reader per archive, so verifying in chain order reads each archive
/// from start to end instead of once per member.
/// Thread-safety: expand() is reentrant; the members it returns are used by one thread.
class TarExpander final : public mac::ContainerExpander {
public:
    [[nodiscard]] bool handles(const std::string& path) const override;
    Result<mac::ContainerContents> expand(const std::string& path) const override;
};

}  // namespace hsmaudit::agent
