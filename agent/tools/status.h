// `hsmaudit status`: what a running agent reports about itself in <state>/status.json (written
// every agent.status_interval), turned into a summary for people or for machines: is the agent
// running, how full the module's ring is and how soon it reaches the reserve, the drain rate,
// the store, exporters, online verification and recent alerts.
//
// Exit codes (for monitoring: `hsmaudit status -c FILE >/dev/null; echo $?`):
//   0 the agent runs and is healthy;
//   1 the agent runs but is unhealthy (degraded): the problems of assess_problems()
//     (agent/api/agent_health.h): the drain failing or stuck, the module blocked or its ring at
//     alerts.ring_fill_critical, online verification faults, acknowledgements paused, the store's
//     disk full or quota reached, the archiver or retention stopped, a destination down or held
//     by a damaged store, the status could not be gathered;
//   2 usage error, or status.json cannot be read (damaged, foreign, unreadable);
//   3 the agent is not running: no status.json, its pid is gone, or status.json is older than
//     three agent.status_interval.
//
// Thread-safety: free functions on values; read_* functions only read files.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api/agent_health.h"
#include "agent/api/agent_status.h"
#include "base/result.h"

namespace hsmaudit::agent::tools {

inline constexpr int kStatusHealthy = 0;
inline constexpr int kStatusUnhealthy = 1;
inline constexpr int kStatusUsage = 2;
inline constexpr int kStatusNotRunning = 3;

/// One alert as the agent recorded it.
struct StatusAlert {
    std::string time;
    std::string kind;
    std::string severity;
    std::string message;
};

/// A status file read from disk.
struct StatusSample {
    AgentStatus status;        // status.json, read back through from_json
    std::int64_t time_ms = 0;  // its "time" field (the agent's clock when it wrote it)
};

/// What `hsmaudit status` shows.
struct StatusReport {
    std::string state_dir;
    std::string status_time;  // when the agent last wrote status.json
    std::int64_t age_ms = 0;  // how old that is
    std::int64_t pid = 0;
    std::string started;
    bool running = false;
    std::string not_running_reason;  // why we think the agent is not running
    /// Why the running agent is unhealthy (assess_problems at the snapshot's time); empty: healthy.
    std::vector<std::string> problems;

    std::string module_serial;
    std::string module_state;  // "running" | "blocked" | "unknown"
    std::uint32_t module_boot = 0;

    bool has_ring = false;
    std::uint64_t ring_used_records = 0;
    std::uint64_t ring_capacity_bytes = 0;
    double ring_fill = 0;
    double ring_fill_peak = 0;
    std::optional<double> seconds_to_reserve;  // nullopt: the ring is not filling
    bool module_blocked = false;

    bool has_drain = false;
    std::uint64_t records = 0;  // stored since the agent started
    std::uint64_t last_seq = 0;
    std::uint64_t acked_entry_no = 0;
    std::uint64_t faults = 0;             // online verification faults since the agent started
    std::optional<double> records_per_s;  // nullopt: could not be measured
    std::string rate_note;                // how it was measured, or why not

    bool has_store = false;
    std::string store_dir;
    std::uint64_t store_bytes = 0;
    std::uint64_t sealed_segments = 0;
    std::string open_segment;  // "" if none
    std::uint64_t open_segment_bytes = 0;
    bool encrypted = false;

    /// The destinations, as the agent reported them.
    std::vector<ExporterStatus> exporters;

    std::map<std::string, std::uint64_t> alert_counts;  // this run of the agent, by kind
    std::vector<StatusAlert> recent_alerts;             // newest last
};

/// Reads and parses <state_dir>/status.json (AgentStatus's from_json). The error names the file
/// and what is wrong (not JSON, not written by hsmauditd, a newer schema, the field that is damaged).
Result<StatusSample> read_status_file(const std::string& state_dir);

/// The last `max` alerts of <state_dir>/alerts/alerts.jsonl (the durable alert log), newest
/// last; empty if there is none. Lines that are not alerts are skipped.
std::vector<StatusAlert> read_recent_alerts(const std::string& state_dir, std::size_t max);

/// True if a process with this pid exists (on this host, in this pid namespace).
bool pid_alive(std::int64_t pid);

/// Builds the report from one status sample, and a later one if the agent wrote it (the drain
/// rate is measured between the two). The agent counts as not running when the newest sample
/// is older than three status intervals at `now_ms`, or when `pid_is_alive` is false.
StatusReport make_status_report(const std::string& state_dir, const StatusSample& first,
                                const std::optional<StatusSample>& second, std::int64_t now_ms,
                                std::int64_t status_interval_ms, bool pid_is_alive,
                                std::vector<StatusAlert> durable_alerts);

/// The exit code for the report: kStatusHealthy, kStatusUnhealthy or kStatusNotRunning.
int status_exit_code(const StatusReport& report);

std::string render_status_text(const StatusReport& report);
nlohmann::json render_status_json(const StatusReport& report);

}  // namespace hsmaudit::agent::tools
