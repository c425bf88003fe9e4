#include "exporters/kafka/kafka_exporter.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <utility>

#include "agent/api/thread_guard.h"
#include "base/logger.h"
#include "exporters/kafka/errc.h"
#include "mac/record.h"

namespace hsmaudit::exporters::kafka {
namespace {

using Clock = std::chrono::steady_clock;

int ms_until(Clock::time_point deadline, int cap_ms) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(left, 0, cap_ms));
}

std::string_view status_name(rd_kafka_msg_status_t s) {
    switch (s) {
        case RD_KAFKA_MSG_STATUS_NOT_PERSISTED: return "not persisted";
        case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED: return "possibly persisted";
        case RD_KAFKA_MSG_STATUS_PERSISTED: return "persisted";
    }
    return "unknown";
}

std::string_view entry_name(agent::EntryKind k) {
    switch (k) {
        case agent::EntryKind::record: return "record";
        case agent::EntryKind::open: return "open";
        case agent::EntryKind::seal: return "seal";
    }
    return "record";
}

void add_header(rd_kafka_headers_t* h, std::string_view name, std::string_view value) {
    rd_kafka_header_add(h, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
}

void add_header(rd_kafka_headers_t* h, std::string_view name, std::uint64_t value) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    add_header(h, name, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

}  // namespace

KafkaExporter::KafkaExporter(ProducerOptions options, std::unique_ptr<formats::Formatter> formatter)
    : options_(std::move(options)), formatter_(std::move(formatter)) {
    stats_.peer = "kafka://" + options_.brokers;
}

KafkaExporter::~KafkaExporter() {
    disconnect();
}

// librdkafka's callbacks are called through C frames (from rd_kafka_poll/flush on the runner's
// thread, and from librdkafka's own threads for logs): an exception must not escape them, or the
// process ends in std::terminate. What cannot be handled is logged; a delivery report that could
// not be processed breaks the connection (the runner reconnects and resends).
void KafkaExporter::on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<KafkaExporter*>(opaque);
    const bool ok = agent::detail::run_guarded("kafka delivery report", [&] { self->delivered(*msg); });
    if (ok) return;
    try {
        if (!self->failure_)
            self->failure_ = make_error(errc::delivery_failed,
                                        "kafka " + self->options_.name + ": a delivery report could not be processed");
    } catch (...) {
    }
}

void KafkaExporter::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    (void)agent::detail::run_guarded("kafka error callback", [&] {
        auto* self = static_cast<KafkaExporter*>(opaque);
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[512];
            const rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, buf, sizeof buf);
            if (!self->failure_)
                self->failure_ = make_error(errc::fatal, "kafka " + self->options_.name + ": fatal producer error: " +
                                                             rd_kafka_err2str(fatal) + ": " + buf);
            base::log_fields(spdlog::level::err, {{"HSMAUDIT_DESTINATION", self->options_.name}},
                             "kafka {}: fatal producer error: {}", self->options_.name, buf);
        } else {
            // Transient (brokers down, transport): librdkafka retries; deliveries tell the rest.
            base::log_fields(spdlog::level::warn, {{"HSMAUDIT_DESTINATION", self->options_.name}}, "kafka {}: {}",
                             self->options_.name, reason);
        }
        const std::lock_guard lock(self->mutex_);
        self->kafka_stats_.last_error = reason;
    });
}

void KafkaExporter::on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    (void)agent::detail::run_guarded("kafka log callback", [&] {
        // librdkafka redacts sensitive properties in its own logs; this only routes them.
        const auto lvl = level <= 3 ? spdlog::level::err : level <= 5 ? spdlog::level::warn : spdlog::level::debug;
        base::logger().log(lvl, "{}: {} {}", rd_kafka_name(rk), fac, buf);
    });
}

void KafkaExporter::on_queue_event(rd_kafka_t* /*rk*/, void* opaque) {
    // librdkafka's thread: only the doorbell (an atomic increment, a notification if the runner waits).
    static_cast<agent::Doorbell*>(opaque)->ring();
}

agent::Exporter::AckSignal KafkaExporter::attach_doorbell(agent::Doorbell* doorbell) {
    doorbell_ = doorbell;
    return doorbell_ != nullptr ? AckSignal::doorbell : AckSignal::wait_inside;
}

