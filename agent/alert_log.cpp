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
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    const std::string path = dir + "/alerts.jsonl";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return make_error(errc::io_error, "cannot open " + path + ": " + std::strerror(errno));
    return std::unique_ptr<AlertLog>(new AlertLog(path, fd));
}

AlertLog::~AlertLog() {
    if (fd_ >= 0) ::close(fd_);
}

void AlertLog::alert(Alert&& a) {
    const std::string line = alert_json_line(a);
    std::lock_guard lock(mutex_);
    ++counts_[a.kind];
    const bool ok =
        ::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fdatasync(fd_) == 0;
    if (!ok) ++write_failures_;
    auto& log = logger();
    switch (a.severity) {
        case Severity::info: log.info("alert {}: {}", a.kind, a.message); break;
        case Severity::warning: log.warn("alert {}: {}", a.kind, a.message); break;
        case Severity::critical: log.error("alert {}: {}", a.kind, a.message); break;
    }
    if (!ok) log.error("cannot append the alert to {}: {}", path_, std::strerror(errno));
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
