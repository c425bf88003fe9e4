// StatusFile: writes hsmauditd's status.json (read by `hsmaudit status`): the agent's published
// status snapshot (agent/api/agent_status.h) as JSON, so that no failure can
// hurt the daemon. The JSON carries bytes from disk and the network (paths, last_error strings,
// alert messages), so it is dumped with invalid UTF-8 replaced (U+FFFD), never thrown on. A failed
// write (a full disk, EIO) is counted, logged once when it starts failing and then at most once
// per log_every with the count of failures meanwhile, and backed off (1 s doubling to 30 s), so
// a full disk costs neither a log line nor a write attempt every second. The target is written
// atomically (base::write_file_atomic): a failure leaves the previous status.json whole.
//
// Thread-safety: write() and stats() may be called from any thread (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/api/agent_status.h"
#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::agent {

/// `j` as JSON text; invalid UTF-8 in its strings becomes U+FFFD instead of an exception.
std::string dump_json_utf8_safe(const nlohmann::json& j, int indent = -1);

struct StatusFileStats {
    std::uint64_t writes = 0;    // status files written
    std::uint64_t failures = 0;  // attempts that failed
    std::uint64_t skipped = 0;   // attempts not made while backing off after a failure
    std::uint64_t consecutive_failures = 0;
    std::string last_error;
};

class StatusFile {
public:
    explicit StatusFile(base::FileSystem& fs = base::posix_file_system(),
                        std::chrono::milliseconds log_every = std::chrono::minutes(10));

    /// Writes `status` to `path` unless backing off after a failure (then returns the last error
    /// without trying). `force` tries regardless (the final status at shutdown).
    Status write(const std::string& path, const nlohmann::json& status, std::int64_t now_ms, bool force = false);
    /// Writes a status snapshot (its to_json form) the same way.
    Status write(const std::string& path, const AgentStatus& status, std::int64_t now_ms, bool force = false);
    [[nodiscard]] StatusFileStats stats() const;

private:
    base::FileSystem& fs_;
    std::chrono::milliseconds log_every_;
    mutable std::mutex mutex_;
    StatusFileStats stats_;
    std::int64_t retry_at_ms_ = 0;
    std::int64_t last_log_ms_ = 0;
    std::uint64_t unlogged_ = 0;  // failures since the last log line
};

}  // namespace hsmaudit::agent
