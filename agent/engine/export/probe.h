// The exporters' metrics for Prometheus: per destination (labels `exporter`, its configured name,
// and `type`, its kind) delivery, failures, resends, lag in events and seconds, transport
// counters, and an end-to-end delivery latency histogram when the runner keeps one. One
// collectable for every destination, so each family is emitted once; it reads each runner's
// stats() at scrape time.
//
// Transport-specific counters of one kind (SNMP traps vs informs...) belong to that kind's own
// probe; the families here are the ones every destination has.
//
// The destinations come from a Figures function called at each scrape (the agent's: a reload adds
// and removes destinations, so the probe keeps no pointer into one), and from sources add()ed.
//
// Thread-safety: add() and Collect() from any thread (a mutex guards the list; stats functions
// are called under it and must be callable from any thread). Lifetime: whatever the functions
// reference must outlive every scrape (stop the metrics endpoint first).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/api/latency_histogram.h"
#include "agent/engine/export/runner.h"

namespace hsmaudit::agent {

/// One destination as the probe sees it.
struct ExporterProbeSource {
    std::string name;                                      // exporters.<name>
    std::string type;                                      // relp, syslog, kafka, snmp...
    std::array<bool, 4> streams{true, false, true, true};  // subscribed, indexed by Stream (RunnerOptions::streams)
    std::function<RunnerStats()> stats;
    /// Seconds from an audit record's creation to its acknowledgement by the destination; null if not kept.
    const LatencyHistogram* delivery_latency = nullptr;
};

/// One destination's figures at one instant (tests build these directly).
struct ExporterFigures {
    std::string name;
    std::string type;
    std::array<bool, 4> streams{};
    RunnerStats stats;
    std::optional<LatencyHistogram::Snapshot> delivery_latency;
};

class ExportProbe final : public prometheus::Collectable {
public:
    using NowMs = std::function<std::int64_t()>;
    /// The destinations as they are at a scrape (a set a reload changes: the agent's
    /// ExportManager::stats()); called under the probe's mutex, from any thread.
    using Figures = std::function<std::vector<ExporterFigures>()>;
    explicit ExportProbe(NowMs now_ms, Figures figures = {})
        : now_ms_(std::move(now_ms)), figures_(std::move(figures)) {}
    void add(ExporterProbeSource source);
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    NowMs now_ms_;
    Figures figures_;
    mutable std::mutex mutex_;
    std::vector<ExporterProbeSource> sources_;
};

/// Seconds the destination is behind: the age of the oldest event it has not delivered when the
/// runner knows it (RunnerStats::oldest_undelivered_ms); else 0 when the audit stream is caught up,
/// else the age of the newest event it delivered (an upper bound); nullopt when it has delivered
/// nothing yet while events wait.
std::optional<double> exporter_lag_seconds(const RunnerStats& s, std::int64_t now_ms);

std::vector<prometheus::MetricFamily> export_families(const std::vector<ExporterFigures>& exporters,
                                                      std::int64_t now_ms);

}  // namespace hsmaudit::agent
