// The module collector's metrics: the ring's size and use and the module's own counters
// (operations, errors, refusals at the reserve, events), as the module reported them at the
// drain's last status read (ModuleRingSource::status(), every drain.status_interval).
//
// ModuleProbe holds the figures in relaxed atomics: the drain thread stores, the exposer's thread
// loads; no lock. ModuleProbeCollector is the prometheus::Collectable over it.
// Thread-safety: record() from one thread (the drain's); snapshot()/Collect() from any thread.
// Lifetime: the probe must outlive every scrape (stop the metrics endpoint first).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "hsmcore/ring/ring.h"

namespace hsmaudit::collectors {

/// A copy of the module's figures at one status read; `valid` is false before the first.
struct ModuleFigures {
    bool valid = false;
    std::uint64_t capacity_bytes = 0;
    std::uint64_t reserve_bytes = 0;
    std::uint64_t used_bytes = 0;
    std::uint64_t used_records = 0;
    std::uint64_t used_entries = 0;
    std::uint64_t boot = 0;
    bool blocked = false;
    hsmcore::ring::Counters counters;
    std::int64_t read_ms = 0;  // agent clock
};

class ModuleProbe {
public:
    void record(const hsmcore::ring::RingStatus& st, std::int64_t now_ms) noexcept;
    [[nodiscard]] ModuleFigures snapshot() const noexcept;

private:
    static constexpr auto kRelaxed = std::memory_order_relaxed;
    std::atomic<bool> valid_{false};
    std::atomic<std::uint64_t> capacity_{0}, reserve_{0}, used_bytes_{0}, used_records_{0}, used_entries_{0}, boot_{0};
    std::atomic<bool> blocked_{false};
    std::atomic<std::uint64_t> op_requests_{0}, op_errors_{0}, crypto_requests_{0}, crypto_errors_{0},
        critical_events_{0}, noncritical_events_{0}, refused_log_full_{0}, unlogged_events_{0};
    std::atomic<std::int64_t> read_ms_{0};
};

class ModuleProbeCollector final : public prometheus::Collectable {
public:
    explicit ModuleProbeCollector(const ModuleProbe& probe) : probe_(probe) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const ModuleProbe& probe_;
};

/// The families for given figures (none before the first status read).
std::vector<prometheus::MetricFamily> module_families(const ModuleFigures& f);

}  // namespace hsmaudit::collectors
