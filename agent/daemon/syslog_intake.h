// SyslogIntake: receives the appliance's syslog stream (listeners and file followers from
// collectors/syslog) and spools every message durably (agent/engine/store/event_spool.h) as one JSON
// line that keeps its exact bytes (agent/engine/store/syslog_payload.h). Malformed, oversized and
// binary input is spooled too, flagged.
//
// Thread-safety: on_message() is called from the listeners' and followers' threads (the spool's
// queue is thread-safe); start()/stop() from the owner.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api/alerts.h"
#include "agent/api/event.h"
#include "agent/daemon/journal_intake.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/syslog_payload.h"
#include "base/config/config.h"
#include "collectors/journal/probe.h"
#include "collectors/syslog/file_follower.h"
#include "collectors/syslog/listener.h"
#include "collectors/syslog/message.h"
#include "collectors/syslog/probe.h"

namespace hsmaudit::agent {

class SyslogIntake final : public collectors::syslog::SyslogSink, public collectors::syslog::Backpressure {
public:
    /// Opens the spool under `dir` and starts every listener and follower the configuration names.
    /// Returns nullptr (no error) when the configuration names none.
    /// `alerts` receives the spool's write-failure, drop and recovery alerts (rate-limited there).
    /// `on_durable` is called after each spool flush that made lines durable (SpoolOptions).
    static Result<std::unique_ptr<SyslogIntake>> start(const base::Config& config, const std::string& dir,
                                                       AlertSink* alerts = nullptr,
                                                       std::function<void()> on_durable = {});
    ~SyslogIntake() override;
    SyslogIntake(const SyslogIntake&) = delete;
    SyslogIntake& operator=(const SyslogIntake&) = delete;

    void on_message(collectors::syslog::SyslogMessage&& message) override;
    /// The spool's room (EventSpool::has_room, room_fd): the listeners and followers hold back on it.
    [[nodiscard]] bool has_room() const override { return !spool_ || spool_->has_room(); }
    [[nodiscard]] int room_fd() const override { return spool_ ? spool_->room_fd() : -1; }
    /// Stops sources first (nothing new arrives), then flushes and closes the spool; saves the
    /// followers' positions so a restart resumes without re-reading.
    void stop();
    /// The collector's counters (all listeners and followers together), for metrics; any thread.
    [[nodiscard]] const collectors::syslog::Probe& probe() const { return probe_; }
    /// The spool's counters, for metrics; any thread.
    [[nodiscard]] std::optional<SpoolStats> spool_stats() const {
        return spool_ ? std::optional<SpoolStats>(spool_->stats()) : std::nullopt;
    }
    /// The bound ports of network listeners, in configuration order (0 for unix sockets).
    [[nodiscard]] std::vector<std::uint16_t> ports() const;
    /// The journal source's counters (syslog.journal.enabled), nullptr without it; any thread.
    [[nodiscard]] const collectors::journal::Probe* journal_probe() const;

private:
    explicit SyslogIntake(std::string dir) : dir_(std::move(dir)) {}
    std::string position_file(const std::string& path) const;
    /// The journal source (syslog.journal.*; agent/daemon/journal_intake.h), spooling with the others.
    Status start_journal(const base::Config& config, AlertSink* alerts);

    std::string dir_;
    std::size_t max_message_bytes_ = kMaxSyslogMessageBytes;
    collectors::syslog::Probe probe_;
    std::unique_ptr<EventSpool> spool_;
    std::vector<std::unique_ptr<collectors::syslog::SyslogListener>> listeners_;
    std::vector<std::pair<std::string, std::unique_ptr<collectors::syslog::FollowerThread>>> followers_;
    std::unique_ptr<JournalIntake> journal_;
};

/// The TCP limits, the backpressure and the alerts of a listener from the syslog.* keys (issue 17).
void apply_listener_limits(collectors::syslog::ListenerOptions& options, const base::Config& config,
                           const collectors::syslog::Backpressure* backpressure, AlertSink* alerts);

/// Raises the soft RLIMIT_NOFILE (up to the hard one) so that `needed` descriptors fit; returns the
/// soft limit in force after. Logs what it did, or that it could not.
std::uint64_t ensure_descriptor_limit(std::uint64_t needed);

/// One received message as the agent's event fields: every byte kept (docs/FORMAT.md section 11).
SyslogFields syslog_fields_of(const collectors::syslog::SyslogMessage& m);
/// The spool line payload of one message (agent/engine/store/syslog_payload.h), at most
/// max_syslog_payload_bytes(max_message_bytes) long.
std::string syslog_spool_payload(const collectors::syslog::SyslogMessage& m, std::size_t max_message_bytes);

}  // namespace hsmaudit::agent
