// Agent health, judged from one status snapshot (agent_status.h): the one definition that
// hsmauditd's /health and /ready endpoints and `hsmaudit status`'s exit code share.
//
//   live     the main loop publishes snapshots (the snapshot is at most kMainLoopSilenceMs old)
//            and the drain thread completes steps or retries (its last step at most
//            kDrainSilenceMs ago): the same notion as the systemd watchdog (Service::healthy).
//   ready    live, the status could be gathered, the drain exists (the store was recovered and
//            the drain started) and its last step did not fail.
//   problems what an operator's monitoring should hear about while the agent runs (degraded):
//            not ready, the module blocked or its ring at alerts.ring_fill_critical, online
//            verification faults, the drain's acknowledgements paused (retention's brake), the
//            store's disk full, the archiver or retention thread stopped, a destination down or
//            held by a damaged store.
//
// Thread-safety: free functions on values (any thread; the snapshot is immutable).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/api/agent_status.h"

namespace hsmaudit::agent {

/// The main loop publishes a snapshot every second; silence this long means it is stuck.
inline constexpr std::int64_t kMainLoopSilenceMs = 10'000;
/// The drain steps at least every drain.poll_wait while alive (also when idle, paused or retrying);
/// this long without a step is a stuck drain (the unit's WatchdogSec).
inline constexpr std::int64_t kDrainSilenceMs = 30'000;
/// The critical fill when the snapshot does not say (alerts.ring_fill_critical's default).
inline constexpr double kDefaultRingFillCritical = 0.8;

/// A verdict with its reason ("" when ok).
struct HealthVerdict {
    bool ok = false;
    std::string reason;
};

namespace health_detail {
inline std::string secs(std::int64_t ms) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000);
    return buf;
}
}  // namespace health_detail

/// Liveness at `now_ms` (the agent's clock). `status` may be null (not started).
inline HealthVerdict assess_liveness(const AgentStatus* status, std::int64_t now_ms) {
    using health_detail::secs;
    if (status == nullptr) return {false, "the agent has not started (no status snapshot yet)"};
    if (now_ms - status->time_ms > kMainLoopSilenceMs)
        return {false, "the main loop is stuck: its last status snapshot is " + secs(now_ms - status->time_ms) +
                           " old (published every second)"};
    if (status->drain && status->drain->last_step_ms != 0 && now_ms - status->drain->last_step_ms > kDrainSilenceMs)
        return {false, "the drain is stuck: its last step was " + secs(now_ms - status->drain->last_step_ms) + " ago"};
    return {true, ""};
}

/// Readiness at `now_ms`: live, and the drain running and not failing.
inline HealthVerdict assess_readiness(const AgentStatus* status, std::int64_t now_ms) {
    if (auto live = assess_liveness(status, now_ms); !live.ok) return live;
    if (!status->error.empty()) return {false, status->error};
    if (!status->drain) return {false, "the drain has not started (the store is being recovered)"};
    if (status->drain->failing)
        return {false, "the drain's last step failed (retrying with back-off; " +
                           std::to_string(status->drain->step_failures) + " failed steps since start)"};
    return {true, ""};
}

/// Everything that makes a running agent unhealthy (empty: healthy), each a short sentence.
inline std::vector<std::string> assess_problems(const AgentStatus& s, std::int64_t now_ms) {
    std::vector<std::string> out;
    if (auto ready = assess_readiness(&s, now_ms); !ready.ok) out.push_back(ready.reason);
    if (s.ring) {
        const double critical = s.ring->fill_critical > 0 ? s.ring->fill_critical : kDefaultRingFillCritical;
        char buf[160];
        if (s.ring->blocked) {
            out.emplace_back("the module is blocked: its ring reached the reserve and it refuses crypto");
        } else if (s.ring->fill >= critical) {
            (void)std::snprintf(buf, sizeof buf, "the module's ring is %.1f%% full (critical at %.1f%%)",
                                s.ring->fill * 100, critical * 100);
            out.emplace_back(buf);
        }
    }
    if (s.drain) {
        if (s.drain->faults > 0)
            out.push_back("online verification found " + std::to_string(s.drain->faults) +
                          " fault(s) in the audit chain (see the alerts; run 'hsmaudit verify')");
        if (s.drain->acks_paused)
            out.emplace_back("acknowledgements to the module are paused (retention's fail-safe): the ring fills");
    }
    if (s.retention) {
        if (s.retention->disk_full) out.emplace_back("the store's disk is full");
        if (s.retention->level == "full") out.emplace_back("the export area is at its quota");
        if (s.retention->stopped) out.emplace_back("retention has stopped");
    }
    if (s.archive && s.archive->stopped) out.emplace_back("the archiver has stopped");
    for (const auto& e : s.exporters) {
        if (e.state == "down")
            out.push_back("destination " + e.name + " is down" + (e.last_error.empty() ? "" : ": " + e.last_error));
        if (e.store_held)
            out.push_back("destination " + e.name + " is held by a damaged store" +
                          (e.store_error.empty() ? "" : ": " + e.store_error));
    }
    return out;
}

}  // namespace hsmaudit::agent
