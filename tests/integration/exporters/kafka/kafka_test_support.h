// Test support for the Kafka suites and the Kafka benchmark: librdkafka's mock cluster in the
// calling process (real Kafka protocol on loopback ports), simulated appliances producing real
// MAC-chained records as agent::Event values, and a small formatter.
//
// Thread-safety: MockCluster's methods may be called from any thread (the mock cluster runs its
// brokers on its own threads); the other helpers are single-threaded values.
#pragma once

#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must follow rdkafka.h
#include <librdkafka/rdkafka_mock.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/api/event.h"
#include "agent/engine/sample.h"
#include "exporters/formats/formatter.h"
#include "exporters/kafka/detail/rdkafka_handles.h"
#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/crypto.h"
#include "mac/keys.h"

namespace hsmaudit::testing::kafka {

/// A mock Kafka cluster of `brokers` brokers (ids 1..brokers), destroyed before its host handle.
class MockCluster {
public:
    explicit MockCluster(int brokers = 3) {
        exporters::kafka::detail::ConfPtr conf(rd_kafka_conf_new());
        char err[256];
        rd_kafka_conf_set(conf.get(), "log_level", "0", err, sizeof err);
        host_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
        if (!host_) throw std::runtime_error(std::string("mock host: ") + err);
        (void)conf.release();
        cluster_.reset(rd_kafka_mock_cluster_new(host_.get(), brokers));
        if (!cluster_) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    }
    ~MockCluster() {
        cluster_.reset();
        host_.reset();
    }
    MockCluster(const MockCluster&) = delete;
    MockCluster& operator=(const MockCluster&) = delete;

    [[nodiscard]] std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_.get()); }
    void create_topic(const std::string& name, int partitions, int replication = 1) {
        if (rd_kafka_mock_topic_create(cluster_.get(), name.c_str(), partitions, replication) != 0)
            throw std::runtime_error("mock topic " + name);
    }
    void broker_down(std::int32_t id) { rd_kafka_mock_broker_set_down(cluster_.get(), id); }
    void broker_up(std::int32_t id) { rd_kafka_mock_broker_set_up(cluster_.get(), id); }
    void set_leader(const std::string& topic, std::int32_t partition, std::int32_t broker) {
        rd_kafka_mock_partition_set_leader(cluster_.get(), topic.c_str(), partition, broker);
    }
    /// The next `errors.size()` requests of `api_key` (0 = Produce) fail with these errors.
    void push_errors(std::int16_t api_key, const std::vector<rd_kafka_resp_err_t>& errors) {
        rd_kafka_mock_push_request_errors_array(cluster_.get(), api_key, errors.size(), errors.data());
    }
    void clear_errors(std::int16_t api_key) { rd_kafka_mock_clear_request_errors(cluster_.get(), api_key); }
    [[nodiscard]] rd_kafka_mock_cluster_t* raw() const { return cluster_.get(); }

private:
    struct ClusterDeleter {
        void operator()(rd_kafka_mock_cluster_t* p) const { rd_kafka_mock_cluster_destroy(p); }
    };
    exporters::kafka::detail::KafkaPtr host_;
    std::unique_ptr<rd_kafka_mock_cluster_t, ClusterDeleter> cluster_;
};

/// A simulated appliance: a real chain (fresh keys) whose records come out as agent::Event values
/// exactly as the agent's store would serve them, sealing every `segment_records` records (so
/// the epoch key evolves along the stream).
class Appliance {
public:
    Appliance(std::string serial, std::uint64_t segment_records, std::uint64_t seed = 1)
        : serial_(std::move(serial)), segment_records_(segment_records), workload_(seed, 1'795'500'000'000) {
        auto keys = mac::generate_chain_keys();
        if (!keys) throw std::runtime_error(keys.error().describe());
        key_.emplace(keys->key);
        signer_.emplace(keys->signer);
        auto w = mac::ChainWriter::create(key_->chain(), serial_, 1, *signer_, mac::genesis_head(*key_));
        if (!w) throw std::runtime_error(w.error().describe());
        writer_.emplace(std::move(*w));
    }