void KafkaExporter::delivered(const rd_kafka_message_t& msg) {
    const auto index = reinterpret_cast<std::uintptr_t>(msg._private);
    if (index < base_ || index - base_ >= deliveries_.size()) return;  // not of this connection
    const rd_kafka_msg_status_t status = rd_kafka_message_status(&msg);
    const bool ok = msg.err == RD_KAFKA_RESP_ERR_NO_ERROR && status == RD_KAFKA_MSG_STATUS_PERSISTED;
    deliveries_[index - base_] = ok ? Delivery::persisted : Delivery::failed;
    if (ok)
        ++pending_stats_.persisted;
    else if (status == RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
        ++pending_stats_.not_persisted;
    else
        ++pending_stats_.possibly_persisted;
    if (!ok && !failure_) {
        const char* topic = msg.rkt ? rd_kafka_topic_name(msg.rkt) : "?";
        failure_ = make_error(errc::delivery_failed, "kafka " + options_.name + ": delivery of message " +
                                                         std::to_string(index) + " to topic " + topic +
                                                         " failed: " + rd_kafka_err2str(msg.err) + " (" +
                                                         std::string(status_name(status)) + ")");
        const std::lock_guard lock(mutex_);
        kafka_stats_.last_error = failure_->message;
    }
    while (!deliveries_.empty() && deliveries_.front() == Delivery::persisted) {
        deliveries_.pop_front();
        ++base_;
    }
}

Status KafkaExporter::connect() {
    disconnect();
    Properties own = {
        {"bootstrap.servers", options_.brokers},
        {"client.id", "hsmauditd-" + options_.name},
        {"enable.idempotence", "true"},  // implies acks=all, max.in.flight <= 5, ordered retries
        {"partitioner", options_.partitioner},
        {"message.timeout.ms", std::to_string(options_.message_timeout.count())},
    };
    own.insert(own.end(), options_.properties.begin(), options_.properties.end());
    auto conf = make_conf(own, options_.secret_properties);
    auto fail = [&](Error e) -> Status {
        const std::lock_guard lock(mutex_);
        ++stats_.connect_failures;
        kafka_stats_.last_error = e.message;
        return e;
    };
    if (!conf) return fail(std::move(conf).error());
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaExporter::on_delivery);
    rd_kafka_conf_set_error_cb(conf->get(), &KafkaExporter::on_error);
    rd_kafka_conf_set_log_cb(conf->get(), &KafkaExporter::on_log);
    char errstr[512];
    detail::KafkaPtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr));
    if (!rk) return fail(make_error(errc::config_error, "kafka " + options_.name + ": " + errstr));
    (void)conf->release();  // owned by rk now

    std::array<detail::TopicPtr, 4> topics;
    for (std::size_t i = 0; i < topics.size(); ++i) {
        topics[i].reset(rd_kafka_topic_new(rk.get(), options_.topics[i].c_str(), nullptr));
        if (!topics[i])
            return fail(make_error(errc::config_error, "kafka " + options_.name + ": topic '" + options_.topics[i] +
                                                           "': " + rd_kafka_err2str(rd_kafka_last_error())));
    }
    // librdkafka connects lazily; ask for each topic's metadata so that an unreachable cluster or
    // a missing topic is a connect() failure (the runner backs off and the store buffers).
    for (std::size_t i = 0; i < topics.size(); ++i) {
        if (std::find(options_.topics.begin(), options_.topics.begin() + static_cast<std::ptrdiff_t>(i),
                      options_.topics[i]) != options_.topics.begin() + static_cast<std::ptrdiff_t>(i))
            continue;
        const rd_kafka_metadata_t* raw = nullptr;
        const rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk.get(), 0, topics[i].get(), &raw, static_cast<int>(options_.connect_timeout.count()));
        const detail::MetadataPtr md(raw);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return fail(make_error(errc::unreachable, "kafka " + options_.name + ": " + options_.brokers +
                                                          ": no metadata: " + rd_kafka_err2str(err)));
        if (md->topic_cnt < 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return fail(make_error(
                errc::unknown_topic,
                "kafka " + options_.name + ": topic '" + options_.topics[i] + "': " +
                    rd_kafka_err2str(md->topic_cnt < 1 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : md->topics[0].err)));
    }
    if (doorbell_) {
        // Delivery reports wake the runner as they are queued (it never waits in rd_kafka_poll).
        main_queue_.reset(rd_kafka_queue_get_main(rk.get()));
        rd_kafka_queue_cb_event_enable(main_queue_.get(), &KafkaExporter::on_queue_event, doorbell_);
    }
    rk_ = std::move(rk);
    topics_ = std::move(topics);
    deliveries_.clear();
    base_ = sent_ = reported_ = 0;
    failure_.reset();
    const std::lock_guard lock(mutex_);
    ++stats_.connects;
    return {};
}

