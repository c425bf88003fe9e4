// JournalSource: reads the systemd journal through libsystemd's sd-journal API (selected units,
// matches, a priority floor), maps each entry to a collectors::syslog::SyslogMessage
// (entry_mapping.h) and hands it to a JournalSink; saves its cursor (cursor_file.h) only after the
// sink has made what it took durable, so a restart resumes with no loss and at most the entries
// of the last cursor_sync interval again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/api/alerts.h"
#include "base/file_system.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "collectors/journal/probe.h"
#include "collectors/syslog/message.h"

namespace hsmaudit::collectors::journal {

/// Where reading begins when there is no cursor file (the first start).
enum class StartAt : std::uint8_t { head, tail };

/// What to read and how. A value type, read once by start().
struct JournalOptions {
    /// A directory of journal files (sd_journal_open_directory); "" reads the local system journal
    /// (sd_journal_open with SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM: system services and the kernel).
    std::string directory;
    /// _SYSTEMD_UNIT=<unit> matches; more matches, "FIELD=value". sd-journal's rule combines them: matches
    /// of one field are alternatives (OR), matches of different fields must all hold (AND). None: every entry.
    std::vector<std::string> units;
    std::vector<std::string> matches;
    /// Entries with a PRIORITY above this (less severe) are read and skipped; entries without one are kept.
    int max_priority = 7;
    StartAt start = StartAt::head;
    /// Where the cursor is saved ("" = nowhere: every start is a first start).
    std::string cursor_file;
    std::size_t max_message_bytes = std::size_t{64} * 1024;
    /// At most this long between a delivered entry and the commit + cursor save that covers it.
    std::chrono::milliseconds cursor_sync{1000};
    /// The longest wait for journal changes (and the pause after a read error or a refused entry).
    std::chrono::milliseconds wait_interval{1000};
    /// The cursor file is written through this (tests inject faults).
    base::FileSystem* fs = &base::posix_file_system();
    /// journal.cursor_damaged, journal.gap, journal.read_failed / read_recovered, journal.cursor_save_failed /
    /// cursor_saved; null: logged only. Called from the source's thread; must outlive the source.
    agent::AlertSink* alerts = nullptr;
    /// Told once, from the thread, if an exception ended it (the owner alerts); the source then stopped.
    std::function<void(const std::string&)> on_failure;
};

/// Checks options (matches are FIELD=value with an upper-case field name, units non-empty) before a start.
Status validate(const JournalOptions& options);

/// Where a JournalSource delivers. Called from the source's one thread only.
class JournalSink {
public:
    virtual ~JournalSink() = default;
    /// Takes one message (true) or refuses it for now (false: a full queue); the source then offers the
    /// same message again after a pause, and reads nothing further meanwhile (the journal keeps it).
    virtual bool offer(const syslog::SyslogMessage& message) = 0;
    /// Makes every message taken so far durable. The cursor is saved only after this succeeded.
    virtual Status commit() = 0;
};

/// One journal reader on its own thread (sd_journal objects are used from that thread only).
/// Thread-safety: stop(), saved_cursor() and the probe from any thread; the sink is called from the
/// source's thread. The sink and the probe must outlive the source.
class JournalSource {
public:
    /// Opens the journal (on the new thread), positions it (the saved cursor, else options.start) and starts
    /// following. An error if the options are invalid or the journal cannot be opened.
    static Result<std::unique_ptr<JournalSource>> start(JournalOptions options, JournalSink& sink, Probe& probe);
    ~JournalSource();
    JournalSource(const JournalSource&) = delete;
    JournalSource& operator=(const JournalSource&) = delete;

    /// Commits what was delivered, saves the cursor, stops and joins the thread; idempotent.
    void stop();
    /// The cursor last saved to the cursor file ("" if none yet).
    [[nodiscard]] std::string saved_cursor() const;

private:
    class Reader;
    JournalSource(JournalOptions options, JournalSink& sink, Probe& probe);
    void set_saved(std::string cursor);

    JournalOptions options_;
    JournalSink& sink_;
    Probe& probe_;
    Waker waker_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::string saved_cursor_;  // under mutex_
    std::jthread thread_;       // last: joined first
    friend class Reader;
};

}  // namespace hsmaudit::collectors::journal
