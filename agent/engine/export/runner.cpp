#include "agent/engine/export/runner.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "base/files.h"
#include "base/logger.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

std::size_t idx(Stream s) {
    return static_cast<std::size_t>(s);
}

/// `text` as valid UTF-8 (invalid bytes replaced by U+FFFD): error strings carry bytes from the
/// network and disk, and end in JSON (status.json, `hsmaudit status --json`) whose dump throws
/// on invalid UTF-8.
std::string utf8_safe(const std::string& text) {
    try {
        const auto quoted = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return nlohmann::json::parse(quoted).get<std::string>();
    } catch (const std::exception&) {
        return "(unprintable error text)";
    }
}

/// Delivery latency buckets, seconds: from a caught-up destination (tens of ms) to an outage.
constexpr double kDeliveryLatencyBounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600};

}  // namespace

std::string_view to_string(RunnerState s) {
    switch (s) {
        case RunnerState::starting: return "starting";
        case RunnerState::up: return "up";
        case RunnerState::down: return "down";
        case RunnerState::stopped: return "stopped";
    }
    return "?";
}

std::uint64_t RunnerStats::lag_records() const {
    std::uint64_t lag = 0;
    for (std::size_t i = 0; i < cursor.size(); ++i)
        if (newest[i] > cursor[i]) lag += newest[i] - cursor[i];
    return lag;
}

double RunnerStats::lag_seconds() const {
    if (oldest_undelivered_ms == 0 || now_ms <= oldest_undelivered_ms) return 0;
    return static_cast<double>(now_ms - oldest_undelivered_ms) / 1000.0;
}

ExportRunner::ExportRunner(RunnerOptions options, std::unique_ptr<Exporter> exporter,
                           std::unique_ptr<EventSource> source, AlertSink& alerts, NowMs now_ms)
    : options_(std::move(options)),
      exporter_(std::move(exporter)),
      source_(std::move(source)),
      alerts_(alerts),
      now_ms_(std::move(now_ms)),
      jitter_(std::random_device{}()),
      delivery_latency_(kDeliveryLatencyBounds) {
    waits_on_doorbell_ = exporter_->attach_doorbell(&bell_) != Exporter::AckSignal::wait_inside;
}

ExportRunner::~ExportRunner() {
    stop();
}

CursorFileContents parse_cursor_file(std::string_view text) {
    CursorFileContents out;
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("version") || !j["version"].is_number_unsigned() ||
        j["version"].get<std::uint64_t>() != 1)
        return out;
    out.is_cursor_file = true;
    for (Stream s : kAllStreams) {
        const auto key = std::string(to_string(s));
        if (!j.contains(key)) continue;
        if (!j[key].is_number_unsigned()) {
            out.bad_key = key;
            return out;
        }
        out.positions[idx(s)] = j[key].get<std::uint64_t>();
    }
    return out;
}

