// The journal collector's metrics for Prometheus: a prometheus::Collectable over one Probe (probe.h),
// read at scrape time: the hsmaudit_journal_* families (docs/METRICS.md).
//
// Thread-safety: immutable after construction; Collect() from any thread (the probe is atomics).
// Lifetime: the probe must outlive every scrape (stop the metrics endpoint first).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "collectors/journal/probe.h"

namespace hsmaudit::collectors::journal {

class ProbeCollector final : public prometheus::Collectable {
public:
    explicit ProbeCollector(const Probe& probe) : probe_(probe) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const Probe& probe_;
};

/// The families for one snapshot (tests).
std::vector<prometheus::MetricFamily> journal_families(const ProbeStats& stats);

}  // namespace hsmaudit::collectors::journal
