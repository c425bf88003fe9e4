// ExportRunner: drives one destination. It owns the destination's Exporter, its EventSource (a
// reader of the store's streams) and its durable cursor, and runs them on one owned thread:
//
//   read events after the cursor (each subscribed stream in turn) -> filter -> Exporter::send
//   -> Exporter::acknowledged -> advance the cursor over the acknowledged prefix -> persist it
//
// Events the filter drops count as delivered (the cursor moves over them). On any failure of the
// destination (connect, send, acknowledgements, ack timeout) the runner disconnects, raises exporter.down (once), backs
// off (capped exponential with jitter), reconnects and resends every event after the acknowledged prefix; exporter.up
// when delivery works again. The cursor file is written atomically (fsync, rename) at most every `cursor_sync` and at
// stop, so a crash redelivers at most what was acknowledged since the last write plus what was in flight:
// at-least-once, duplicates identifiable by Event::event_id.
//
// Faults that are not the destination's never disconnect it:
//   * a cursor write that fails (ENOSPC, EIO) is counted (RunnerStats::cursor_write_failures),
//     logged at most every `log_interval`, and retried with back-off (cursor_retry_initial ..
//     cursor_retry_max); delivery goes on, since the cursor in memory is right and a stale file
//     only means more duplicates after a crash (the at-least-once bound);
//   * a store read that fails (damaged or unreadable, errc::store_damaged / store_unreadable,
//     policy in store_source.h) holds that stream only, retried with the back-off of
//     backoff_initial .. backoff_max; the source alerts the damaged place (store.damaged).
// The thread body has a last resort: an exception stops this destination with a critical
// `exporter.failed` alert; it never ends the agent.
//
// A reload that removes or rebuilds the destination stops it with StopMode::in_flight_only: it
// sends nothing more and waits (up to stop_timeout) for the acknowledgements of what is in flight,
// then writes its cursor; a rebuilt destination's new runner resumes at that cursor
// (RunnerOptions::resume), so what was in flight and not acknowledged is the only resend.
//
// Cursor file <state>/export/<name>/cursor (JSON, 0600):
//   {"version":1,"audit":<seq>,"syslog":<line>,"alerts":<line>,"checkpoints":<line>}
// A destination without a cursor file starts at the oldest event the store still holds
// (`exporters.<name>.start: oldest`) or after the newest (`newest`).
//
// Thread-safety: start()/stop() from the owner's thread; stats() and delivered() from any
// thread; run_once() only when the thread is not started (tests).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/api/doorbell.h"
#include "agent/api/event.h"
#include "agent/api/exporter.h"
#include "agent/api/latency_histogram.h"
#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::agent {

/// The cursor file's format (its one owner: the runner writes it and reads it back at start;
/// nothing else reads it, the archiver and retention ask the runners in memory). Positions are
/// indexed by Stream (kAllStreams order).
struct CursorFileContents {
    bool is_cursor_file = false;                              // a JSON object with "version": 1
    std::string bad_key;                                      // a stream whose value is no position ("" if none)
    std::array<std::optional<std::uint64_t>, 4> positions{};  // the streams the file names
};
CursorFileContents parse_cursor_file(std::string_view text);
/// The file's text for `positions` (every stream), one line.
std::string render_cursor_file(const std::array<std::uint64_t, 4>& positions);

/// What a reader met in the store (damage it alerted and skipped, store_source.h).
struct SourceHealth {
    std::uint64_t damaged_places = 0;   // damaged or unreadable places met
    std::uint64_t skipped_records = 0;  // audit records skipped past damage (announced in store.damaged alerts)
};

/// Where a runner reads events: the store's streams, after a position. An error from read() is
/// the store's (errc::store_damaged, errc::store_unreadable), never the destination's: the
/// runner holds that stream and retries it with back-off, keeping its receiver connected.
/// Thread-safety: used by one runner's thread only.
class EventSource {
public:
    virtual ~EventSource() = default;
    /// Appends to `out`, in order, up to `max` events of `stream` whose position is > `after`.
    /// Returns how many were appended (0: none yet). Positions may skip (a syslog spool segment
    /// deleted by its quota); the audit stream never skips within the store.
    virtual Result<std::size_t> read(Stream stream, std::uint64_t after, std::size_t max, std::vector<Event>& out) = 0;
    /// The newest position of `stream` the store holds (0 if empty): the lag's reference.
    virtual Result<std::uint64_t> newest(Stream stream) = 0;
    /// The position just before the oldest event of `stream` the store still holds (a new
    /// destination starting at `oldest` begins after it).
    virtual Result<std::uint64_t> before_oldest(Stream stream) = 0;
    [[nodiscard]] virtual SourceHealth health() const { return {}; }
};

