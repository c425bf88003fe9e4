// The drain's metrics for Prometheus: ring fill and prediction, records verified and stored,
// verification failures by kind, batch and record latency. A prometheus::Collectable that reads
// Drain::stats() and its histograms at scrape time, so the drain's hot path takes no lock for it.
//
// Thread-safety: Collect() from any thread (the exposer's). Lifetime: the drain must outlive
// every scrape: stop the metrics endpoint before destroying the drain.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

#include "agent/engine/pipeline/drain.h"

namespace hsmaudit::agent {

class DrainProbe final : public prometheus::Collectable {
public:
    explicit DrainProbe(const Drain& drain) : drain_(drain) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const Drain& drain_;
};

/// The families DrainProbe emits for given figures (tests build them without a drain).
std::vector<prometheus::MetricFamily> drain_families(const DrainStats& stats, const LatencyHistogram::Snapshot& batch,
                                                     const LatencyHistogram::Snapshot& record);

}  // namespace hsmaudit::agent
