// JournalSink: the agent's log straight into the systemd journal (sd_journal_sendv), so that
// `journalctl -p err` finds its errors and each line carries fields to filter on:
//   MESSAGE, PRIORITY (spdlog level -> syslog priority: journal_priority()),
//   SYSLOG_IDENTIFIER=hsmauditd, and the line's structured fields (base::log_fields():
//   HSMAUDIT_ALERT=<alert kind>, HSMAUDIT_DESTINATION=<exporters.NAME>).
// A line the journal refuses is written to stderr as text instead (nothing is lost).
//
// Used only when stderr is connected to journald: systemd sets JOURNAL_STREAM to the
// "<device>:<inode>" of the stream it gives the service, and a program whose stderr still is that
// stream logs natively (systemd.exec(5), "$JOURNAL_STREAM"). Redirected elsewhere (a file, a
// pipe, a terminal), the text log stays exactly as it was.
//
// Thread-safety: log() and log_fields() from any thread (sd_journal_sendv is thread-safe; the
// injected function in tests must be too); set_pattern/set_formatter are ignored (the journal
// stamps time and priority itself).
#pragma once

#include <spdlog/sinks/sink.h>

#include <functional>
#include <string>
#include <vector>

#include "base/logger.h"

namespace hsmaudit::base {

/// The syslog priority (sd-daemon.h SD_ERR...) of an spdlog level: trace/debug 7, info 6, warn 4,
/// err 3, critical 2.
int journal_priority(spdlog::level::level_enum level);

/// True when stderr is the stream systemd connected to journald (JOURNAL_STREAM names its
/// device and inode). `journal_stream`: the variable's value (nullptr: unset).
bool stderr_is_journal(const char* journal_stream);

class JournalSink final : public spdlog::sinks::sink, public StructuredSink {
public:
    /// Sends one entry: "NAME=value" fields. Returns 0 or a negative errno (sd_journal_sendv).
    using Send = std::function<int(const std::vector<std::string>& fields)>;

    /// `send` defaults to sd_journal_sendv.
    explicit JournalSink(std::string identifier, Send send = {});

    void log(const spdlog::details::log_msg& msg) override;
    void log_fields(const spdlog::details::log_msg& msg, std::span<const LogField> fields) override;
    void flush() override {}
    void set_pattern(const std::string& /*pattern*/) override {}
    void set_formatter(std::unique_ptr<spdlog::formatter> /*formatter*/) override {}

    /// The fields of one entry (what log_fields sends): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then `fields`.
    [[nodiscard]] std::vector<std::string> entry(const spdlog::details::log_msg& msg,
                                                 std::span<const LogField> fields) const;

private:
    std::string identifier_;
    Send send_;
};

/// The one choice, made at start: when stderr is journald's stream (JOURNAL_STREAM), `log`'s
/// sinks are replaced by a JournalSink with `identifier`; otherwise nothing changes. Call before
/// any other thread logs. Returns true if the journal is used.
bool use_journal_if_connected(spdlog::logger& log, const std::string& identifier);

}  // namespace hsmaudit::base
