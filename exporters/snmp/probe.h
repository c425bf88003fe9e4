// Counters of the SNMP exporter (its own metrics), kept by SnmpExporter and its Sender.
#pragma once

#include <atomic>
#include <cstdint>

namespace hsmaudit::exporters::snmp {

/// A copy of the counters at one instant. A value type.
struct ProbeStats {
    std::uint64_t events = 0;            // events given to send() (resends included)
    std::uint64_t unmatched = 0;         // events that map to no notification (no rule matched)
    std::uint64_t notifications = 0;     // notifications decided (before hold-down)
    std::uint64_t deduplicated = 0;      // a condition reported again in the state already notified
    std::uint64_t held_down = 0;         // held back by the hold-down (a flapping condition)
    std::uint64_t holddown_syncs = 0;    // sent at the end of a hold-down window (the latest state)
    std::uint64_t traps_sent = 0;        // trap PDUs handed to the kernel (one per receiver)
    std::uint64_t informs_sent = 0;      // inform PDUs sent (first tries and our own retries)
    std::uint64_t informs_acked = 0;     // informs the receiver answered with a response
    std::uint64_t inform_timeouts = 0;   // informs unanswered after net-snmp's retries (tried again later)
    std::uint64_t inform_reports = 0;    // informs answered with a report (wrong credentials, unknown user...)
    std::uint64_t send_errors = 0;       // PDUs net-snmp could not send
    std::uint64_t session_failures = 0;  // sessions that could not be opened (v3 engine discovery failed...)
};

/// The live counters. Thread-safety: relaxed atomics; the runner's thread increments, any thread reads.
struct Probe {
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::uint64_t> unmatched{0};
    std::atomic<std::uint64_t> notifications{0};
    std::atomic<std::uint64_t> deduplicated{0};
    std::atomic<std::uint64_t> held_down{0};
    std::atomic<std::uint64_t> holddown_syncs{0};
    std::atomic<std::uint64_t> traps_sent{0};
    std::atomic<std::uint64_t> informs_sent{0};
    std::atomic<std::uint64_t> informs_acked{0};
    std::atomic<std::uint64_t> inform_timeouts{0};
    std::atomic<std::uint64_t> inform_reports{0};
    std::atomic<std::uint64_t> send_errors{0};
    std::atomic<std::uint64_t> session_failures{0};

    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }

    [[nodiscard]] ProbeStats snapshot() const noexcept {
        constexpr auto r = std::memory_order_relaxed;
        return {events.load(r),          unmatched.load(r),       notifications.load(r),  deduplicated.load(r),
                held_down.load(r),       holddown_syncs.load(r),  traps_sent.load(r),     informs_sent.load(r),
                informs_acked.load(r),   inform_timeouts.load(r), inform_reports.load(r), send_errors.load(r),
                session_failures.load(r)};
    }
};

}  // namespace hsmaudit::exporters::snmp