std::string render_cursor_file(const std::array<std::uint64_t, 4>& positions) {
    nlohmann::json j = {{"version", 1}};
    for (Stream s : kAllStreams) j[std::string(to_string(s))] = positions[idx(s)];
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<std::unique_ptr<ExportRunner>> ExportRunner::open(RunnerOptions options, std::unique_ptr<Exporter> exporter,
                                                         std::unique_ptr<EventSource> source, AlertSink& alerts,
                                                         NowMs now_ms) {
    std::unique_ptr<ExportRunner> r(
        new ExportRunner(std::move(options), std::move(exporter), std::move(source), alerts, std::move(now_ms)));
    const std::string& path = r->options_.cursor_path;
    std::error_code ec;
    if (r->options_.resume) {
        // Rebuilt by a reload: where the previous runner of this destination stopped.
        r->cursor_ = r->options_.resume->cursor;
        r->read_pos_ = r->cursor_;
        r->durable_ = r->options_.resume->durable;
        r->cursor_dirty_ = r->durable_ != r->cursor_;  // its last write failed: write it again
        r->local_.cursor = r->cursor_;
        r->publish();
        return r;
    }
    if (!path.empty() && fs::exists(path, ec)) {
        auto text = base::read_file(path, std::size_t{64} * 1024);
        if (!text) return std::move(text).error();
        const CursorFileContents file = parse_cursor_file(*text);
        if (!file.is_cursor_file)
            return make_error(errc::io_error, path + " is not a cursor file (damaged?); the destination '" +
                                                  r->options_.name +
                                                  "' does not start rather than resend or skip the store. Remove "
                                                  "it to start over at exporters." +
                                                  r->options_.name + ".start");
        if (!file.bad_key.empty())
            return make_error(errc::io_error, path + ": '" + file.bad_key + "' is not a position (damaged?)");
        for (Stream s : kAllStreams)
            if (file.positions[idx(s)]) r->cursor_[idx(s)] = *file.positions[idx(s)];
    } else {
        // A new destination: start at the oldest event held, or after the newest.
        for (Stream s : kAllStreams) {
            if (!r->options_.streams[idx(s)]) continue;
            auto p = r->options_.start_newest ? r->source_->newest(s) : r->source_->before_oldest(s);
            if (!p) return std::move(p).error();
            r->cursor_[idx(s)] = *p;
        }
        r->cursor_dirty_ = true;
        // A failed write (disk full) is counted and retried by the runner: the position is
        // re-derived the same way if the agent stops before it is written.
        (void)r->write_cursor(true);
    }
    r->read_pos_ = r->cursor_;
    r->durable_ = r->cursor_;  // a new destination's first write may fail: a restart re-derives the same start
    r->local_.cursor = r->cursor_;
    r->publish();
    return r;
}

bool event_wanted(const RunnerOptions& o, const Event& e) {
    if (syslog_severity(e) > o.max_severity) return false;
    if (e.stream == Stream::audit && e.entry == EntryKind::record && !o.classes.empty())
        return std::find(o.classes.begin(), o.classes.end(), e.record.event_class) != o.classes.end();
    return true;
}

bool ExportRunner::wanted(const Event& e) const {
    return event_wanted(options_, e);
}

Result<bool> ExportRunner::read_more() {
    // Bounded memory: stop reading while enough is in flight or waiting to be sent.
    if (unacked_events_ >= options_.max_in_flight) return false;
    bool any = false;
    for (std::size_t tried = 0; tried < std::size(kAllStreams) && unacked_events_ < options_.max_in_flight; ++tried) {
        const Stream s = kAllStreams[next_stream_];
        next_stream_ = (next_stream_ + 1) % std::size(kAllStreams);
        if (!options_.streams[idx(s)]) continue;
        if (local_.store_held[idx(s)] && now_ms_() < store_retry_at_ms_[idx(s)]) continue;
        std::vector<Event> got;
        auto n = source_->read(s, read_pos_[idx(s)], options_.batch, got);
        if (!n) {
            // The store's fault, not the destination's: hold this stream only (the source alerted
            // the damaged place), keep the receiver connected, deliver the other streams.
            hold_stream(s, n.error());
            continue;
        }
        if (local_.store_held[idx(s)]) {
            local_.store_held[idx(s)] = false;
            store_backoff_[idx(s)] = std::chrono::milliseconds(0);
            if (std::none_of(local_.store_held.begin(), local_.store_held.end(), [](bool h) { return h; }))
                local_.store_error.clear();
            base::log_fields(spdlog::level::info, {{"HSMAUDIT_DESTINATION", options_.name}},
                             "exporter {}: the {} stream reads again", options_.name, to_string(s));
        }
        if (*n == 0) continue;
        Batch b;
        b.stream = s;
        b.through = got.back().position;
        read_pos_[idx(s)] = b.through;
        b.events.reserve(got.size());
        for (auto& e : got) {
            if (wanted(e))
                b.events.push_back(std::move(e));
            else
                ++local_.filtered;
        }
        unacked_events_ += b.events.size();
        unacked_.push_back(std::move(b));
        any = true;
    }
    return any;
}

void ExportRunner::hold_stream(Stream s, const Error& e) {
    const std::int64_t now = now_ms_();
    ++local_.store_read_failures;
    local_.store_error = utf8_safe(e.describe());
    auto& backoff = store_backoff_[idx(s)];
    backoff = backoff.count() == 0 ? options_.backoff_initial : std::min(backoff * 2, options_.backoff_max);
    store_retry_at_ms_[idx(s)] = now + backoff.count();
    const bool first = !local_.store_held[idx(s)];
    local_.store_held[idx(s)] = true;
    if (first || now - store_logged_ms_ >= options_.log_interval.count()) {
        base::log_fields(spdlog::level::err, {{"HSMAUDIT_DESTINATION", options_.name}},
                         "exporter {}: the {} stream holds: {} ({} more failed reads since the last message; retried "
                         "with back-off, the destination stays connected)",
                         options_.name, to_string(s), local_.store_error, store_unlogged_);
        store_logged_ms_ = now;
        store_unlogged_ = 0;
    } else {
        ++store_unlogged_;
    }
}

Status ExportRunner::send_unsent() {
    for (auto& b : unacked_) {
        if (b.sent) continue;
        if (b.events.size() > b.acked) {
            const std::span<const Event> rest(b.events.data() + b.acked, b.events.size() - b.acked);
            HSMAUDIT_TRY(exporter_->send(rest));
            local_.sent += rest.size();
        }
        b.sent = true;
    }
    return {};
}

Result<bool> ExportRunner::collect_acks(std::chrono::milliseconds wait) {
    bool progress = false;
    std::uint64_t fresh = 0;
    if (std::any_of(unacked_.begin(), unacked_.end(), [](const Batch& b) { return b.sent; })) {
        auto n = exporter_->acknowledged(wait);
        if (!n) return std::move(n).error();
        if (*n < acked_on_connection_)
            return make_error(errc::internal, "the exporter's acknowledged count went backwards");
        fresh = *n - acked_on_connection_;
        acked_on_connection_ = *n;
    }
    // Walk the batches in order: acknowledged events, then whole batches (filtered-only ones too).
    const std::int64_t now = now_ms_();
    auto latency = delivery_latency_.tally();
    while (!unacked_.empty()) {
        Batch& b = unacked_.front();
        if (!b.sent) break;
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(fresh, b.events.size() - b.acked));
        if (take > 0) {
            fresh -= take;
            if (b.stream == Stream::audit)
                for (std::size_t i = b.acked; i < b.acked + take; ++i)
                    if (b.events[i].entry == EntryKind::record)
                        delivery_latency_.count(latency, static_cast<double>(now - b.events[i].time_ms) / 1000.0);
            b.acked += take;
            unacked_events_ -= take;
            local_.delivered[idx(b.stream)] += take;
            const Event& last = b.events[b.acked - 1];
            cursor_[idx(b.stream)] = last.position;
            local_.last_delivered_event_ms = std::max(local_.last_delivered_event_ms, arrival_ms(last));
            local_.last_delivery_ms = now;
            cursor_dirty_ = true;
            progress = true;
        }
        if (b.acked < b.events.size()) break;
        if (cursor_[idx(b.stream)] != b.through) {
            cursor_[idx(b.stream)] = b.through;
            cursor_dirty_ = true;
            progress = true;
        }
        unacked_.pop_front();
    }
    if (!latency.empty()) delivery_latency_.add(latency);
    return progress;
}

