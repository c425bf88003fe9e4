// A minimal stand-in for agent::ExportRunner's delivery loop, used by the exporter tests that do
// not go through a runner: send in batches within a window, advance a cursor over the
// acknowledged prefix, and after any failure disconnect, reconnect and resend everything after
// it (at-least-once, in order).
//
// Thread-safety: a function; drives the exporter on the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "agent/api/exporter.h"

namespace hsmaudit::testing::kafka {

struct DriveResult {
    std::uint64_t delivered = 0;  // the cursor at the end
    std::uint64_t failures = 0;   // connect, send or acknowledgement failures
    std::uint64_t resent = 0;     // events sent again after a failure
    std::vector<std::string> errors;
    bool timed_out = false;
};

/// Delivers `events` through `exporter`; `on_progress(cursor)` after each acknowledgement (fault
/// injection hooks in there). Gives up after `limit` (a safety net for a hung test, not an assertion).
inline DriveResult drive(agent::Exporter& exporter, std::span<const agent::Event> events, std::size_t batch,
                         std::size_t window, const std::function<void(std::uint64_t)>& on_progress,
                         std::chrono::seconds limit = std::chrono::seconds(120)) {
    DriveResult r;
    const auto give_up = std::chrono::steady_clock::now() + limit;
    bool connected = false;
    std::uint64_t conn_start = 0;  // cursor at connect
    std::uint64_t sent = 0;        // sent on this connection
    auto fail = [&](const Error& e) {
        ++r.failures;
        if (r.errors.size() < 20) r.errors.push_back(e.describe());
        exporter.disconnect();
        r.resent += sent - (r.delivered - conn_start);
        connected = false;
        conn_start = r.delivered;
        sent = 0;
    };
    while (r.delivered < events.size()) {
        if (std::chrono::steady_clock::now() > give_up) {
            r.timed_out = true;
            break;
        }
        if (!connected) {
            if (auto st = exporter.connect(); !st) {
                fail(st.error());
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            connected = true;
            conn_start = r.delivered;
            sent = 0;
        }
        const std::uint64_t next = conn_start + sent;
        const std::uint64_t in_flight = next - r.delivered;
        if (next < events.size() && in_flight < window) {
            const std::size_t n = std::min<std::uint64_t>({batch, events.size() - next, window - in_flight});
            if (auto st = exporter.send(events.subspan(next, n)); !st) {
                fail(st.error());
                continue;
            }
            sent += n;
        }
        const bool idle = conn_start + sent >= events.size() || conn_start + sent - r.delivered >= window;
        auto acked = exporter.acknowledged(idle ? std::chrono::milliseconds(100) : std::chrono::milliseconds(0));
        if (!acked) {
            fail(acked.error());
            continue;
        }
        if (conn_start + *acked != r.delivered) {
            r.delivered = conn_start + *acked;
            if (on_progress) on_progress(r.delivered);
        }
    }
    exporter.disconnect();
    return r;
}

}  // namespace hsmaudit::testing::kafka
