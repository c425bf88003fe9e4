// The store's metrics for Prometheus: the export area's size against its quota (Retention),
// archiving (Archiver), segments and archives on disk, and the syslog spool (EventSpool). A
// prometheus::Collectable that reads each component's stats() at scrape time and lists the two
// small directories (ready_for_archive/, archive/); it never touches AuditStore, which belongs to
// the drain thread.
//
// Thread-safety: set_*() before the endpoint starts; Collect() from any thread. Lifetime: every
// component given must outlive every scrape (stop the metrics endpoint first). A null component
// is skipped (its families are absent).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/engine/store/archiver.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/retention.h"

namespace hsmaudit::agent {

/// Files in the export area, counted at scrape time.
struct StoreFiles {
    std::uint64_t sealed_segments = 0;  // in ready_for_archive/
    std::uint64_t open_segments = 0;    // in current/
    std::uint64_t archives = 0;         // in archive/ (.tgz, .tar)
};

class StoreProbe final : public prometheus::Collectable {
public:
    /// `audit_dir`: the store's directory (<state>/audit); "" to skip counting files.
    StoreProbe(std::string audit_dir, const Retention* retention, const Archiver* archiver)
        : audit_dir_(std::move(audit_dir)), retention_(retention), archiver_(archiver) {}
    /// The syslog spool's counters (the intake owns the spool); nullopt when there is none.
    void set_spool(std::function<std::optional<SpoolStats>()> spool) { spool_ = std::move(spool); }

    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::string audit_dir_;
    const Retention* retention_;
    const Archiver* archiver_;
    std::function<std::optional<SpoolStats>()> spool_;
};

/// Counts the segment and archive files under `audit_dir` (missing directories count 0).
StoreFiles count_store_files(const std::string& audit_dir);

/// The families for given figures (tests).
std::vector<prometheus::MetricFamily> store_families(const std::optional<RetentionStats>& retention,
                                                     const std::optional<ArchiverStats>& archiver,
                                                     const std::optional<StoreFiles>& files,
                                                     const std::optional<SpoolStats>& spool);

}  // namespace hsmaudit::agent
