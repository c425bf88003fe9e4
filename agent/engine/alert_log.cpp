#include "agent/engine/alert_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/api/errc.h"
#include "base/logger.h"
#include "mac/record.h"

namespace hsmaudit::agent {

std::string alert_json_line(const Alert& a) {
    nlohmann::json j = {{"time", mac::format_time(a.time_ms)},
                        {"kind", a.kind},
                        {"severity", std::string(to_string(a.severity))},
                        {"message", a.message}};
    if (a.seq != 0) j["seq"] = a.seq;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<std::unique_ptr<AlertLog>> AlertLog::open(const std::string& dir, base::FileSystem& fs) {
    auto file = LineLog::open(dir, "alerts.jsonl", fs);
    if (!file) return std::move(file).error();
    return std::unique_ptr<AlertLog>(new AlertLog(std::move(*file)));
}

void AlertLog::alert(Alert&& a) {
    const std::string line = alert_json_line(a);
    std::lock_guard lock(mutex_);
    ++counts_[a.kind];
    const Status written = file_->append(std::string_view(line).substr(0, line.size() - 1));
    const bool ok = written.has_value();
    auto& log = base::logger();
    const spdlog::level::level_enum level = a.severity == Severity::critical  ? spdlog::level::err
                                            : a.severity == Severity::warning ? spdlog::level::warn
                                                                              : spdlog::level::info;
    base::log_fields(level, {{"HSMAUDIT_ALERT", a.kind}}, "alert {}: {}", a.kind, a.message);
    if (!ok) {
        // Once per interval, not at every alert: a full disk must not flood the log.
        ++write_failures_;
        ++failures_unlogged_;
        const auto now = std::chrono::steady_clock::now();
        if (!failing_ || now - last_failure_log_ >= kFailureLogInterval) {
            log.error(
                "cannot write {} ({} failure(s) since the last message, {} in all; {} alert(s) kept to be "
                "written when it recovers): {}",
                path_, failures_unlogged_, write_failures_, file_->waiting(), written.error().describe());
            last_failure_log_ = now;
            failures_unlogged_ = 0;
        }
        failing_ = true;
    } else if (failing_) {
        log.info("{} is written again after {} failure(s)", path_, write_failures_);
        failing_ = false;
        failures_unlogged_ = 0;
    }
    recent_.push_back(std::move(a));
    if (recent_.size() > 20) recent_.erase(recent_.begin());
}

Status AlertLog::retry() {
    std::lock_guard lock(mutex_);
    if (file_->waiting() == 0) return {};
    Status st = file_->retry();
    if (st && failing_) {
        base::logger().info("{} is written again after {} failure(s)", path_, write_failures_);
        failing_ = false;
        failures_unlogged_ = 0;
    }
    return st;
}

std::map<std::string, std::uint64_t> AlertLog::counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
}

std::vector<Alert> AlertLog::recent() const {
    std::lock_guard lock(mutex_);
    return recent_;
}

std::uint64_t AlertLog::write_failures() const {
    std::lock_guard lock(mutex_);
    return write_failures_;
}

}  // namespace hsmaudit::agent