void ExportRunner::fail(const Error& e) {
    ++local_.failures;
    local_.last_error = utf8_safe(e.describe());
    exporter_->disconnect();
    connected_ = false;
    proven_ = false;
    acked_on_connection_ = 0;
    for (auto& b : unacked_) {
        if (b.sent && b.events.size() > b.acked) local_.resent += b.events.size() - b.acked;
        b.sent = false;
    }
    backoff_ = backoff_.count() == 0 ? options_.backoff_initial : std::min(backoff_ * 2, options_.backoff_max);
    // Full jitter over the upper half: retries of many agents do not synchronise.
    std::uniform_int_distribution<std::int64_t> half(backoff_.count() / 2, backoff_.count());
    retry_at_ms_ = now_ms_() + half(jitter_);
    local_.state = RunnerState::down;
    if (!down_alerted_) {
        down_alerted_ = true;
        base::log_fields(spdlog::level::warn, {{"HSMAUDIT_DESTINATION", options_.name}},
                         "exporter {}: {}; retrying with back-off", options_.name, local_.last_error);
        alerts_.alert(Alert{"exporter.down", Severity::warning,
                            "destination '" + options_.name + "' is down: " + local_.last_error, 0, now_ms_()});
    }
}

Result<bool> ExportRunner::run_once() {
    const std::int64_t now = now_ms_();
    // The lag's reference, also (above all) while the destination is down.
    if (newest_checked_ms_ == 0 || now - newest_checked_ms_ >= 1000) {
        newest_checked_ms_ = now;
        for (Stream s : kAllStreams) {
            if (!options_.streams[idx(s)]) continue;
            if (auto n = source_->newest(s); n) local_.newest[idx(s)] = std::max(*n, cursor_[idx(s)]);
        }
    }
    if (!connected_) {
        // While down, hold the oldest undelivered events in memory (bounded): they are sent first
        // on reconnection, and their time is the lag's age.
        if (unacked_.empty()) (void)read_more();  // store errors hold the stream (read_more)
        if (now < retry_at_ms_) {
            publish();
            return false;
        }
        if (auto st = exporter_->connect(); !st) {
            ++local_.transport.connect_failures;
            fail(st.error());
            publish();
            return false;
        }
        connected_ = true;
        acked_on_connection_ = 0;
        ack_progress_ms_ = now;
        local_.state = RunnerState::up;
    }
    bool progress = false;
    auto step = [&]() -> Status {
        auto read = read_more();
        if (!read) return std::move(read).error();
        progress = progress || *read;
        HSMAUDIT_TRY(send_unsent());
        // Idle: wait here for acknowledgements, unless the exporter rings the doorbell when they
        // come (then the loop waits on the doorbell, which new stored events ring too).
        const bool idle = !progress && !waits_on_doorbell_;
        auto acked = collect_acks(idle ? options_.idle_wait : std::chrono::milliseconds(0));
        if (!acked) return std::move(acked).error();
        progress = progress || *acked;
        const bool waiting = std::any_of(unacked_.begin(), unacked_.end(),
                                         [](const Batch& b) { return b.sent && b.acked < b.events.size(); });
        if (*acked || !waiting) {
            ack_progress_ms_ = now_ms_();
        } else if (now_ms_() - ack_progress_ms_ > options_.ack_timeout.count()) {
            return make_error(errc::io_error, "no acknowledgement for " +
                                                  std::to_string(options_.ack_timeout.count() / 1000) + " s with " +
                                                  std::to_string(unacked_events_) + " events in flight");
        }
        if (*acked || unacked_.empty()) {
            if (!proven_) {
                proven_ = true;
                backoff_ = std::chrono::milliseconds(0);
                if (down_alerted_) {
                    down_alerted_ = false;
                    alerts_.alert(Alert{"exporter.up", Severity::info,
                                        "destination '" + options_.name + "' is delivering again", 0, now_ms_()});
                }
            }
        }
        return {};
    };
    if (auto st = step(); !st) fail(st.error());
    (void)write_cursor(false);  // failures are counted, logged rate-limited and retried with back-off
    publish();
    return progress;
}

