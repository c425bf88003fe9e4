// Records/s from the Kafka exporter to librdkafka's mock cluster (3 brokers, in this process),
// every record counted only once its delivery report says PERSISTED (idempotent producer,
// acks=all). Reference in the same run: the same messages produced by a plain librdkafka producer
// (acks=1, no idempotence, no headers, no delivery-report callback; flushed at the end).
//
//   kafka_produce_bench [records] [serials]      (defaults: 1000000 3)
//
// Figures: docs/BENCHMARKS.md, "Kafka export".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "exporters/kafka/kafka_exporter.h"
#include "tests/integration/exporters/kafka/exporter_driver.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/kafka/kafka_test_util.h"

namespace {

using namespace hsmaudit;
using Clock = std::chrono::steady_clock;

/// The value is the record's segment line (~200 bytes): the size of a JSON rendering.
class LineFormatter final : public exporters::formats::Formatter {
public:
    void format(const agent::Event& e, std::string& out) const override { out += e.line; }
    [[nodiscard]] std::string_view name() const override { return "line"; }
};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double run_exporter(const std::string& brokers, const std::vector<agent::Event>& events, bool line_header) {
    auto o = testing::kafka::mock_options(brokers);
    o.line_header = line_header;
    // Extra pass-through properties for experiments: KAFKA_BENCH_PROPS="k=v,k=v".
    if (const char* extra = std::getenv("KAFKA_BENCH_PROPS"))
        if (auto p = exporters::kafka::parse_property_list(extra, "KAFKA_BENCH_PROPS"))
            o.properties.insert(o.properties.end(), p->begin(), p->end());
    exporters::kafka::KafkaExporter exporter(o, std::make_unique<LineFormatter>());
    const auto t0 = Clock::now();
    const auto r = testing::kafka::drive(exporter, events, 2048, 90'000, {}, std::chrono::seconds(600));
    const double s = seconds_since(t0);
    if (r.delivered != events.size() || r.failures != 0) {
        std::fprintf(stderr, "exporter: delivered %llu of %zu, %llu failures\n",
                     static_cast<unsigned long long>(r.delivered), events.size(),
                     static_cast<unsigned long long>(r.failures));
        std::exit(1);
    }
    const auto ks = exporter.kafka_stats();
    std::printf("  exporter: %llu persisted, %llu queue-full waits\n", static_cast<unsigned long long>(ks.persisted),
                static_cast<unsigned long long>(ks.queue_full_waits));
    return s;
}

double run_raw(const std::string& brokers, const std::vector<agent::Event>& events) {
    exporters::kafka::detail::ConfPtr conf(rd_kafka_conf_new());
    char err[512];
    for (auto [k, v] : {std::pair{"bootstrap.servers", brokers.c_str()}, std::pair{"acks", "1"},
                        std::pair{"enable.idempotence", "false"}, std::pair{"log_level", "3"}})
        if (rd_kafka_conf_set(conf.get(), k, v, err, sizeof err) != RD_KAFKA_CONF_OK) std::exit(2);
    exporters::kafka::detail::KafkaPtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
    if (!rk) std::exit(2);
    (void)conf.release();
    exporters::kafka::detail::TopicPtr topic(rd_kafka_topic_new(rk.get(), "hsm.raw", nullptr));
    const auto t0 = Clock::now();
    for (const auto& e : events) {
        for (;;) {
            const auto rc = rd_kafka_produce(topic.get(), RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                             const_cast<char*>(e.line.data()), e.line.size(), e.serial.data(),
                                             e.serial.size(), nullptr);
            if (rc == 0) break;
            rd_kafka_poll(rk.get(), 5);  // queue full
        }
        rd_kafka_poll(rk.get(), 0);
    }
    if (rd_kafka_flush(rk.get(), 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR) std::exit(3);
    return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const std::size_t serials = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 3;
    std::vector<testing::kafka::Appliance> fleet;
    for (std::size_t i = 0; i < serials; ++i) fleet.emplace_back(std::to_string(150000 + i), 10'000, i + 1);
    std::vector<agent::Event> events;
    events.reserve(records);
    for (std::size_t i = 0; i < records; ++i) events.push_back(fleet[i % serials].next());
    std::size_t bytes = 0;
    for (const auto& e : events) bytes += e.line.size();

    testing::kafka::MockCluster cluster(3);
    for (const char* t : {"hsm.audit", "hsm.syslog", "hsm.alerts", "hsm.checkpoints", "hsm.raw"})
        cluster.create_topic(t, 6, 3);
    std::printf("%zu records from %zu appliances, %.0f bytes/record, mock cluster of 3 brokers, 6 partitions\n",
                records, serials, static_cast<double>(bytes) / static_cast<double>(records));
    const double raw = run_raw(cluster.bootstraps(), events);
    const double exp = run_exporter(cluster.bootstraps(), events, true);
    const double exp_noline = run_exporter(cluster.bootstraps(), events, false);
    std::printf(
        "kafka exporter (idempotent, acks=all, 8 headers incl. the line, persisted delivery reports): %.0f "
        "records/s (%.2f s)\n",
        static_cast<double>(records) / exp, exp);
    std::printf("kafka exporter, line_header off (7 headers): %.0f records/s (%.2f s)\n",
                static_cast<double>(records) / exp_noline, exp_noline);
    std::printf(
        "reference: plain librdkafka producer (acks=1, no headers, no reports waited): %.0f records/s (%.2f s)\n",
        static_cast<double>(records) / raw, raw);
    return 0;
}
