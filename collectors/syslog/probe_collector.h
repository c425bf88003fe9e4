// The syslog collector's metrics for Prometheus: a prometheus::Collectable over one or more
// Probes (probe.h), each named by a `listener` label ("udp:127.0.0.1:514", "file:/var/log/x"),
// read at scrape time. One collector emits every hsmaudit_syslog_* family, so several listeners
// never produce a family twice.
//
// Thread-safety: immutable after construction; Collect() from any thread (the probes are atomics).
// Lifetime: every probe must outlive every scrape (stop the metrics endpoint first).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

#include "collectors/syslog/probe.h"

namespace hsmaudit::collectors::syslog {

class ProbeCollector final : public prometheus::Collectable {
public:
    /// (listener label, probe) pairs; the labels should be distinct and few (one per configured source).
    explicit ProbeCollector(std::vector<std::pair<std::string, const Probe*>> probes) : probes_(std::move(probes)) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    std::vector<std::pair<std::string, const Probe*>> probes_;
};

/// The families for given snapshots (tests).
std::vector<prometheus::MetricFamily> syslog_families(const std::vector<std::pair<std::string, ProbeStats>>& stats);

}  // namespace hsmaudit::collectors::syslog
