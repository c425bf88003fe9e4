// The module clock: an injected base clock (UTC milliseconds) plus a settable offset and drift, so
// tests can make module time jump, run fast, slow or backwards.
//
// Thread-safety: not thread-safe; the Module calls it under its lock.
#pragma once

#include <cstdint>
#include <functional>

namespace hsmaudit::hsmcore::module {

/// A source of UTC milliseconds since 1970. Production: system_clock_ms(); tests inject their own.
using BaseClock = std::function<std::int64_t()>;
BaseClock system_clock_ms();

class ModuleClock {
public:
    explicit ModuleClock(BaseClock base) : base_(std::move(base)) {}
    /// base + offset + (base - anchor) * drift_ppm / 1e6, where anchor is the base time of the last set().
    [[nodiscard]] std::int64_t now_ms() const;
    void set(std::int64_t offset_ms, std::int64_t drift_ppm);
    [[nodiscard]] std::int64_t offset_ms() const { return offset_ms_; }
    [[nodiscard]] std::int64_t drift_ppm() const { return drift_ppm_; }

private:
    BaseClock base_;
    std::int64_t offset_ms_ = 0;
    std::int64_t drift_ppm_ = 0;
    std::int64_t anchor_ms_ = 0;
};

}  // namespace hsmaudit::hsmcore::module
