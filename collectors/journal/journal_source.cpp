#include "collectors/journal/journal_source.h"

#include <poll.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <optional>

#include "base/logger.h"
#include "collectors/journal/cursor_file.h"
#include "collectors/journal/entry_mapping.h"
#include "collectors/journal/errc.h"

namespace hsmaudit::collectors::journal {
namespace {

using Clock = std::chrono::steady_clock;

std::string sd_error(int r) {
    return std::strerror(r < 0 ? -r : r);
}

bool valid_field_name(std::string_view f) {
    if (f.empty() || f.size() > 64 || (f[0] >= '0' && f[0] <= '9')) return false;
    for (const char c : f)
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

struct JournalCloser {
    void operator()(sd_journal* j) const noexcept { sd_journal_close(j); }
};
using JournalPtr = std::unique_ptr<sd_journal, JournalCloser>;

struct FreeCloser {
    // sd_journal_get_cursor's string is malloc'ed: free(3) is its owner's API.
    void operator()(char* p) const noexcept {
        std::free(p);  // NOLINT(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
    }
};

}  // namespace

Status validate(const JournalOptions& o) {
    for (const auto& u : o.units)
        if (u.empty() || u.find('\n') != std::string::npos)
            return make_error(errc::invalid_argument, "an empty or multi-line unit name");
    for (const auto& m : o.matches) {
        const auto eq = m.find('=');
        if (eq == std::string::npos || !valid_field_name(std::string_view(m).substr(0, eq)))
            return make_error(errc::invalid_argument,
                              "match '" + m + "' is not FIELD=value (FIELD: upper-case letters, digits, '_')");
    }
    if (o.max_priority < 0 || o.max_priority > 7)
        return make_error(errc::invalid_argument, "the priority floor must be 0..7");
    if (o.max_message_bytes == 0) return make_error(errc::invalid_argument, "max_message_bytes must be positive");
    return {};
}

/// Everything the source's thread does; it lives on that thread and is the only user of the journal.
class JournalSource::Reader {
public:
    explicit Reader(JournalSource& s) : s_(s), o_(s.options_), probe_(s.probe_) {
        mapping_.max_message_bytes = o_.max_message_bytes;
        mapping_.peer = o_.directory.empty() ? "journal" : "journal:" + o_.directory;
    }

    Status open() {
        sd_journal* j = nullptr;
        const int r = o_.directory.empty() ? sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM)
                                           : sd_journal_open_directory(&j, o_.directory.c_str(), 0);
        if (r < 0)
            return make_error(errc::open_failed, "cannot open the journal" +
                                                     (o_.directory.empty() ? std::string{} : " in " + o_.directory) +
                                                     ": " + sd_error(r));
        j_.reset(j);
        if (sd_journal_has_runtime_files(j) <= 0 && sd_journal_has_persistent_files(j) <= 0)
            base::logger().warn("no journal files {} are readable yet{}",
                                o_.directory.empty() ? std::string("of the system journal") : "in " + o_.directory,
                                o_.directory.empty() ? " (is the agent's user in the systemd-journal group?)" : "");
        // A MESSAGE longer than the maximum is cut anyway; one byte more tells that it was longer.
        (void)sd_journal_set_data_threshold(j, o_.max_message_bytes + 1);
        // Installs the change notification now, so nothing written from here on goes unnoticed.
        fd_ = sd_journal_get_fd(j);
        if (auto st = add_matches(); !st) return st;
        return {};
    }

    /// The saved cursor, else options.start.
    void position() {
        std::optional<std::string> saved;
        if (!o_.cursor_file.empty()) {
            auto read = read_cursor_file(o_.cursor_file);
            if (read) {
                saved = std::move(*read);
            } else {
                // Fail-safe: reading the selected entries again from the oldest the journal holds duplicates
                // some; skipping to the tail could lose them.
                Probe::add(probe_.cursor_damaged);
                alert("journal.cursor_damaged", agent::Severity::warning,
                      read.error().describe() +
                          "; reading the selected journal entries again from the oldest one the journal holds "
                          "(duplicates, never a gap)");
                seek_head();
                return;
            }
        }
        if (saved) {
            s_.set_saved(*saved);
            resume(*saved);
            return;
        }
        if (o_.start == StartAt::tail && sd_journal_seek_tail(j()) >= 0 && sd_journal_previous(j()) > 0) {
            // On the newest selected entry: it counts as read, and its cursor is saved at the first commit.
            if (auto c = cursor()) {
                last_cursor_ = *c;
                dirty_ = true;
                return;
            }
        }
        seek_head();  // "head", or an empty journal (whatever comes is new)
    }