Status KafkaExporter::produce_one(const agent::Event& e) {
    value_.clear();
    formatter_->format(e, value_);
    // Eleven headers at most (an audit record's): the list is allocated once, never grown.
    detail::HeadersPtr headers(rd_kafka_headers_new(11));
    if (e.event_id.empty()) {
        scratch_ = agent::make_event_id(e);
        add_header(headers.get(), "event_id", scratch_);
    } else {
        add_header(headers.get(), "event_id", e.event_id);
    }
    add_header(headers.get(), "kind", agent::to_string(e.stream));
    add_header(headers.get(), "format", formatter_->name());
    if (e.stream == agent::Stream::audit) {
        add_header(headers.get(), "entry", entry_name(e.entry));
        add_header(headers.get(), "epoch", e.epoch);
        if (e.entry == agent::EntryKind::record) {
            add_header(headers.get(), "seq", e.record.seq);
            if (e.record.seq != 0) {
                add_header(headers.get(), "tlog_index", e.record.seq - 1);
                add_header(headers.get(), "tlog_size", e.record.seq);
            }
            add_header(headers.get(), "mac", e.mac_hex);
            add_header(headers.get(), "class", e.record.event_class);
        }
        if (options_.line_header) {
            if (!e.line.empty()) {
                add_header(headers.get(), "line", e.line);
            } else if (e.entry == agent::EntryKind::record) {
                // A store that does not keep the line: the canonical encoding is the same bytes.
                scratch_.clear();
                mac::encode_record_body(e.record, scratch_);
                scratch_ += " mac=";
                scratch_ += e.mac_hex;
                add_header(headers.get(), "line", scratch_);
            }
        }
    } else if (e.stream == agent::Stream::checkpoints && options_.line_header) {
        add_header(headers.get(), "line", e.checkpoint);
    }
    const std::string& key = e.serial.empty() ? e.host : e.serial;
    auto* topic = topics_[static_cast<std::size_t>(e.stream)].get();
    const std::uint64_t index = sent_;
    std::optional<Clock::time_point> deadline;  // computed only if the queue is full
    for (;;) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_.get(), RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(value_.data(), value_.size()), RD_KAFKA_V_HEADERS(headers.get()),
            // NOLINTNEXTLINE(performance-no-int-to-ptr): librdkafka's opaque carries the event index back
            RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(index))), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            (void)headers.release();  // the message owns them now
            break;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (!deadline) deadline = Clock::now() + options_.send_timeout;
            if (Clock::now() < *deadline) {
                ++pending_stats_.queue_full_waits;
                rd_kafka_poll(rk_.get(), ms_until(*deadline, 20));
                continue;
            }
        }
        return make_error(err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? errc::queue_full : errc::delivery_failed,
                          "kafka " + options_.name + ": produce to topic " + rd_kafka_topic_name(topic) + ": " +
                              rd_kafka_err2str(err));
    }
    deliveries_.push_back(Delivery::pending);
    ++sent_;
    ++pending_stats_.produced;
    pending_bytes_ += value_.size() + key.size();
    return {};
}

void KafkaExporter::publish_stats() {
    // Counted on the runner's thread, published once per call rather than once per message.
    const std::lock_guard lock(mutex_);
    kafka_stats_.produced += pending_stats_.produced;
    kafka_stats_.persisted += pending_stats_.persisted;
    kafka_stats_.possibly_persisted += pending_stats_.possibly_persisted;
    kafka_stats_.not_persisted += pending_stats_.not_persisted;
    kafka_stats_.queue_full_waits += pending_stats_.queue_full_waits;
    stats_.bytes_sent += pending_bytes_;
    pending_stats_ = KafkaStats{};
    pending_bytes_ = 0;
}

Status KafkaExporter::failure_status() const {
    // Report the failure only once the persisted prefix before it has been reported, so the
    // runner resends as little as possible.
    if (failure_ && reported_ == base_) return *failure_;
    return {};
}

Status KafkaExporter::send(std::span<const agent::Event> events) {
    if (!rk_) return make_error(errc::unreachable, "kafka " + options_.name + ": not connected");
    HSMAUDIT_TRY(failure_status());
    Status st;
    for (const auto& e : events) {
        st = produce_one(e);
        if (!st) break;
    }
    rd_kafka_poll(rk_.get(), 0);  // serve delivery reports
    publish_stats();
    return st;
}

Result<std::uint64_t> KafkaExporter::acknowledged(std::chrono::milliseconds wait) {
    if (!rk_) return make_error(errc::unreachable, "kafka " + options_.name + ": not connected");
    rd_kafka_poll(rk_.get(), 0);
    const auto deadline = Clock::now() + wait;
    // Wait for progress, not for everything: the caller sends more as soon as the window opens.
    const std::uint64_t before = base_;
    while (base_ == before && base_ < sent_ && !failure_ && Clock::now() < deadline)
        rd_kafka_poll(rk_.get(), ms_until(deadline, 50));
    publish_stats();
    HSMAUDIT_TRY(failure_status());
    reported_ = base_;
    return base_;
}

void KafkaExporter::disconnect() {
    if (!rk_) return;
    // Deliver what can be delivered in time, then drop the rest: it is resent after reconnecting.
    rd_kafka_flush(rk_.get(), static_cast<int>(options_.flush_timeout.count()));
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_.get(), 0);  // purged messages' reports
    publish_stats();
    if (main_queue_) {
        rd_kafka_queue_cb_event_enable(main_queue_.get(), nullptr, nullptr);
        main_queue_.reset();  // before the handle it refers to
    }
    for (auto& t : topics_) t.reset();
    rk_.reset();
    deliveries_.clear();
    base_ = sent_ = reported_ = 0;
    failure_.reset();
}

agent::TransportStats KafkaExporter::stats() const {
    const std::lock_guard lock(mutex_);
    return stats_;
}

KafkaStats KafkaExporter::kafka_stats() const {
    const std::lock_guard lock(mutex_);
    return kafka_stats_;
}

}  // namespace hsmaudit::exporters::kafka
