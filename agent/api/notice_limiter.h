// NoticeLimiter: the rate limit of a repeated alert of one kind (a full disk, a full queue, refused
// connections), so a condition that lasts does not flood the alert log and the destinations: at most
// one notice per interval, with what happened in between counted and told in the next one.
//
// Thread-safety: none; each limiter belongs to one thread (the spool's writer, a listener's loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

namespace hsmaudit::agent {

class NoticeLimiter {
public:
    using Clock = std::chrono::steady_clock;

    explicit NoticeLimiter(std::chrono::milliseconds interval = std::chrono::minutes(1)) : interval_(interval) {}

    /// True if a notice may go out at `now` (the first one always may); records that it did.
    bool due(Clock::time_point now = Clock::now()) {
        if (sent_ && now - last_ < interval_) return false;
        last_ = now;
        sent_ = true;
        return true;
    }

    /// Counts one more occurrence (or `n`) to be told in the next notice.
    void count(std::uint64_t n = 1) { unreported_ += n; }
    /// Occurrences counted since the last notice that told them.
    [[nodiscard]] std::uint64_t unreported() const { return unreported_; }
    /// Takes the count for a notice going out now.
    std::uint64_t take() { return std::exchange(unreported_, 0); }

    /// When the next notice may go out (now or earlier when none went out yet): a loop with
    /// unreported occurrences wakes then to tell them.
    [[nodiscard]] Clock::time_point next_allowed() const { return sent_ ? last_ + interval_ : Clock::time_point{}; }
    [[nodiscard]] std::chrono::milliseconds interval() const { return interval_; }

private:
    std::chrono::milliseconds interval_;
    Clock::time_point last_{};
    bool sent_ = false;
    std::uint64_t unreported_ = 0;
};

}  // namespace hsmaudit::agent