struct RunnerOptions {
    std::string name;                                      // the destination ("exporters.<name>")
    std::array<bool, 4> streams{true, false, true, true};  // indexed by Stream
    int max_severity = 7;                                  // deliver events whose syslog_severity() <= this (0..7)
    std::vector<std::string> classes;                      // audit event classes to deliver; empty: all
    bool start_newest = false;                             // without a cursor file: skip what is stored already
    std::size_t batch = 512;                               // events per send()
    std::chrono::milliseconds backoff_initial{500};
    std::chrono::milliseconds backoff_max{30'000};
    /// Idle (nothing new read, nothing acknowledged): the longest wait before looking again. New
    /// events end the wait at once when `store_appended` rings (the drain's commits), and so do
    /// acknowledgements from an exporter that rings (Exporter::attach_doorbell); otherwise this is
    /// also the longest an acknowledgement or a new event waits to be noticed.
    std::chrono::milliseconds idle_wait{50};
    std::chrono::milliseconds cursor_sync{250};     // write the cursor file at most this often
    std::chrono::milliseconds stop_timeout{5'000};  // at stop: wait this long for outstanding acks
    std::size_t max_in_flight = 10'000;
    /// Events in flight and no acknowledgement for this long: the destination counts as down
    /// (exporter.down, reconnect, resend), even if its transport has not noticed (a broker that
    /// came back but does not answer, a receiver that stopped reading).
    std::chrono::milliseconds ack_timeout{30'000};  // events sent and not yet acknowledged (memory bound)
    std::string cursor_path;                        // "" : keep the cursor in memory only (tests)
    /// After a failed cursor write: retry after this, doubling per failure up to cursor_retry_max.
    std::chrono::milliseconds cursor_retry_initial{1'000};
    std::chrono::milliseconds cursor_retry_max{30'000};
    /// A repeated error (cursor writes, store reads) is logged at most this often.
    std::chrono::milliseconds log_interval{60'000};
    /// The cursor file's writes (tests inject ENOSPC and EIO here); never null.
    base::FileSystem* file_system = &base::posix_file_system();
    /// Resume here instead of reading the cursor file: a destination a reload rebuilt with new
    /// settings continues where its previous runner stopped (its final cursor in memory, which is
    /// ahead of the file when the last cursor write failed). Unset: the cursor file, or `start`.
    struct Resume {
        std::array<std::uint64_t, 4> cursor{};   // acknowledged through, per stream
        std::array<std::uint64_t, 4> durable{};  // as the cursor file holds it
    };
    std::optional<Resume> resume;
    /// Rung after each commit of the store (the drain's): the runner adds its doorbell at start()
    /// and removes it at stop(). Null: new events are noticed within idle_wait (tests, tools).
    DoorbellSet* store_appended = nullptr;
};

/// Whether a destination with these options delivers `e` (min_severity, classes); the runner
/// skips the others (they count as delivered). `hsmaudit tap` applies the same filter.
bool event_wanted(const RunnerOptions& options, const Event& e);

enum class RunnerState : std::uint8_t { starting, up, down, stopped };
std::string_view to_string(RunnerState s);

struct RunnerStats {
    RunnerState state = RunnerState::starting;
    std::array<std::uint64_t, 4> cursor{};     // delivered through this position, per stream
    std::array<std::uint64_t, 4> durable{};    // the cursor as its file holds it (what a restart resumes at)
    std::array<std::uint64_t, 4> newest{};     // the store's newest position, per stream
    std::array<std::uint64_t, 4> delivered{};  // events acknowledged since start, per stream
    std::uint64_t filtered = 0;                // events the filter skipped (counted delivered)
    std::uint64_t sent = 0;                    // send() calls' events, resends included
    std::uint64_t resent = 0;                  // events sent again after a failure
    std::uint64_t failures = 0;                // connect or transport failures
    std::uint64_t in_flight = 0;               // sent, not yet acknowledged
    std::int64_t last_delivered_event_ms = 0;  // time of the newest event acknowledged
    std::int64_t last_delivery_ms = 0;         // wall clock of the last acknowledgement
    std::string last_error;                    // the destination's last failure (UTF-8 safe)
    std::uint64_t cursor_write_failures = 0;   // cursor file writes that failed (ENOSPC, EIO...)
    std::string cursor_error;                  // the last one's error ("" once a write succeeds again)
    std::uint64_t store_read_failures = 0;     // reads of the store that failed (the stream held, retried)
    std::array<bool, 4> store_held{};          // per stream: held at a damaged or unreadable place
    std::string store_error;                   // the last store read error ("" once reads work again)
    SourceHealth source;                       // damage the reader met and skipped
    std::int64_t oldest_undelivered_ms = 0;    // time of the oldest event not yet delivered (0: none known)
    std::int64_t now_ms = 0;                   // when these stats were taken
    TransportStats transport;
    /// Events the store holds that this destination has not delivered, over its streams.
    [[nodiscard]] std::uint64_t lag_records() const;
    /// Age in seconds of the oldest event not yet delivered (0 when caught up).
    [[nodiscard]] double lag_seconds() const;
};

class ExportRunner {
public:
    using NowMs = std::function<std::int64_t()>;

    /// Loads the cursor file (creating nothing yet). An error if it exists and is damaged: the
    /// destination then does not start rather than resend or skip the whole store.
    static Result<std::unique_ptr<ExportRunner>> open(RunnerOptions options, std::unique_ptr<Exporter> exporter,
                                                      std::unique_ptr<EventSource> source, AlertSink& alerts,
                                                      NowMs now_ms);
    ~ExportRunner();
    ExportRunner(const ExportRunner&) = delete;
    ExportRunner& operator=(const ExportRunner&) = delete;

    /// How stop() ends delivery.
    enum class StopMode : std::uint8_t {
        /// At shutdown (the drain has stopped): deliver what is stored and outstanding.
        deliver_stored,
        /// A reload removes or rebuilds the destination (the drain goes on): send nothing more, only
        /// wait for the acknowledgements of what is in flight; the rest is read again after the cursor.
        in_flight_only,
    };

    void start();
    /// Waits up to stop_timeout for outstanding acknowledgements (and, deliver_stored, delivers
    /// what is stored), disconnects, writes the cursor, joins the thread. Then stats() holds the
    /// final cursor.
    void stop(StopMode mode = StopMode::deliver_stored);

    /// One step (read, send, collect acks); returns false when there was nothing to do.
    Result<bool> run_once();

    [[nodiscard]] RunnerStats stats() const;
    /// The acknowledged position of `stream`.
    [[nodiscard]] std::uint64_t delivered_through(Stream stream) const;
    /// The acknowledged position of `stream` as the cursor file holds it: what a restart resumes
    /// at, so what the archiver and retention may rely on (it lags delivered_through() by up to
    /// cursor_sync, or longer while cursor writes fail).
    [[nodiscard]] std::uint64_t durable_through(Stream stream) const;
    [[nodiscard]] const RunnerOptions& options() const { return options_; }
    /// Seconds from an audit record's creation (module clock) to its acknowledgement here.
    [[nodiscard]] const LatencyHistogram& delivery_latency() const { return delivery_latency_; }

private:
    ExportRunner(RunnerOptions options, std::unique_ptr<Exporter> exporter, std::unique_ptr<EventSource> source,
                 AlertSink& alerts, NowMs now_ms);
    void loop(const std::stop_token& stop);
    void run_thread(std::stop_token stop);
    Result<bool> read_more();
    void hold_stream(Stream s, const Error& e);
    Status send_unsent();
    Result<bool> collect_acks(std::chrono::milliseconds wait);
    void fail(const Error& e);
    Status write_cursor(bool force);
    [[nodiscard]] bool wanted(const Event& e) const;
    void publish();

    /// Events read from one stream in one read, the wanted ones kept for sending.
    struct Batch {
        Stream stream = Stream::audit;
        std::vector<Event> events;  // wanted, in order
        std::uint64_t through = 0;  // the last position read (wanted or filtered)
        std::size_t acked = 0;      // events[0, acked) are delivered
        bool sent = false;          // sent on the current connection
    };

    RunnerOptions options_;
    // Before exporter_: an exporter may ring it from its transport's threads until it is destroyed.
    Doorbell bell_;
    bool waits_on_doorbell_ = false;  // never inside acknowledged(): the exporter rings bell_ or needs no wait
    std::unique_ptr<Exporter> exporter_;
    std::unique_ptr<EventSource> source_;
    AlertSink& alerts_;
    NowMs now_ms_;
    std::mt19937_64 jitter_;

    // Runner thread only.
    bool connected_ = false;
    bool down_alerted_ = false;
    bool proven_ = false;  // the current connection has delivered (or had nothing to deliver)
    std::chrono::milliseconds backoff_{0};
    std::int64_t retry_at_ms_ = 0;
    std::array<std::uint64_t, 4> cursor_{};    // delivered through, per stream
    std::array<std::uint64_t, 4> read_pos_{};  // read through, per stream
    std::array<std::uint64_t, 4> durable_{};   // as the cursor file holds it
    std::size_t next_stream_ = 0;              // round-robin over the subscribed streams
    std::deque<Batch> unacked_;
    std::size_t unacked_events_ = 0;
    std::uint64_t acked_on_connection_ = 0;
    std::int64_t cursor_written_ms_ = 0;
    bool cursor_dirty_ = false;
    std::chrono::milliseconds cursor_backoff_{0};  // after failed cursor writes
    std::int64_t cursor_retry_at_ms_ = 0;
    std::int64_t cursor_logged_ms_ = 0;                         // rate limit of the cursor write warnings
    std::uint64_t cursor_unlogged_ = 0;                         // failures since the last warning
    std::array<std::chrono::milliseconds, 4> store_backoff_{};  // per stream, while held
    std::array<std::int64_t, 4> store_retry_at_ms_{};
    std::int64_t store_logged_ms_ = 0;
    std::uint64_t store_unlogged_ = 0;
    std::int64_t newest_checked_ms_ = 0;
    std::int64_t ack_progress_ms_ = 0;  // when acknowledgements last advanced (or the connection opened)
    RunnerStats local_;                 // published to stats_ under the mutex
    LatencyHistogram delivery_latency_;

    mutable std::mutex mutex_;
    RunnerStats stats_;
    std::atomic<bool> in_flight_only_{false};  // stop(): how the loop ends delivery
    std::jthread thread_;
};

}  // namespace hsmaudit::agent