void ExportRunner::publish() {
    local_.cursor = cursor_;
    if (options_.cursor_path.empty()) durable_ = cursor_;  // memory only: nothing to lag behind
    local_.durable = durable_;
    local_.source = source_->health();
    local_.in_flight = unacked_events_;
    local_.now_ms = now_ms_();
    local_.oldest_undelivered_ms = 0;
    for (const auto& b : unacked_) {
        if (b.acked < b.events.size()) {
            local_.oldest_undelivered_ms = arrival_ms(b.events[b.acked]);
            break;
        }
    }
    if (local_.oldest_undelivered_ms == 0 && local_.lag_records() > 0)
        local_.oldest_undelivered_ms = local_.last_delivered_event_ms;
    const auto transport = exporter_->stats();
    std::lock_guard lock(mutex_);
    const auto connect_failures = local_.transport.connect_failures;
    local_.transport = transport;
    local_.transport.connect_failures = std::max(connect_failures, transport.connect_failures);
    stats_ = local_;
}

Status ExportRunner::write_cursor(bool force) {
    if (!cursor_dirty_ || options_.cursor_path.empty()) return {};
    const std::int64_t now = now_ms_();
    if (!force && now - cursor_written_ms_ < options_.cursor_sync.count()) return {};
    // After a failure (disk full, EIO) wait before trying again: the cursor in memory is right
    // and delivery goes on; a stale file only means more duplicates after a crash.
    if (!force && now < cursor_retry_at_ms_) return {};
    std::error_code ec;
    fs::create_directories(fs::path(options_.cursor_path).parent_path(), ec);
    auto st =
        base::write_file_atomic(options_.cursor_path, render_cursor_file(cursor_), 0600, false, *options_.file_system);
    if (!st) {
        ++local_.cursor_write_failures;
        local_.cursor_error = utf8_safe(st.error().describe());
        cursor_backoff_ = cursor_backoff_.count() == 0 ? options_.cursor_retry_initial
                                                       : std::min(cursor_backoff_ * 2, options_.cursor_retry_max);
        cursor_retry_at_ms_ = now + cursor_backoff_.count();
        if (cursor_logged_ms_ == 0 || now - cursor_logged_ms_ >= options_.log_interval.count()) {
            base::log_fields(spdlog::level::warn, {{"HSMAUDIT_DESTINATION", options_.name}},
                             "exporter {}: cannot write its cursor file: {} ({} failures in all; delivery goes on, the "
                             "write is retried in {} ms)",
                             options_.name, local_.cursor_error, local_.cursor_write_failures, cursor_backoff_.count());
            cursor_logged_ms_ = now;
            cursor_unlogged_ = 0;
        } else {
            ++cursor_unlogged_;
        }
        return st;
    }
    if (!local_.cursor_error.empty()) {
        base::log_fields(spdlog::level::info, {{"HSMAUDIT_DESTINATION", options_.name}},
                         "exporter {}: its cursor file is written again (after {} failed writes)", options_.name,
                         local_.cursor_write_failures);
        local_.cursor_error.clear();
        cursor_logged_ms_ = 0;
    }
    cursor_backoff_ = std::chrono::milliseconds(0);
    cursor_retry_at_ms_ = 0;
    durable_ = cursor_;
    cursor_written_ms_ = now;
    cursor_dirty_ = false;
    return {};
}

