// KafkaExporter: the agent's Exporter for a Kafka cluster, on librdkafka's idempotent producer.
//
// One message per event: key = module serial (one appliance's chain stays in one partition, in
// order), value = the event in the destination's format (JSON by default), headers:
//
//   event_id  stable id (agent::make_event_id): duplicates after a resend are identifiable by it
//   kind      "audit", "syslog", "alerts", "checkpoints" (the stream)
//   format    the value's format ("json", "rfc5424", ...)
//   entry, epoch      audit stream: "record", "open" or "seal" (open and seal entries are delivered
//                     when the destination sets `chain_lines: true`), and the segment's key epoch
//   seq, mac, class   audit records: sequence number, chain MAC (64 hex), event class
//   line      audit stream: the exact segment line (record, open or seal; no LF), what the MACs
//             cover; checkpoints: the signed "@checkpoint ..." line. What `hsmaudit verify --kafka`
//             checks, whatever the value's format.
//
// Delivery: each message carries its index in the connection's send order as its opaque; the
// delivery report callback (served by rd_kafka_poll on the runner's thread) marks it persisted
// only if rd_kafka_message_status() says RD_KAFKA_MSG_STATUS_PERSISTED. acknowledged() is the
// prefix of persisted messages. A failed delivery (possibly persisted or not) is reported as an
// error once the prefix before it has been reported: the runner disconnects (flush, purge,
// destroy), reconnects and resends after the prefix, so a possibly-persisted message may arrive
// twice, with the same event_id. The idempotent producer (enable.idempotence=true, hence acks=all
// and at most 5 in flight per partition) never reorders within a partition, retries included.
//
// Thread-safety: driven by one thread (the runner's), as agent::Exporter requires; stats() and
// kafka_stats() from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "agent/api/exporter.h"
#include "exporters/formats/formatter.h"
#include "exporters/kafka/detail/rdkafka_handles.h"
#include "exporters/kafka/kafka_config.h"

namespace hsmaudit::exporters::kafka {

/// Counters beyond agent::TransportStats.
struct KafkaStats {
    std::uint64_t produced = 0;            // messages handed to librdkafka
    std::uint64_t persisted = 0;           // delivery reports: persisted
    std::uint64_t possibly_persisted = 0;  // delivery reports: failed, may have been written (may duplicate)
    std::uint64_t not_persisted = 0;       // delivery reports: failed, not written
    std::uint64_t queue_full_waits = 0;    // times send() waited for room in librdkafka's queue
    std::string last_error;
};

class KafkaExporter final : public agent::Exporter {
public:
    /// `formatter` renders the message values.
    KafkaExporter(ProducerOptions options, std::unique_ptr<formats::Formatter> formatter);
    ~KafkaExporter() override;
    KafkaExporter(const KafkaExporter&) = delete;
    KafkaExporter& operator=(const KafkaExporter&) = delete;

    Status connect() override;
    Status send(std::span<const agent::Event> events) override;
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override;
    void disconnect() override;
    /// Rings `doorbell` from librdkafka's threads when its main queue (delivery reports, errors)
    /// goes from empty to non-empty (rd_kafka_queue_cb_event_enable): the runner waits there
    /// instead of inside rd_kafka_poll. Answers AckSignal::doorbell.
    AckSignal attach_doorbell(agent::Doorbell* doorbell) override;
    [[nodiscard]] agent::TransportStats stats() const override;
    [[nodiscard]] KafkaStats kafka_stats() const;

private:
    enum class Delivery : std::uint8_t { pending, persisted, failed };
    static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
    static void on_log(const rd_kafka_t* rk, int level, const char* fac, const char* buf);
    static void on_queue_event(rd_kafka_t* rk, void* opaque);
    void delivered(const rd_kafka_message_t& msg);
    Status produce_one(const agent::Event& e);
    Status failure_status() const;
    void publish_stats();

    ProducerOptions options_;
    std::unique_ptr<formats::Formatter> formatter_;

    agent::Doorbell* doorbell_ = nullptr;  // rung by librdkafka's threads (attach_doorbell)

    // Runner thread only (delivery reports are served by rd_kafka_poll/flush on that thread).
    detail::KafkaPtr rk_;
    detail::QueuePtr main_queue_;             // rk_'s main queue, while the doorbell is rung from it
    std::array<detail::TopicPtr, 4> topics_;  // indexed by agent::Stream
    std::deque<Delivery> deliveries_;         // index base_ + i: the (base_ + i)-th message of the connection
    std::uint64_t base_ = 0;                  // == the persisted prefix
    std::uint64_t sent_ = 0;
    std::uint64_t reported_ = 0;    // the prefix acknowledged() last returned
    std::optional<Error> failure_;  // the first delivery error of the connection
    std::string value_;             // scratch
    std::string scratch_;
    KafkaStats pending_stats_;  // counted here, added to kafka_stats_ under the mutex once per call
    std::uint64_t pending_bytes_ = 0;

    mutable std::mutex mutex_;  // guards the stats
    agent::TransportStats stats_;
    KafkaStats kafka_stats_;
};

/// The registration entry for agent/daemon/exporter_registry.cpp: type "kafka".
agent::ExporterFactory factory();

}  // namespace hsmaudit::exporters::kafka
