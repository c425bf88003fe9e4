// The agent's own log: stderr as text, or the systemd journal with priorities and structured
// fields when stderr is connected to journald (base/journal_sink.h, chosen once at start by the
// program: use_journal_if_connected()). Never the audit trail.
//
// log_fields() adds structured fields (HSMAUDIT_ALERT, HSMAUDIT_DESTINATION) to one line: a sink
// that can carry them (a StructuredSink: the journal) gets them; a text sink prints the line as
// log() would, without them.
//
// Thread-safety: spdlog loggers are thread-safe; log_fields() too (it calls the sinks as spdlog
// does, each sink locking itself).
#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <exception>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

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

/// One structured field of a log line: NAME (journal field rules: A-Z, 0-9, _) and its value.
struct LogField {
    std::string_view name;
    std::string value;
};

/// A sink that carries structured fields. Thread-safety: log_fields() from any thread.
class StructuredSink {
public:
    virtual void log_fields(const spdlog::details::log_msg& msg, std::span<const LogField> fields) = 0;

protected:
    ~StructuredSink() = default;
};

/// Logs one line with structured fields (see the file comment).
template <class... Args>
void log_fields(spdlog::level::level_enum level, std::initializer_list<LogField> fields,
                spdlog::format_string_t<Args...> format, Args&&... args) {
    spdlog::logger& l = logger();
    if (!l.should_log(level)) return;
    try {
        const std::string text = fmt::format(format, std::forward<Args>(args)...);
        const spdlog::details::log_msg msg(l.name(), level, text);
        const std::span<const LogField> span(fields.begin(), fields.size());
        for (const auto& sink : l.sinks()) {
            if (!sink->should_log(level)) continue;
            if (auto* s = dynamic_cast<StructuredSink*>(sink.get()))
                s->log_fields(msg, span);
            else
                sink->log(msg);
            if (level >= l.flush_level() && level != spdlog::level::off) sink->flush();
        }
    } catch (const std::exception& e) {
        l.error("cannot log a line: {}", e.what());  // as spdlog's own handler would, never thrown on
    }
}

}  // namespace hsmaudit::base
