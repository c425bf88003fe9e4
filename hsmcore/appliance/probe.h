// Counters of the appliance emulator's syslog sender (kept and incremented by SyslogSender).
#pragma once

#include <atomic>
#include <cstdint>

namespace hsmaudit::appliance {

/// A copy of the counters at one instant.
struct SenderStats {
    std::uint64_t enqueued = 0;               // messages accepted by send()
    std::uint64_t sent = 0;                   // messages written to the socket
    std::uint64_t dropped_queue_full = 0;     // send() found the bounded queue full
    std::uint64_t dropped_undeliverable = 0;  // given up on (datagram refused, or still queued at stop)
    std::uint64_t send_errors = 0;            // failed socket writes
    std::uint64_t connects = 0;               // successful (re)connections
    std::uint64_t connect_failures = 0;       // failed connection attempts
};

/// The live counters. Thread-safety: atomics, relaxed; any thread may read, SyslogSender writes.
struct SenderProbe {
    std::atomic<std::uint64_t> enqueued{0};
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> dropped_queue_full{0};
    std::atomic<std::uint64_t> dropped_undeliverable{0};
    std::atomic<std::uint64_t> send_errors{0};
    std::atomic<std::uint64_t> connects{0};
    std::atomic<std::uint64_t> connect_failures{0};

    [[nodiscard]] SenderStats snapshot() const noexcept {
        constexpr auto r = std::memory_order_relaxed;
        return {enqueued.load(r),    sent.load(r),     dropped_queue_full.load(r), dropped_undeliverable.load(r),
                send_errors.load(r), connects.load(r), connect_failures.load(r)};
    }
};

}  // namespace hsmaudit::appliance