    void loop() {
        auto last_commit = Clock::now();
        while (!s_.stopping_.load(std::memory_order_acquire)) {
            if (dirty_ && Clock::now() - last_commit >= o_.cursor_sync) {
                commit_and_save();
                last_commit = Clock::now();
            }
            int r = 1;
            if (!current_pending_) {
                r = sd_journal_next(j());
            }
            current_pending_ = false;
            if (r < 0) {
                read_failed("sd_journal_next: " + sd_error(r));
                continue;
            }
            if (r == 0) {
                if (dirty_) {
                    commit_and_save();  // caught up: make the position durable now
                    last_commit = Clock::now();
                }
                wait_for_change(last_commit);
                continue;
            }
            if (!deliver_current()) continue;  // stopping, or a read error (counted, retried)
            read_recovered();
        }
        if (dirty_) commit_and_save();
    }

private:
    sd_journal* j() const { return j_.get(); }

    Status add_matches() {
        for (const auto& u : o_.units) {
            const std::string m = "_SYSTEMD_UNIT=" + u;
            if (const int r = sd_journal_add_match(j(), m.data(), m.size()); r < 0)
                return make_error(errc::invalid_argument, "journal match '" + m + "': " + sd_error(r));
        }
        for (const auto& m : o_.matches) {
            if (const int r = sd_journal_add_match(j(), m.data(), m.size()); r < 0)
                return make_error(errc::invalid_argument, "journal match '" + m + "': " + sd_error(r));
        }
        return {};
    }

    std::optional<std::string> cursor() const {
        char* c = nullptr;
        if (sd_journal_get_cursor(j(), &c) < 0 || c == nullptr) return std::nullopt;
        const std::unique_ptr<char, FreeCloser> owned(c);
        return std::string(c);
    }

    void seek_head() {
        (void)sd_journal_seek_head(j());
        current_pending_ = false;
    }

    /// Whether the entry at `c` is still in the journal, whatever the matches select.
    bool entry_exists(const std::string& c) {
        sd_journal_flush_matches(j());
        bool found = false;
        if (sd_journal_seek_cursor(j(), c.c_str()) >= 0 && sd_journal_next(j()) > 0)
            found = sd_journal_test_cursor(j(), c.c_str()) > 0;
        (void)add_matches();  // validated at open: cannot fail now
        return found;
    }

    /// Positions reading just after the entry at `c`; if that entry is gone (the journal was rotated
    /// away or vacuumed, or it is another machine's journal), alerts the possible gap and reads the
    /// selected entries from the oldest that remains.
    void resume(const std::string& c) {
        bool exists = entry_exists(c);
        if (!exists && sleep_for(std::chrono::milliseconds(100))) {
            // A rotation is a rename and a new file: the renamed file may not be taken in yet.
            (void)sd_journal_process(j());
            exists = entry_exists(c);
        }
        if (!exists) {
            Probe::add(probe_.gaps);
            alert(
                "journal.gap", agent::Severity::critical,
                "the journal entry at the cursor (the last read or saved) is no longer in the journal (rotated away or "
                "vacuumed): "
                "reading the selected entries again from the oldest one that remains; entries written after "
                "the cursor and deleted since may be missing");
            // Nothing left to check against until the next entry is read: one alert per gap.
            last_cursor_.clear();
            dirty_ = false;
            seek_head();
            return;
        }
        if (sd_journal_seek_cursor(j(), c.c_str()) < 0) {
            seek_head();
            return;
        }
        const int r = sd_journal_next(j());
        // On the entry itself: it was delivered; else on the first selected entry after it (the
        // selection changed since): that one is new.
        current_pending_ = r > 0 && sd_journal_test_cursor(j(), c.c_str()) <= 0;
    }