void ExportRunner::loop(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
        // Taken before looking for work: a ring while run_once() looks is not lost.
        const std::uint64_t seen = bell_.generation();
        auto r = run_once();
        if (!r) fail(r.error());
        if (r && *r) continue;
        // Idle or backing off: until the store appends, the exporter has acknowledgements, the
        // retry is due, or idle_wait passed (stop wakes us too).
        auto wait = options_.idle_wait;
        if (!connected_)
            wait = std::min(wait, std::chrono::milliseconds(std::max<std::int64_t>(1, retry_at_ms_ - now_ms_())));
        (void)bell_.wait(seen, wait, stop);
    }
    // Stopping: the service stops the destinations after the drain's last commit, so deliver
    // what is stored and outstanding, for up to stop_timeout, then close.
    if (connected_ && in_flight_only_.load()) {
        // A reload removes or rebuilds this destination while the drain goes on: only the
        // acknowledgements of what was sent, for up to stop_timeout (what is not acknowledged by
        // then is sent again after the cursor, by the rebuilt destination or a later start).
        const std::int64_t deadline = now_ms_() + options_.stop_timeout.count();
        const auto waiting = [this] {
            return std::any_of(unacked_.begin(), unacked_.end(),
                               [](const Batch& b) { return b.sent && b.acked < b.events.size(); });
        };
        while (waiting() && now_ms_() < deadline) {
            auto acked = collect_acks(std::chrono::milliseconds(100));
            if (!acked) break;
        }
        exporter_->disconnect();
        connected_ = false;
    } else if (connected_) {
        const std::int64_t deadline = now_ms_() + options_.stop_timeout.count();
        while (now_ms_() < deadline) {
            auto read = read_more();
            if (!read) break;
            if (auto st = send_unsent(); !st) break;
            auto acked = collect_acks(std::chrono::milliseconds(100));
            if (!acked) break;
            if (!*read && unacked_.empty()) break;
        }
        exporter_->disconnect();
        connected_ = false;
    }
    local_.state = RunnerState::stopped;
    (void)write_cursor(true);
    publish();
}

void ExportRunner::run_thread(std::stop_token stop) {
    // Last resort: nothing a destination meets may end the agent. An exception here is a bug;
    // this destination stops (alerted), the drain and the other destinations go on.
    auto failed = detail::run_catching([&] { loop(stop); });
    if (!failed) return;
    const std::string what = utf8_safe(*failed);
    base::log_fields(spdlog::level::err, {{"HSMAUDIT_DESTINATION", options_.name}},
                     "exporter {}: stopped after an internal error: {}", options_.name, what);
    try {
        alerts_.alert(Alert{"exporter.failed", Severity::critical,
                            "destination '" + options_.name + "' stopped after an internal error (" + what +
                                "); the other destinations and the drain go on; restart the agent to retry it",
                            0, now_ms_()});
    } catch (...) {
    }
    try {
        exporter_->disconnect();
    } catch (...) {
    }
    connected_ = false;
    try {
        local_.state = RunnerState::stopped;
        local_.last_error = "stopped after an internal error: " + what;
        (void)write_cursor(true);
        publish();
    } catch (...) {
    }
}

void ExportRunner::start() {
    if (thread_.joinable()) return;
    if (options_.store_appended) options_.store_appended->add(bell_);
    thread_ = std::jthread([this](std::stop_token st) { run_thread(std::move(st)); });
}

void ExportRunner::stop(StopMode mode) {
    if (!thread_.joinable()) return;
    in_flight_only_.store(mode == StopMode::in_flight_only);
    thread_.request_stop();  // ends bell_.wait()
    thread_.join();
    if (options_.store_appended) options_.store_appended->remove(bell_);
}

RunnerStats ExportRunner::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

std::uint64_t ExportRunner::delivered_through(Stream stream) const {
    std::lock_guard lock(mutex_);
    return stats_.cursor[idx(stream)];
}

std::uint64_t ExportRunner::durable_through(Stream stream) const {
    std::lock_guard lock(mutex_);
    return stats_.durable[idx(stream)];
}

}  // namespace hsmaudit::agent
