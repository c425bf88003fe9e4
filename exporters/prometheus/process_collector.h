// Standard process metrics (the names Prometheus' client libraries use), read from /proc/self at
// scrape time, since prometheus-cpp has none: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds, process_start_time_seconds. Also hsmaudit_build_info.
//
// Works under the unit's ProtectProc=invisible and ProcSubset=pid: only /proc/self is read (the
// start time comes from CLOCK_BOOTTIME, not /proc/stat).
//
// Thread-safety: stateless; Collect() from any thread.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <string>
#include <vector>

namespace hsmaudit::exporters::prometheus {

struct ProcessFigures {
    double cpu_seconds = 0;
    double resident_bytes = 0;
    double virtual_bytes = 0;
    double open_fds = 0;
    double max_fds = 0;
    double start_time_seconds = 0;
};

/// Reads this process's figures; nullopt if /proc/self/stat cannot be read.
std::optional<ProcessFigures> read_process_figures();

class ProcessCollector final : public ::prometheus::Collectable {
public:
    std::vector<::prometheus::MetricFamily> Collect() const override;
};

/// hsmaudit_build_info{version, compiler, build_type} 1.
class BuildInfoCollector final : public ::prometheus::Collectable {
public:
    std::vector<::prometheus::MetricFamily> Collect() const override;
};

}  // namespace hsmaudit::exporters::prometheus
