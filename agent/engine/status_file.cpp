#include "agent/engine/status_file.h"

#include <algorithm>
#include <exception>

#include "agent/api/errc.h"
#include "base/files.h"
#include "base/logger.h"

namespace hsmaudit::agent {
namespace {

constexpr std::int64_t kRetryMinMs = 1'000;
constexpr std::int64_t kRetryMaxMs = 30'000;

}  // namespace

std::string dump_json_utf8_safe(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusFile::StatusFile(base::FileSystem& fs, std::chrono::milliseconds log_every) : fs_(fs), log_every_(log_every) {}

Status StatusFile::write(const std::string& path, const AgentStatus& status, std::int64_t now_ms, bool force) {
    nlohmann::json j;
    try {
        j = status;
    } catch (const std::exception& e) {  // bad_alloc
        j = {{"schema", kAgentStatusSchema},
             {"time", format_status_time(status.time_ms)},
             {"pid", status.pid},
             {"error", std::string("cannot render the status: ") + e.what()}};
    }
    return write(path, j, now_ms, force);
}

Status StatusFile::write(const std::string& path, const nlohmann::json& status, std::int64_t now_ms, bool force) {
    std::lock_guard lock(mutex_);
    if (!force && stats_.consecutive_failures > 0 && now_ms < retry_at_ms_) {
        ++stats_.skipped;
        return make_error(errc::io_error, stats_.last_error);
    }
    Status st;
    try {
        st = base::write_file_atomic(path, dump_json_utf8_safe(status, 2) + "\n", 0640, false, fs_);
    } catch (const std::exception& e) {  // bad_alloc, or a JSON value that cannot be written
        st = make_error(errc::internal, std::string("cannot render the status: ") + e.what());
    }
    if (st) {
        ++stats_.writes;
        if (stats_.consecutive_failures > 0)
            base::logger().info("status: {} written again after {} failed attempt(s)", path,
                                stats_.consecutive_failures);
        stats_.consecutive_failures = 0;
        stats_.last_error.clear();
        unlogged_ = 0;
        return st;
    }
    ++stats_.failures;
    ++stats_.consecutive_failures;
    stats_.last_error = st.error().describe();
    std::int64_t wait = kRetryMinMs;
    for (std::uint64_t i = 1; i < stats_.consecutive_failures && wait < kRetryMaxMs; ++i) wait *= 2;
    retry_at_ms_ = now_ms + std::min(wait, kRetryMaxMs);
    ++unlogged_;
    if (stats_.consecutive_failures == 1 || now_ms - last_log_ms_ >= log_every_.count()) {
        base::logger().warn("status: cannot write {}: {} ({} failure(s) since the last message; retrying with backoff)",
                            path, stats_.last_error, unlogged_);
        last_log_ms_ = now_ms;
        unlogged_ = 0;
    }
    return st;
}

StatusFileStats StatusFile::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace hsmaudit::agent
