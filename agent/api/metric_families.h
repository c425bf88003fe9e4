// Helpers the agent's probes use to build Prometheus metric families at scrape time
// (prometheus::Collectable::Collect), shared by every module's probe.h so the exposition stays
// uniform: one family per metric name, each emitted by exactly one collectable (two collectables
// emitting one name would give a second TYPE line, which Prometheus refuses).
//
// Header-only: a collector library includes it without linking the agent (it needs
// prometheus-cpp core). Thread-safety: value types, no shared state.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "agent/api/latency_histogram.h"

namespace hsmaudit::agent::metrics {

using Labels = std::initializer_list<std::pair<const char*, std::string>>;

inline prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
    prometheus::MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

inline prometheus::MetricFamily counter_family(std::string name, std::string help) {
    return family(std::move(name), std::move(help), prometheus::MetricType::Counter);
}

inline prometheus::MetricFamily gauge_family(std::string name, std::string help) {
    return family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
}

inline prometheus::MetricFamily histogram_family(std::string name, std::string help) {
    return family(std::move(name), std::move(help), prometheus::MetricType::Histogram);
}

inline prometheus::ClientMetric labelled(Labels labels) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    return m;
}

/// Adds one sample to a counter or gauge family.
inline void add(prometheus::MetricFamily& f, double value, Labels labels = {}) {
    auto m = labelled(labels);
    if (f.type == prometheus::MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    f.metric.push_back(std::move(m));
}

inline void add(prometheus::MetricFamily& f, std::uint64_t value, Labels labels = {}) {
    add(f, static_cast<double>(value), labels);
}

/// Adds one histogram (cumulative buckets, +Inf last) from a LatencyHistogram snapshot.
inline void add(prometheus::MetricFamily& f, const LatencyHistogram::Snapshot& s, Labels labels = {}) {
    auto m = labelled(labels);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < s.counts.size(); ++i) {
        cumulative += s.counts[i];
        const double le = i < s.upper_bounds.size() ? s.upper_bounds[i] : std::numeric_limits<double>::infinity();
        m.histogram.bucket.push_back({cumulative, le});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = s.sum_seconds;
    f.metric.push_back(std::move(m));
}

/// A single-sample family in one call.
inline prometheus::MetricFamily gauge(std::string name, std::string help, double value) {
    auto f = gauge_family(std::move(name), std::move(help));
    add(f, value);
    return f;
}

inline prometheus::MetricFamily counter(std::string name, std::string help, double value) {
    auto f = counter_family(std::move(name), std::move(help));
    add(f, value);
    return f;
}

/// Milliseconds since the epoch as Prometheus seconds (0 stays 0: "never").
inline double seconds(std::int64_t ms) {
    return static_cast<double>(ms) / 1000.0;
}

}  // namespace hsmaudit::agent::metrics
