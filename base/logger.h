// The agent's own log: stderr (journald captures it under systemd), never the audit trail.
// Thread-safety: spdlog loggers are thread-safe.
#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <memory>

namespace hsmaudit::base {

/// The "hsmauditd" logger, created on first use.
inline spdlog::logger& logger() {
    static const std::shared_ptr<spdlog::logger> log = [] {
        auto l = std::make_shared<spdlog::logger>("hsmauditd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        l->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
        return l;
    }();
    return *log;
}

}  // namespace hsmaudit::base
