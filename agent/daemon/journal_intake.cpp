#include "agent/daemon/journal_intake.h"

#include <filesystem>

#include "agent/api/errc.h"
#include "agent/daemon/service.h"
#include "agent/daemon/syslog_intake.h"
#include "base/logger.h"
#include "collectors/journal/journal_config.h"

namespace hsmaudit::agent {

namespace jn = collectors::journal;

bool JournalSpoolSink::offer(const collectors::syslog::SyslogMessage& message) {
    if (uncommitted_ >= kMaxUncommitted) {
        if (!commit()) return false;  // the source waits and offers it again
    }
    // A full spool makes the source wait and offer the entry again (its cursor has not moved past
    // it): that is backpressure, not a drop, so the spool's `dropped` counter is not touched.
    if (!spool_.has_room()) return false;
    if (!spool_.push(syslog_spool_payload(message, max_message_bytes_))) return false;
    ++uncommitted_;
    return true;
}

Status JournalSpoolSink::commit() {
    // flush() serialises with the spool's writer thread (its write lock): on success every line pushed
    // before it is durable.
    HSMAUDIT_TRY(spool_.flush());
    uncommitted_ = 0;
    return {};
}

std::string JournalIntake::cursor_path(const std::string& dir) {
    return (std::filesystem::path(dir) / "journal-cursor").string();
}

Result<std::unique_ptr<JournalIntake>> JournalIntake::start(const base::Config& config, const std::string& dir,
                                                            EventSpool& spool, AlertSink* alerts) {
    auto options = jn::journal_options(config);
    if (!options) return make_error(errc::config_error, options.error().describe());
    options->cursor_file = cursor_path(dir);
    options->alerts = alerts;
    options->on_failure = [alerts](const std::string& what) {
        if (alerts != nullptr)
            alerts->alert(Alert{"syslog.source_failed", Severity::critical,
                                what + "; the journal source stopped (restart the agent to resume it)", 0,
                                wall_clock_ms()});
    };
    auto in = std::make_unique<JournalIntake>(Token{}, spool, options->max_message_bytes);
    const std::string what = options->directory.empty() ? "the system journal" : options->directory;
    auto source = jn::JournalSource::start(std::move(*options), in->sink_, in->probe_);
    if (!source) return make_error(errc::config_error, "syslog.journal (" + what + "): " + source.error().describe());
    in->source_ = std::move(*source);
    base::logger().info("reading {} (cursor in {})", what, cursor_path(dir));
    return in;
}

JournalIntake::~JournalIntake() {
    stop();
}

void JournalIntake::stop() {
    if (source_) source_->stop();
}

}  // namespace hsmaudit::agent
