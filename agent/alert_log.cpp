#include "agent/alert_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/errc.h"
#include "agent/logger.h"
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

Result<std::unique_ptr<AlertLog>> AlertLog::open(const std::string& dir) {
    auto file = LineLog::open(dir, "alerts.jsonl");
    if (!file) return std::move(file).error();
    return std::unique_ptr<AlertLog>(new AlertLog(std::move(*file)));
}

void AlertLog::alert(Alert&& a) {
    const std::string line = alert_json_line(a);
    std::lock_guard lock(mutex_);
    ++counts_[a.kind];
    const Status written = file_->append(std::string_view(line).substr(0, line.size() - 1));
    const bool ok = written.has_value();
    if (!ok) ++write_failures_;
    auto& log = logger();
    switch (a.severity) {
        case Severity::info: log.info("alert {}: {}", a.kind, a.message); break;
        case Severity::warning: log.warn("alert {}: {}", a.kind, a.message); break;
        case Severity::critical: log.error("alert {}: {}", a.kind, a.message); break;
    }
    if (!ok) log.error("{}", written.error().message);
    recent_.push_back(std::move(a));
    if (recent_.size() > 20) recent_.erase(recent_.begin());
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
