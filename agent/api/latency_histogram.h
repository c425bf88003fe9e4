// LatencyHistogram: a fixed-bucket histogram of durations a component records into on its own
// hot path and a probe reads at scrape time (Prometheus histogram semantics: per-bucket counts,
// an observation count and a sum).
//
// Cheap by design: observe() is a bucket search over a dozen bounds and three relaxed atomic
// adds, no lock and no allocation. A loop that measures many items (the drain's records) fills a
// Tally on its own stack and adds it once per batch.
//
// Thread-safety: observe()/add() from any thread (relaxed atomics); snapshot() from any thread.
// A snapshot taken while observations land may be off by those observations, never torn:
// its count is the sum of its buckets.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace hsmaudit::agent {

class LatencyHistogram {
public:
    /// `upper_bounds` in seconds, strictly increasing; +Inf is implied.
    explicit LatencyHistogram(std::span<const double> upper_bounds)
        : bounds_(upper_bounds.begin(), upper_bounds.end()),
          counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

    /// Observations of one batch, kept locally and added with add().
    struct Tally {
        std::vector<std::uint64_t> counts;  // per bucket, the last one is +Inf
        std::uint64_t sum_ns = 0;
        [[nodiscard]] bool empty() const {
            return sum_ns == 0 && std::ranges::all_of(counts, [](auto c) { return c == 0; });
        }
    };

    [[nodiscard]] Tally tally() const { return Tally{std::vector<std::uint64_t>(bounds_.size() + 1, 0), 0}; }

    void count(Tally& t, double seconds) const noexcept {
        if (!(seconds > 0)) seconds = 0;  // clocks of two machines may disagree; NaN counts as 0
        ++t.counts[bucket(seconds)];
        t.sum_ns += static_cast<std::uint64_t>(seconds * 1e9);
    }

    void add(const Tally& t) noexcept {
        constexpr auto r = std::memory_order_relaxed;
        for (std::size_t i = 0; i < t.counts.size() && i <= bounds_.size(); ++i)
            if (t.counts[i] != 0) counts_[i].fetch_add(t.counts[i], r);
        sum_ns_.fetch_add(t.sum_ns, r);
    }

    void observe(double seconds) noexcept {
        if (!(seconds > 0)) seconds = 0;
        constexpr auto r = std::memory_order_relaxed;
        counts_[bucket(seconds)].fetch_add(1, r);
        sum_ns_.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), r);
    }

    struct Snapshot {
        std::vector<double> upper_bounds;   // without +Inf
        std::vector<std::uint64_t> counts;  // per bucket (not cumulative), size upper_bounds + 1
        std::uint64_t count = 0;            // the sum of counts
        double sum_seconds = 0;
    };

    [[nodiscard]] Snapshot snapshot() const {
        Snapshot s;
        s.upper_bounds = bounds_;
        s.counts.resize(bounds_.size() + 1);
        for (std::size_t i = 0; i <= bounds_.size(); ++i) {
            s.counts[i] = counts_[i].load(std::memory_order_relaxed);
            s.count += s.counts[i];
        }
        s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
        return s;
    }

private:
    [[nodiscard]] std::size_t bucket(double seconds) const noexcept {
        return static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
    }

    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
    std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace hsmaudit::agent
