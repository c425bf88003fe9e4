#include "agent/engine/store/retention.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "agent/engine/store/archiver.h"
#include "base/files.h"
#include "base/logger.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

std::string human_bytes(std::uint64_t b) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        ++u;
    }
    char out[32];
    (void)std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return out;
}

/// Bytes of the regular files under `dir`. Files that vanish while it counts (the drain moves,
/// the archiver deletes) are skipped.
Result<std::uint64_t> usage_of(const std::string& dir) {
    std::uint64_t total = 0;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) return make_error(errc::io_error, "cannot measure " + dir + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
        if (ec) return make_error(errc::io_error, "cannot measure " + dir + ": " + ec.message());
        std::error_code fe;
        if (!it->is_regular_file(fe)) continue;
        const auto n = it->file_size(fe);
        if (!fe) total += n;
    }
    if (ec) return make_error(errc::io_error, "cannot measure " + dir + ": " + ec.message());
    return total;
}

struct ArchiveFile {
    std::string path;
    std::uint64_t bytes = 0;
    std::optional<std::uint64_t> last_seq;  // nullopt: the manifest cannot be read (never deleted)
};

}  // namespace

Result<DiskSpace> disk_space_of(const std::string& dir) {
    struct statvfs v {};
    if (::statvfs(dir.c_str(), &v) != 0)
        return make_error(errc::io_error, "cannot statvfs " + dir + ": " + std::strerror(errno));
    DiskSpace d;
    d.available_bytes = static_cast<std::uint64_t>(v.f_bavail) * static_cast<std::uint64_t>(v.f_frsize);
    d.total_bytes = static_cast<std::uint64_t>(v.f_blocks) * static_cast<std::uint64_t>(v.f_frsize);
    return d;
}

std::string_view to_string(QuotaLevel level) {
    switch (level) {
        case QuotaLevel::ok: return "ok";
        case QuotaLevel::warning: return "warning";
        case QuotaLevel::full: return "full";
    }
    return "unknown";
}

Retention::Retention(RetentionOptions options, const DeliveryCursors& cursors, AlertSink& alerts, PauseAcks pause_acks,
                     NowMs now_ms)
    : options_(std::move(options)),
      cursors_(cursors),
      alerts_(alerts),
      pause_acks_(std::move(pause_acks)),
      now_ms_(std::move(now_ms)) {
    stats_.quota_bytes = options_.quota_bytes;
}

Retention::~Retention() {
    stop();
}

void Retention::raise(std::string kind, Severity sev, std::string message) {
    alerts_.alert(Alert{std::move(kind), sev, std::move(message), 0, now_ms_()});
}

void Retention::failed(const std::string& what) {
    if (!failed_this_check_) ++failing_;
    failed_this_check_ = true;
    {
        std::lock_guard lock(stats_mutex_);
        ++stats_.failures;
        stats_.consecutive_failures = failing_;
        stats_.last_error = what;
    }
    if (!failure_alerted_) {
        failure_alerted_ = true;
        // Once per failing spell (the stats and metrics count the rest); retried at each check.
        base::logger().warn("retention: {} (retried every check; further failures are counted, not logged)", what);
        raise("retention.failed", Severity::warning, "retention: " + what);
    }
}

void Retention::succeeded() {
    if (failing_ == 0) return;
    base::logger().info("retention: works again after {} failed check(s)", failing_);
    raise("retention.failed_clear", Severity::info,
          "retention works again after " + std::to_string(failing_) + " failed check(s)");
    failing_ = 0;
    failure_alerted_ = false;
    std::lock_guard lock(stats_mutex_);
    stats_.consecutive_failures = 0;
    stats_.last_error.clear();
}

Result<RetentionStats> Retention::check() {
    failed_this_check_ = false;
    auto st = check_once();
    if (!st) {
        failed(st.error().describe());
        return st;
    }
    if (failed_this_check_) return st;
    succeeded();
    return stats();
}

