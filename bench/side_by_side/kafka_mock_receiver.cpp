// The Kafka receiver of bench/side_by_side/end_to_end.py: librdkafka's mock cluster (3 brokers,
// real Kafka protocol on loopback) in this process, plus a consumer of the audit topic that stamps
// each record with the wall-clock time (microseconds) it became visible to a consumer.
//
//   hsmaudit_kafka_mock_receiver --bootstrap-file F --out RECEIVED [--topic hsm.audit]
//
// Writes the bootstrap servers to F once the cluster is up, then one line per audit record to
// RECEIVED: "<receive time, us since the epoch> <the record's segment line (header 'line')>".
// Runs until SIGTERM or SIGINT. The consumer polls with fetch.wait.max.ms=1, so its stamp is the
// broker's acknowledgement plus at most a few milliseconds of fetch delay (an upper bound).
#include <librdkafka/rdkafka.h>
// rdkafka_mock.h must follow rdkafka.h
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
    g_stop = true;
}

bool set(rd_kafka_conf_t* c, const char* k, const char* v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) == RD_KAFKA_CONF_OK) return true;
    std::fprintf(stderr, "%s=%s: %s\n", k, v, err);
    return false;
}

long long now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    std::string bootstrap_file;
    std::string out_path;
    std::string topic = "hsm.audit";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view a = argv[i];
        if (a == "--bootstrap-file")
            bootstrap_file = argv[i + 1];
        else if (a == "--out")
            out_path = argv[i + 1];
        else if (a == "--topic")
            topic = argv[i + 1];
    }
    if (bootstrap_file.empty() || out_path.empty()) {
        std::fprintf(stderr, "usage: %s --bootstrap-file F --out RECEIVED [--topic hsm.audit]\n", argv[0]);
        return 2;
    }
    ::signal(SIGTERM, on_signal);
    ::signal(SIGINT, on_signal);

    char err[512];
    rd_kafka_conf_t* hc = rd_kafka_conf_new();
    set(hc, "log_level", "0");
    rd_kafka_t* host = rd_kafka_new(RD_KAFKA_PRODUCER, hc, err, sizeof err);
    if (host == nullptr) {
        std::fprintf(stderr, "mock host: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host, 3);
    if (cluster == nullptr) return 1;
    for (const char* t : {"hsm.audit", "hsm.alerts", "hsm.checkpoints", "hsm.syslog"})
        rd_kafka_mock_topic_create(cluster, t, 1, 3);
    const std::string bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);

    rd_kafka_conf_t* cc = rd_kafka_conf_new();
    if (!set(cc, "bootstrap.servers", bootstraps.c_str()) || !set(cc, "group.id", "side-by-side") ||
        !set(cc, "fetch.wait.max.ms", "1") || !set(cc, "fetch.error.backoff.ms", "1") ||
        !set(cc, "enable.auto.commit", "false") || !set(cc, "log_level", "3"))
        return 2;
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (consumer == nullptr) {
        std::fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(consumer, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return 1;
    rd_kafka_topic_partition_list_destroy(parts);

    std::FILE* out = std::fopen(out_path.c_str(), "w");
    if (out == nullptr) return 2;
    if (std::FILE* bf = std::fopen(bootstrap_file.c_str(), "w")) {
        std::fprintf(bf, "%s\n", bootstraps.c_str());
        std::fclose(bf);
    }
    unsigned long long received = 0;
    while (!g_stop) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 50);
        if (m == nullptr) {
            std::fflush(out);  // idle: make everything received visible to the script
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const long long t = now_us();
            rd_kafka_headers_t* hdrs = nullptr;
            const void* v = nullptr;
            std::size_t n = 0;
            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(hdrs, "line", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                std::fprintf(out, "%lld %.*s\n", t, static_cast<int>(n), static_cast<const char*>(v));
                ++received;
            }
        }
        rd_kafka_message_destroy(m);
    }
    std::fclose(out);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(host);
    std::fprintf(stderr, "kafka_mock_receiver: %llu audit records received\n", received);
    return 0;
}
