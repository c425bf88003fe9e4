// Counters of the journal collector, kept by one JournalSource.
#pragma once

#include <atomic>
#include <cstdint>

namespace hsmaudit::collectors::journal {

/// A copy of the counters at one instant.
struct ProbeStats {
    std::uint64_t received = 0;              // entries handed to the sink (accepted)
    std::uint64_t skipped = 0;               // entries below the priority floor (read, not delivered)
    std::uint64_t oversized = 0;             // of the received, MESSAGE longer than the maximum (cut, flagged)
    std::uint64_t escaped = 0;               // of the received, MESSAGE with control or non-UTF-8 bytes (escaped)
    std::uint64_t refused = 0;               // times the sink refused an entry (queue full): the source waited
    std::uint64_t read_errors = 0;           // sd-journal calls that failed (retried after a pause)
    std::uint64_t gaps = 0;                  // the saved or last cursor's entry was gone: read again from the head
    std::uint64_t cursor_damaged = 0;        // a cursor file that did not parse (read from the head instead)
    std::uint64_t cursor_saves = 0;          // cursor files written
    std::uint64_t cursor_save_failures = 0;  // commits or cursor writes that failed (the old cursor stays)
    std::uint64_t thread_failures = 0;       // the source's thread ended by an exception
};

/// The live counters. Thread-safety: relaxed atomics; any thread may read, the source increments.
/// Lifetime: owned by the caller; must outlive the source given it.
struct Probe {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> skipped{0};
    std::atomic<std::uint64_t> oversized{0};
    std::atomic<std::uint64_t> escaped{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> read_errors{0};
    std::atomic<std::uint64_t> gaps{0};
    std::atomic<std::uint64_t> cursor_damaged{0};
    std::atomic<std::uint64_t> cursor_saves{0};
    std::atomic<std::uint64_t> cursor_save_failures{0};
    std::atomic<std::uint64_t> thread_failures{0};

    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }

    [[nodiscard]] ProbeStats snapshot() const noexcept {
        constexpr auto r = std::memory_order_relaxed;
        return {received.load(r),       skipped.load(r),
                oversized.load(r),      escaped.load(r),
                refused.load(r),        read_errors.load(r),
                gaps.load(r),           cursor_damaged.load(r),
                cursor_saves.load(r),   cursor_save_failures.load(r),
                thread_failures.load(r)};
    }
};

}  // namespace hsmaudit::collectors::journal