Result<RetentionStats> Retention::check_once() {
    const std::int64_t now = now_ms_();
    auto used = usage_of(options_.audit_dir);
    if (!used) return std::move(used).error();
    std::uint64_t usage = *used;
    base::FileSystem& file_system = options_.file_system != nullptr ? *options_.file_system : base::posix_file_system();
    const std::optional<std::uint64_t> delivered = cursors_.min_delivered_seq();

    // Archives in chain order: the archiver names them audit-<serial>-<first epoch hex8>-...
    std::vector<ArchiveFile> archives;
    const fs::path archive_dir = fs::path(options_.audit_dir) / kArchiveDir;
    std::error_code ec;
    if (fs::exists(archive_dir, ec)) {
        for (fs::directory_iterator it(archive_dir, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (!is_finished_archive(name)) continue;
            ArchiveFile a;
            a.path = it->path().string();
            std::error_code fe;
            a.bytes = it->file_size(fe);
            archives.push_back(std::move(a));
        }
        if (ec) return make_error(errc::io_error, "cannot list " + archive_dir.string() + ": " + ec.message());
    }
    std::sort(archives.begin(), archives.end(),
              [](const ArchiveFile& a, const ArchiveFile& b) { return a.path < b.path; });

    // What may go: the delivered prefix. Manifests are read only when something may be deleted.
    std::size_t deletable = 0;
    std::uint64_t deletable_bytes = 0;
    if (delivered) {
        for (auto& a : archives) {
            auto m = read_manifest(a.path);
            if (m) a.last_seq = m->last_seq();
            if (!a.last_seq || *a.last_seq > *delivered) break;  // not delivered (or unknown): stop here
            ++deletable;
            deletable_bytes += a.bytes;
        }
    }

    std::uint64_t deleted = 0, deleted_bytes = 0;
    if (usage >= options_.quota_bytes && deletable > 0) {
        const auto low = static_cast<std::uint64_t>(options_.warning_ratio * static_cast<double>(options_.quota_bytes));
        for (std::size_t i = 0; i < deletable && usage >= low; ++i) {
            if (file_system.unlink(archives[i].path.c_str()) != 0 && errno != ENOENT) {
                failed("cannot delete " + archives[i].path + ": " + std::strerror(errno));
                break;
            }
            usage -= std::min(usage, archives[i].bytes);
            deletable_bytes -= archives[i].bytes;
            ++deleted;
            deleted_bytes += archives[i].bytes;
        }
        if (deleted > 0) {
            // Losing a deletion to a crash only means deleting it again: a failure is not an error.
            (void)base::fsync_dir(archive_dir, file_system);
            raise("retention.deleted", Severity::info,
                  "the export area reached its quota of " + human_bytes(options_.quota_bytes) + ": deleted the " +
                      std::to_string(deleted) + " oldest archive(s) (" + human_bytes(deleted_bytes) +
                      "), every record in them delivered by every exporter (through seq " + std::to_string(*delivered) +
                      ")");
            base::logger().info("retention: deleted {} archive(s), {} bytes; delivered through seq {}", deleted,
                                deleted_bytes, *delivered);
        }
    }

    const std::uint64_t protected_bytes = usage - std::min(usage, deletable_bytes);
    const double quota = static_cast<double>(options_.quota_bytes);
    const QuotaLevel level = usage >= options_.quota_bytes ? QuotaLevel::full
                             : static_cast<double>(protected_bytes) >= options_.warning_ratio * quota
                                 ? QuotaLevel::warning
                                 : QuotaLevel::ok;
    const std::string why = delivered ? "records no exporter has delivered yet are never deleted"
                                      : "no exporter is configured, so nothing is deleted automatically "
                                        "(the local store is the only copy)";
    const std::string amount = human_bytes(usage) + " of its " + human_bytes(options_.quota_bytes) + " quota";
    if (level != level_) {
        switch (level) {
            case QuotaLevel::full:
                raise("store.quota_full", Severity::critical,
                      "the export area holds " + amount + "; " + why +
                          ": acknowledgements to the module are paused, so its audit ring fills and it will stop "
                          "cryptography. Free space (copy archives off the box and delete them) to resume");
                break;
            case QuotaLevel::warning:
                raise("store.quota_warning", Severity::warning,
                      "the export area holds " + amount + " (" + human_bytes(protected_bytes) +
                          " may not be deleted); " + why + ". At the quota the agent stops acknowledging");
                break;
            case QuotaLevel::ok:
                raise("store.quota_clear", Severity::info, "the export area is back to " + amount);
                break;
        }
        level_ = level;
    }

    // The file system may fill before the quota does (other files on it, a quota larger than the
    // disk): below min_free_bytes the drain stops before the store's writes fail.
    std::optional<std::uint64_t> available;
    if (options_.disk_space) {
        if (auto space = options_.disk_space(options_.audit_dir); space) {
            available = space->available_bytes;
        } else {
            failed(space.error().describe());  // unknown: the last verdict stands
        }
    }
    if (available) {
        const std::uint64_t resume_at = std::max<std::uint64_t>(options_.min_free_bytes * 2, 1);
        const bool full =
            disk_full_ ? *available < resume_at : *available < std::max<std::uint64_t>(options_.min_free_bytes, 1);
        if (full != disk_full_) {
            if (full)
                raise("store.disk_full", Severity::critical,
                      "the file system of " + options_.audit_dir + " has " + human_bytes(*available) +
                          " available (less than " + human_bytes(options_.min_free_bytes) +
                          "): acknowledgements to the module are paused, so its audit ring fills and it will stop "
                          "cryptography. Free space on that file system to resume");
            else
                raise("store.disk_full_clear", Severity::info,
                      "the file system of " + options_.audit_dir + " has " + human_bytes(*available) +
                          " available again");
            disk_full_ = full;
        }
    }

    const bool pause = level == QuotaLevel::full || disk_full_;
    if (pause != paused_) {
        const std::string free_text =
            available ? human_bytes(*available) + " available" : std::string("unknown free space");
        pause_acks_(pause, pause ? (level == QuotaLevel::full ? "the export area reached its quota (" + amount + ")"
                                                              : "the file system is full (" + free_text + ")")
                                 : "space was freed in the export area (" + amount + ", " + free_text + ")");
        paused_ = pause;
    }

    std::lock_guard lock(stats_mutex_);
    stats_.used_bytes = usage;
    stats_.protected_bytes = protected_bytes;
    stats_.quota_bytes = options_.quota_bytes;
    stats_.level = level;
    stats_.acks_paused = paused_;
    stats_.disk_full = disk_full_;
    stats_.available_bytes = available;
    stats_.archives_deleted += deleted;
    stats_.bytes_deleted += deleted_bytes;
    stats_.delivered_seq = delivered;
    stats_.last_check_ms = now;
    return stats_;
}

void Retention::thread_body(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
        (void)check();  // failures are counted and alerted (once per spell) by check()
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, stop, options_.interval, [] { return false; });
    }
}

void Retention::start() {
    thread_ = std::jthread([this](std::stop_token stop) {
        // The last resort: nothing that escapes a check ends the daemon. Retention stops; the
        // acknowledgements stay as they are (paused stays paused: fail-safe).
        const auto what = detail::run_catching([&] { thread_body(stop); });
        if (!what) return;
        try {
            {
                std::lock_guard lock(stats_mutex_);
                stats_.stopped = true;
                stats_.last_error = "stopped: " + *what;
            }
            base::logger().critical("retention: stopped on an unexpected error: {}", *what);
            raise("retention.crashed", Severity::critical,
                  "retention stopped on an unexpected error (" + *what +
                      "): the export area's quota is no longer enforced until the agent restarts");
        } catch (...) {
        }
    });
}

void Retention::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

RetentionStats Retention::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

}  // namespace hsmaudit::agent