    /// The next audit record as an Event (with its exact line and epoch, as the store serves it).
    agent::Event next() {
        std::vector<agent::Event> out;
        emit(out, false);
        return std::move(out.front());
    }

    /// Appends the next record and, with `chain_lines`, the segment's open entry before it and its
    /// seal entry after it (as a destination with `chain_lines: true` receives them).
    void emit(std::vector<agent::Event>& out, bool chain_lines) {
        if (!writer_->head().segment_open) {
            auto open = writer_->open_segment(workload_.now_ms());
            check(open);
            if (chain_lines)
                out.push_back(
                    entry(agent::EntryKind::open, *open, writer_->head().segment_first_seq - 1, writer_->head().epoch));
        }
        mac::AuditRecord rec;
        workload_.next(rec);
        line_.clear();
        auto m = writer_->append(rec, line_);
        if (!m) throw std::runtime_error(m.error().describe());
        agent::Event e;
        e.stream = agent::Stream::audit;
        e.position = rec.seq;
        e.time_ms = rec.time_ms;
        e.serial = serial_;
        e.host = "hsm-" + serial_;
        e.epoch = writer_->head().epoch;
        e.line = line_.substr(0, line_.size() - 1);
        e.record = std::move(rec);
        e.mac_hex = mac::hex_encode(*m);
        e.event_id = agent::make_event_id(e);
        const std::uint64_t seq = e.position;
        out.push_back(std::move(e));
        if (writer_->head().segment_records >= segment_records_) {
            const std::uint64_t epoch = writer_->head().epoch;
            auto seal = writer_->seal(workload_.now_ms());
            check(seal);
            if (chain_lines) {
                out.push_back(entry(agent::EntryKind::seal, *seal, seq, epoch));
            }
        }
    }

    /// A signed chain-head checkpoint of the chain as it stands, as a checkpoints-stream Event.
    agent::Event checkpoint(std::uint64_t position) {
        const auto& h = writer_->head();
        auto cp = mac::make_checkpoint(key_->chain(), serial_, h.epoch, h.next_seq - 1, workload_.now_ms(), h.last_mac,
                                       *signer_);
        if (!cp) throw std::runtime_error(cp.error().describe());
        agent::Event e;
        e.stream = agent::Stream::checkpoints;
        e.position = position;
        e.time_ms = workload_.now_ms();
        e.serial = serial_;
        e.host = "hsm-" + serial_;
        e.checkpoint = cp->line();
        e.event_id = agent::make_event_id(e);
        return e;
    }

    [[nodiscard]] const mac::AuditKey& key() const { return *key_; }
    void set_boot(std::uint32_t boot) { writer_->set_boot(boot); }
    [[nodiscard]] const std::string& serial() const { return serial_; }

private:
    agent::Event entry(agent::EntryKind kind, const std::string& line_with_lf, std::uint64_t position,
                       std::uint64_t epoch) {
        agent::Event e;
        e.stream = agent::Stream::audit;
        e.entry = kind;
        e.position = position;
        e.time_ms = workload_.now_ms();
        e.serial = serial_;
        e.host = "hsm-" + serial_;
        e.epoch = epoch;
        e.line = line_with_lf.substr(0, line_with_lf.size() - 1);
        e.event_id = agent::make_event_id(e);
        return e;
    }
    template <class R>
    static void check(const R& r) {
        if (!r) throw std::runtime_error(r.error().describe());
    }
    std::string serial_;
    std::uint64_t segment_records_;
    agent::SampleWorkload workload_;
    std::optional<mac::AuditKey> key_;
    std::optional<mac::Ed25519PrivateKey> signer_;
    std::optional<mac::ChainWriter> writer_;
    std::string line_;
};

/// Renders "<event_id> <serial> <seq>": easy to check from kcat's output.
class IdFormatter final : public exporters::formats::Formatter {
public:
    void format(const agent::Event& e, std::string& out) const override {
        out += e.event_id;
        out += ' ';
        out += e.serial;
        out += ' ';
        out += std::to_string(e.position);
    }
    [[nodiscard]] std::string_view name() const override { return "test"; }
};

}  // namespace hsmaudit::testing::kafka
