// JournalIntake: the journal source (collectors/journal) wired to the syslog spool: what the source
// offers is pushed as the spool's JSON line (syslog_spool_payload), and its commit is a spool flush,
// so the cursor (<state>/syslog/journal-cursor, beside the followers' positions) is saved only once
// the spool has made the entries before it durable.
//
// Thread-safety: start/stop from the owner (SyslogIntake); the sink is called from the source's
// thread; probe() from any thread.
#pragma once

#include <memory>
#include <string>

#include "agent/api/alerts.h"
#include "agent/engine/store/event_spool.h"
#include "base/config/config.h"
#include "base/result.h"
#include "collectors/journal/journal_source.h"
#include "collectors/journal/probe.h"

namespace hsmaudit::agent {

/// The spool as the journal source's sink. At most kMaxUncommitted lines wait in the spool's queue
/// from the journal: then offer() flushes first, so reading a long journal never fills the queue that
/// the network listeners share.
class JournalSpoolSink final : public collectors::journal::JournalSink {
public:
    static constexpr std::size_t kMaxUncommitted = 1024;
    /// `max_message_bytes`: syslog.max_message_bytes, the bound of a spooled payload (syslog_payload.h).
    JournalSpoolSink(EventSpool& spool, std::size_t max_message_bytes)
        : spool_(spool), max_message_bytes_(max_message_bytes) {}
    bool offer(const collectors::syslog::SyslogMessage& message) override;
    Status commit() override;

private:
    EventSpool& spool_;
    std::size_t max_message_bytes_;
    std::size_t uncommitted_ = 0;
};

class JournalIntake {
    struct Token {
        explicit Token() = default;
    };

public:
    /// Built by start() only (the token is private); public so that std::make_unique can call it.
    JournalIntake(Token /*only start()*/, EventSpool& spool, std::size_t max_message_bytes)
        : sink_(spool, max_message_bytes) {}
    /// The cursor file in the intake's directory.
    static std::string cursor_path(const std::string& dir);
    /// Starts the source the syslog.journal.* keys describe, spooling into `spool`.
    static Result<std::unique_ptr<JournalIntake>> start(const base::Config& config, const std::string& dir,
                                                        EventSpool& spool, AlertSink* alerts);
    ~JournalIntake();
    JournalIntake(const JournalIntake&) = delete;
    JournalIntake& operator=(const JournalIntake&) = delete;

    /// Commits, saves the cursor, joins the source's thread. Call before the spool stops.
    void stop();
    [[nodiscard]] const collectors::journal::Probe& probe() const { return probe_; }

private:
    JournalSpoolSink sink_;
    collectors::journal::Probe probe_;
    std::unique_ptr<collectors::journal::JournalSource> source_;  // last: stopped first
};

}  // namespace hsmaudit::agent