    /// Reads the current entry, filters, offers it until taken. False if it was not consumed.
    bool deliver_current() {
        auto c = cursor();
        if (!c) {
            read_failed("sd_journal_get_cursor failed");
            return false;
        }
        RawEntry e;
        std::uint64_t usec = 0;
        if (sd_journal_get_realtime_usec(j(), &usec) >= 0) e.realtime_usec = usec;
        for (const auto name : mapped_fields()) {
            const void* data = nullptr;
            std::size_t len = 0;
            const std::string key(name);
            if (sd_journal_get_data(j(), key.c_str(), &data, &len) < 0 || data == nullptr) continue;
            const std::string_view field(static_cast<const char*>(data), len);
            if (field.size() <= name.size() || field[name.size()] != '=') continue;
            e.fields.emplace_back(key, std::string(field.substr(name.size() + 1)));
        }
        if (const auto* p = e.find("PRIORITY")) {
            if (const auto prio = parse_priority(*p); prio && *prio > o_.max_priority) {
                Probe::add(probe_.skipped);
                last_cursor_ = std::move(*c);
                dirty_ = true;
                return true;
            }
        }
        MappingNotes notes;
        const auto message = map_entry(e, mapping_, &notes);
        auto pause = std::chrono::milliseconds(10);
        while (!s_.sink_.offer(message)) {
            Probe::add(probe_.refused);
            if (!sleep_for(pause)) {
                current_pending_ = true;  // not delivered: the saved cursor stays before it
                return false;
            }
            pause = std::min(pause * 2, o_.wait_interval);
        }
        Probe::add(probe_.received);
        if (notes.oversized) Probe::add(probe_.oversized);
        if (notes.escaped) Probe::add(probe_.escaped);
        last_cursor_ = std::move(*c);
        dirty_ = true;
        return true;
    }

    /// Commits the sink, then saves the cursor of the last entry read. A failure keeps the old cursor
    /// (the next start reads those entries again: duplicates, never a gap) and is retried next interval.
    void commit_and_save() {
        if (last_cursor_.empty()) {
            dirty_ = false;
            return;
        }
        Status st = s_.sink_.commit();
        if (st && !o_.cursor_file.empty()) st = write_cursor_file(o_.cursor_file, last_cursor_, *o_.fs);
        if (!st) {
            Probe::add(probe_.cursor_save_failures);
            if (!save_failing_) {
                save_failing_ = true;
                alert("journal.cursor_save_failed", agent::Severity::warning,
                      st.error().describe() +
                          "; the previous cursor stays (after a restart the entries read since are read again)");
            }
            return;
        }
        if (!o_.cursor_file.empty()) Probe::add(probe_.cursor_saves);
        s_.set_saved(last_cursor_);
        dirty_ = false;
        if (save_failing_) {
            save_failing_ = false;
            alert("journal.cursor_saved", agent::Severity::info, "the journal cursor is saved again");
        }
    }

    void read_failed(const std::string& what) {
        Probe::add(probe_.read_errors);
        if (!read_failing_) {
            read_failing_ = true;
            alert("journal.read_failed", agent::Severity::critical,
                  "reading the journal failed (" + what + "); retrying from the last entry read");
        }
        if (!sleep_for(o_.wait_interval)) return;
        // Back to where we were, as after a restart.
        (void)sd_journal_process(j());
        if (!last_cursor_.empty()) {
            resume(last_cursor_);
        } else {
            seek_head();
        }
    }

    void read_recovered() {
        if (!read_failing_) return;
        read_failing_ = false;
        alert("journal.read_recovered", agent::Severity::info, "the journal is read again");
    }

