#include "agent/engine/store/probe.h"

#include <filesystem>

#include "agent/api/metric_families.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/state_layout.h"

namespace hsmaudit::agent {
namespace fs = std::filesystem;

StoreFiles count_store_files(const std::string& audit_dir) {
    StoreFiles f;
    auto count = [](const fs::path& dir, auto&& wanted) {
        std::uint64_t n = 0;
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file(ec) && wanted(it->path().filename().string())) ++n;
        return n;
    };
    auto segment = [](const std::string& name) { return name.ends_with(".log"); };
    const fs::path root(audit_dir);
    f.sealed_segments = count(root / kSealedSegmentDir, segment);
    f.open_segments = count(root / kOpenSegmentDir, segment);
    f.archives = count(root / kArchiveDir, [](const std::string& name) { return is_finished_archive(name); });
    return f;
}

std::vector<prometheus::MetricFamily> store_families(const std::optional<RetentionStats>& retention,
                                                     const std::optional<ArchiverStats>& archiver,
                                                     const std::optional<StoreFiles>& files,
                                                     const std::optional<SpoolStats>& spool) {
    using namespace metrics;
    std::vector<prometheus::MetricFamily> out;
    if (retention && retention->last_check_ms != 0) {
        const auto& r = *retention;
        out.push_back(gauge("hsmaudit_store_used_bytes",
                            "Bytes in the export area (open segment, ready_for_archive/, archive/) at the last quota "
                            "check.",
                            static_cast<double>(r.used_bytes)));
        out.push_back(gauge("hsmaudit_store_protected_bytes",
                            "Bytes retention may not delete (not yet delivered by every exporter, or no exporter).",
                            static_cast<double>(r.protected_bytes)));
        out.push_back(gauge("hsmaudit_store_quota_bytes", "The export area's quota (store.quota).",
                            static_cast<double>(r.quota_bytes)));
        out.push_back(gauge("hsmaudit_store_quota_level",
                            "Quota level: 0 ok, 1 warning (store.quota_warning reached), 2 full (the drain is "
                            "paused).",
                            static_cast<double>(static_cast<int>(r.level))));
        out.push_back(counter("hsmaudit_store_archives_deleted_total",
                              "Archives retention deleted (delivered by every exporter) since the agent started.",
                              static_cast<double>(r.archives_deleted)));
        out.push_back(counter("hsmaudit_store_deleted_bytes_total", "Bytes retention deleted since the agent started.",
                              static_cast<double>(r.bytes_deleted)));
        out.push_back(gauge("hsmaudit_store_disk_full",
                            "1 while the store's file system has less than store.min_free available (the drain is "
                            "paused), else 0.",
                            r.disk_full ? 1.0 : 0.0));
        if (r.available_bytes)
            out.push_back(gauge("hsmaudit_store_available_bytes",
                                "Bytes available on the store's file system at the last check (statvfs).",
                                static_cast<double>(*r.available_bytes)));
        out.push_back(counter("hsmaudit_retention_failures_total",
                              "Retention checks or deletions that failed (alerted once per spell, retried).",
                              static_cast<double>(r.failures)));
        out.push_back(gauge("hsmaudit_retention_stopped",
                            "1 if retention stopped on an unexpected error (retention.crashed), else 0.",
                            r.stopped ? 1.0 : 0.0));
        out.push_back(gauge("hsmaudit_store_last_quota_check_timestamp_seconds",
                            "When retention last measured the export area (Unix time).", seconds(r.last_check_ms)));
    }
    if (files) {
        auto seg = gauge_family("hsmaudit_store_segments",
                                "Segment files in the store, by state (open: being "
                                "written; sealed: waiting in ready_for_archive/).");
        add(seg, files->open_segments, {{"state", "open"}});
        add(seg, files->sealed_segments, {{"state", "sealed"}});
        out.push_back(std::move(seg));
        out.push_back(gauge("hsmaudit_store_archives", "Archive files (.tgz, .tar) in archive/.",
                            static_cast<double>(files->archives)));
    }
    if (archiver) {
        const auto& a = *archiver;
        out.push_back(counter("hsmaudit_archiver_runs_total", "Archiver passes.", static_cast<double>(a.runs)));
        out.push_back(counter("hsmaudit_archiver_failures_total", "Archiver passes that failed (alerted, retried).",
                              static_cast<double>(a.failures)));
        out.push_back(gauge("hsmaudit_archiver_consecutive_failures",
                            "Archiver passes failed in a row (0 once one succeeds); the archiver backs off meanwhile.",
                            static_cast<double>(a.consecutive_failures)));
        out.push_back(gauge("hsmaudit_archiver_stopped",
                            "1 if the archiver stopped on an unexpected error (archive.crashed), else 0.",
                            a.stopped ? 1.0 : 0.0));
        out.push_back(counter("hsmaudit_archiver_archives_written_total", "Archives written and read back.",
                              static_cast<double>(a.archives_written)));
        out.push_back(counter("hsmaudit_archiver_segments_archived_total", "Segments bundled into archives.",
                              static_cast<double>(a.segments_archived)));
        out.push_back(gauge("hsmaudit_archiver_last_run_timestamp_seconds", "When the archiver last ran (Unix time).",
                            seconds(a.last_run_ms)));
    }
    if (spool) {
        const auto& s = *spool;
        out.push_back(counter("hsmaudit_syslog_spool_lines_total", "Syslog messages durable in the spool.",
                              static_cast<double>(s.appended)));
        out.push_back(counter("hsmaudit_syslog_spool_dropped_total",
                              "Syslog messages the spool refused: it held twice syslog.spool_queue_bytes or 65,536 "
                              "lines (sources hold back at the bound first; datagrams dropped at the bound are "
                              "hsmaudit_syslog_datagrams_dropped_full_total).",
                              static_cast<double>(s.dropped)));
        out.push_back(counter("hsmaudit_syslog_spool_segments_deleted_total",
                              "Spool files deleted by the spool's quota (oldest first).",
                              static_cast<double>(s.deleted_segments)));
        out.push_back(counter("hsmaudit_syslog_spool_write_errors_total", "Failed spool writes.",
                              static_cast<double>(s.write_errors)));
        out.push_back(
            gauge("hsmaudit_syslog_spool_held_bytes",
                  "Bytes the spool holds: received and not yet durable (bounded by syslog.spool_queue_bytes).",
                  static_cast<double>(s.held_bytes)));
        out.push_back(gauge("hsmaudit_syslog_spool_full",
                            "1 while the spool is full: TCP and files are not read (senders slowed down), datagrams "
                            "are dropped.",
                            s.full ? 1.0 : 0.0));
        out.push_back(counter("hsmaudit_syslog_spool_full_spells_total",
                              "Times the spool became full (syslog.spool_queue_bytes reached) and held its sources "
                              "back.",
                              static_cast<double>(s.full_spells)));
    }
    return out;
}

std::vector<prometheus::MetricFamily> StoreProbe::Collect() const {
    std::optional<RetentionStats> r;
    if (retention_) r = retention_->stats();
    std::optional<ArchiverStats> a;
    if (archiver_) a = archiver_->stats();
    std::optional<StoreFiles> files;
    if (!audit_dir_.empty()) files = count_store_files(audit_dir_);
    std::optional<SpoolStats> s;
    if (spool_) s = spool_();
    return store_families(r, a, files, s);
}

}  // namespace hsmaudit::agent
