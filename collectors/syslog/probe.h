// Counters of the syslog collector, kept by listeners, framers and file followers.
#pragma once

#include <atomic>
#include <cstdint>

namespace hsmaudit::collectors::syslog {

/// A copy of the counters at one instant.
struct ProbeStats {
    std::uint64_t received = 0;        // messages delivered to the sink (malformed ones included)
    std::uint64_t malformed = 0;       // of which malformed
    std::uint64_t oversized = 0;       // of which oversized (truncated to the maximum)
    std::uint64_t dropped = 0;         // datagrams the kernel dropped (queue full); known when the next one arrives
    std::uint64_t framing_errors = 0;  // TCP frames with a bad octet count or cut by a closed connection
    std::uint64_t connections_accepted = 0;     // TCP
    std::uint64_t connections_rejected = 0;     // TCP connections refused: at a limit with no idle one to drop
    std::uint64_t read_errors = 0;              // failed reads on sockets or files
    std::uint64_t thread_failures = 0;          // listener or follower threads ended by an exception
    std::uint64_t connections_evicted = 0;      // idle TCP connections closed to admit a new one (at a limit)
    std::uint64_t connections_idle_closed = 0;  // TCP connections closed after tcp_idle_timeout without a byte
    std::uint64_t dropped_full = 0;             // datagrams read and dropped because the sink (the spool) was full
    std::uint64_t connections_open = 0;         // TCP connections open now (a gauge)
};

/// The live counters. Thread-safety: relaxed atomics; any thread may read, sources increment.
/// Lifetime: owned by the caller and must outlive every listener or follower given it.
struct Probe {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> malformed{0};
    std::atomic<std::uint64_t> oversized{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> framing_errors{0};
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> connections_rejected{0};
    std::atomic<std::uint64_t> read_errors{0};
    std::atomic<std::uint64_t> thread_failures{0};
    std::atomic<std::uint64_t> connections_evicted{0};
    std::atomic<std::uint64_t> connections_idle_closed{0};
    std::atomic<std::uint64_t> dropped_full{0};
    std::atomic<std::uint64_t> connections_open{0};

    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }

    [[nodiscard]] ProbeStats snapshot() const noexcept {
        constexpr auto r = std::memory_order_relaxed;
        return {received.load(r),
                malformed.load(r),
                oversized.load(r),
                dropped.load(r),
                framing_errors.load(r),
                connections_accepted.load(r),
                connections_rejected.load(r),
                read_errors.load(r),
                thread_failures.load(r),
                connections_evicted.load(r),
                connections_idle_closed.load(r),
                dropped_full.load(r),
                connections_open.load(r)};
    }
};

}  // namespace hsmaudit::collectors::syslog