    /// Waits for the journal to change (or a stop, or the next cursor sync); then lets sd-journal take the
    /// change in. Files removed or added (rotation, vacuum): check that the last entry read is still there.
    void wait_for_change(Clock::time_point last_commit) {
        auto timeout = o_.wait_interval;
        if (dirty_) {
            const auto due =
                std::chrono::duration_cast<std::chrono::milliseconds>(last_commit + o_.cursor_sync - Clock::now());
            timeout = std::clamp(due, std::chrono::milliseconds(0), timeout);
        }
        std::uint64_t until = 0;
        if (sd_journal_get_timeout(j(), &until) >= 0 && until != UINT64_MAX) {
            timespec now{};
            clock_gettime(CLOCK_MONOTONIC, &now);
            const auto now_us =
                static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
            const auto left = std::chrono::milliseconds(until > now_us ? (until - now_us + 999) / 1000 : 0);
            timeout = std::min(timeout, left);
        }
        pollfd fds[2] = {{s_.waker_.fd(), POLLIN, 0}, {fd_, static_cast<short>(POLLIN), 0}};
        if (fd_ >= 0) {
            const int ev = sd_journal_get_events(j());
            fds[1].events = static_cast<short>(ev > 0 ? ev : POLLIN);
        }
        (void)::poll(fds, fd_ >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
        if (s_.stopping_.load(std::memory_order_acquire)) return;
        const int r = sd_journal_process(j());
        if (r == SD_JOURNAL_INVALIDATE && !last_cursor_.empty()) resume(last_cursor_);
    }

    /// Sleeps, woken by stop; false if stopping.
    bool sleep_for(std::chrono::milliseconds d) {
        pollfd fd{s_.waker_.fd(), POLLIN, 0};
        (void)::poll(&fd, 1, static_cast<int>(d.count()));
        return !s_.stopping_.load(std::memory_order_acquire);
    }

    void alert(const char* kind, agent::Severity severity, const std::string& message) {
        if (o_.alerts == nullptr) {
            auto& log = base::logger();
            if (severity == agent::Severity::info)
                log.info("{}: {}", kind, message);
            else
                log.warn("{}: {}", kind, message);
            return;
        }
        const auto now =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        o_.alerts->alert(agent::Alert{kind, severity, message, 0, now});
    }

    JournalSource& s_;
    const JournalOptions& o_;
    Probe& probe_;
    MappingOptions mapping_;
    JournalPtr j_;
    int fd_ = -1;
    std::string last_cursor_;       // the last entry read (delivered or skipped)
    bool dirty_ = false;            // last_cursor_ is not yet saved
    bool current_pending_ = false;  // the journal is on an entry not yet consumed: no sd_journal_next first
    bool save_failing_ = false;
    bool read_failing_ = false;
};

JournalSource::JournalSource(JournalOptions options, JournalSink& sink, Probe& probe)
    : options_(std::move(options)), sink_(sink), probe_(probe) {}

Result<std::unique_ptr<JournalSource>> JournalSource::start(JournalOptions options, JournalSink& sink, Probe& probe) {
    HSMAUDIT_TRY(validate(options));
    std::unique_ptr<JournalSource> s(new JournalSource(std::move(options), sink, probe));
    if (!s->waker_.valid()) return make_error(errc::open_failed, std::string("eventfd: ") + std::strerror(errno));
    std::promise<Status> opened;
    auto ready = opened.get_future();
    JournalSource* self = s.get();
    // The thread owns the promise: it stays alive until set_value has returned, whatever start() does.
    s->thread_ = std::jthread([self, opened = std::move(opened)]() mutable {
        bool told = false;
        std::string failure;
        try {
            Reader reader(*self);
            Status st = reader.open();
            const bool ok = st.has_value();
            if (ok) reader.position();
            opened.set_value(std::move(st));
            told = true;
            if (ok) reader.loop();
        } catch (const std::exception& e) {
            failure = std::string("journal source: ") + e.what();
        } catch (...) {
            failure = "journal source: unknown exception";
        }
        if (failure.empty()) return;
        Probe::add(self->probe_.thread_failures);
        if (!told) {
            opened.set_value(make_error(errc::open_failed, failure));
            return;
        }
        try {
            if (self->options_.on_failure) self->options_.on_failure(failure);
        } catch (...) {
        }
    });
    if (auto st = ready.get(); !st) {
        s->thread_.join();
        return std::move(st).error();
    }
    return s;
}

JournalSource::~JournalSource() {
    stop();
}

void JournalSource::stop() {
    stopping_.store(true, std::memory_order_release);
    waker_.wake();
    if (thread_.joinable()) thread_.join();
}

void JournalSource::set_saved(std::string cursor) {
    std::lock_guard lock(mutex_);
    saved_cursor_ = std::move(cursor);
}

std::string JournalSource::saved_cursor() const {
    std::lock_guard lock(mutex_);
    return saved_cursor_;
}

}  // namespace hsmaudit::collectors::journal
