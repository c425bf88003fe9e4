// Retention: keeps the export area (<state>/audit: open segment, ready_for_archive/, archive/)
// within its quota without ever deleting a record that no exporter has delivered.
//
// Policy (docs/ARCHITECTURE.md, "Archives and retention"):
//   - Only whole archives are deleted, oldest first (chain order), and only while every record
//     they hold has been delivered by every exporter (DeliveryCursors::min_delivered_seq). The
//     first archive not delivered stops deletion, so what stays is a contiguous tail of the trail.
//   - Deletion starts when the area reaches the quota and goes on until it is below the warning
//     level (hysteresis), or until nothing more may be deleted.
//   - No exporter configured: nothing is ever deleted automatically (the local store is the only
//     copy). Then, as with undelivered records, the agent alerts at the warning level and at the
//     quota alerts critical and pauses the drain's acknowledgements, so the module's ring fills and
//     the module blocks (fail-safe, never fail-open). Acknowledgements resume once space is freed.
//   - The file system itself: when less than min_free_bytes is available (statvfs), whatever the
//     quota says, the agent alerts `store.disk_full` (critical) and pauses acknowledgements the
//     same way, before the store's writes fail; they resume once twice that is available.
//
// Failures (a directory that cannot be listed, an archive that cannot be deleted, statvfs):
// counted in the stats, alerted once per failing spell (`retention.failed`, then
// `retention.failed_clear`), retried at the next check; never a spin. Deletions go through
// RetentionOptions::file_system. The thread body catches what escapes a check: it alerts
// `retention.crashed` and stops retention (acknowledgements stay as they were: if paused, the
// module blocks rather than lose records).
//
// Thread-safety: check() is not reentrant (the retention thread calls it, or a test); stats()
// from any thread; start()/stop() from the owner's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/api/alerts.h"
#include "base/config/config.h"
#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::agent {

/// How far the exporters have delivered the audit trail: the seam between retention and the
/// exporters (each keeps its own durable cursor).
/// Thread-safety: implementations must allow calls from any thread.
class DeliveryCursors {
public:
    virtual ~DeliveryCursors() = default;
    /// The highest sequence number that every configured exporter has durably delivered (the
    /// minimum over the exporters; 0 if one has delivered nothing). nullopt: no exporter is
    /// configured, so nothing counts as delivered anywhere but here.
    [[nodiscard]] virtual std::optional<std::uint64_t> min_delivered_seq() const = 0;
};

/// The cursors of an agent with no exporter configured (the service uses it then).
/// Thread-safety: stateless.
class NoExporters final : public DeliveryCursors {
public:
    [[nodiscard]] std::optional<std::uint64_t> min_delivered_seq() const override { return std::nullopt; }
};

/// Space on the file system under a directory (statvfs).
struct DiskSpace {
    std::uint64_t available_bytes = 0;  // to this (unprivileged) process: f_bavail
    std::uint64_t total_bytes = 0;
};
/// statvfs(2) of `dir`.
Result<DiskSpace> disk_space_of(const std::string& dir);

struct RetentionOptions {
    std::string audit_dir;
    std::uint64_t quota_bytes = 220'000'000'000;  // 220 GB, the appliance's export area
    double warning_ratio = 0.9;
    std::chrono::milliseconds interval{5'000};                   // how often usage is measured
    std::uint64_t min_free_bytes = 1 << 20;                      // pause acknowledgements below this much free space
    base::FileSystem* file_system = &base::posix_file_system();  // deletions
    std::function<Result<DiskSpace>(const std::string&)> disk_space = disk_space_of;  // tests fake a full disk
};

/// RetentionOptions from the store's quota keys (agent/engine/store/archive_config.cpp).
RetentionOptions make_retention_options(const base::Config& config, const std::string& audit_dir);

enum class QuotaLevel : std::uint8_t { ok, warning, full };
std::string_view to_string(QuotaLevel level);

struct RetentionStats {
    std::uint64_t used_bytes = 0;       // the whole export area, after this check's deletions
    std::uint64_t protected_bytes = 0;  // what may not be deleted (not delivered by every exporter)
    std::uint64_t quota_bytes = 0;
    QuotaLevel level = QuotaLevel::ok;
    bool acks_paused = false;
    bool disk_full = false;                        // less than min_free_bytes available on the file system
    std::optional<std::uint64_t> available_bytes;  // at the last check (nullopt: statvfs failed)
    std::uint64_t failures = 0;                    // checks or deletions that failed, since start
    std::uint64_t consecutive_failures = 0;
    bool stopped = false;  // the thread stopped on an unexpected exception (retention.crashed)
    std::string last_error;
    std::uint64_t archives_deleted = 0;  // since start
    std::uint64_t bytes_deleted = 0;
    std::optional<std::uint64_t> delivered_seq;  // at the last check
    std::int64_t last_check_ms = 0;
};

/// Enforces the quota of the export area.
/// Thread-safety: see the file comment.
class Retention {
public:
    using NowMs = std::function<std::int64_t()>;
    /// Pauses (true) or resumes (false) the drain's acknowledgements; `reason` is for the alert.
    using PauseAcks = std::function<void(bool paused, const std::string& reason)>;

    Retention(RetentionOptions options, const DeliveryCursors& cursors, AlertSink& alerts, PauseAcks pause_acks,
              NowMs now_ms);
    ~Retention();
    Retention(const Retention&) = delete;
    Retention& operator=(const Retention&) = delete;

    /// Measures the area, deletes what the policy allows, sets the level, pauses or resumes
    /// acknowledgements, and alerts when the level changes.
    Result<RetentionStats> check();
    /// Calls check() every interval on an owned thread until stop().
    void start();
    void stop();

    [[nodiscard]] RetentionStats stats() const;

private:
    void raise(std::string kind, Severity sev, std::string message);
    void failed(const std::string& what);  // counts, alerts once per spell
    void succeeded();
    Result<RetentionStats> check_once();
    void thread_body(const std::stop_token& stop);

    RetentionOptions options_;
    const DeliveryCursors& cursors_;
    AlertSink& alerts_;
    PauseAcks pause_acks_;
    NowMs now_ms_;
    QuotaLevel level_ = QuotaLevel::ok;
    bool paused_ = false;
    bool disk_full_ = false;
    std::uint64_t failing_ = 0;  // consecutive failed checks
    bool failed_this_check_ = false;
    bool failure_alerted_ = false;

    mutable std::mutex stats_mutex_;
    RetentionStats stats_;
    std::mutex wake_mutex_;
    std::condition_variable_any wake_;
    std::jthread thread_;
};

}  // namespace hsmaudit::agent
