// 100,000 records from ten simulated appliances (ten agents: one ExportRunner and one Kafka
// exporter each) to the mock cluster while it fails: Produce requests answered with retriable
// errors, then a broker down for longer than message.timeout.ms (deliveries fail, reconnects fail,
// the runners back off and buffer), then back. kcat then reads the topic: nothing lost, order per
// serial kept, and every duplicate is a resend (same event id, same bytes) of what was in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent/engine/export/runner.h"
#include "exporters/kafka/kafka_exporter.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/kafka/kafka_test_util.h"

namespace hsmaudit::testing::kafka {
namespace {

using exporters::kafka::KafkaExporter;

/// The store of one appliance, as the runner reads it: audit records by sequence number.
class VectorSource final : public agent::EventSource {
public:
    explicit VectorSource(std::vector<agent::Event> events) : events_(std::move(events)) {}
    Result<std::size_t> read(agent::Stream stream, std::uint64_t after, std::size_t max,
                             std::vector<agent::Event>& out) override {
        if (stream != agent::Stream::audit) return std::size_t{0};
        auto it = std::upper_bound(events_.begin(), events_.end(), after,
                                   [](std::uint64_t a, const agent::Event& e) { return a < e.position; });
        std::size_t n = 0;
        for (; it != events_.end() && n < max; ++it, ++n) out.push_back(*it);
        return n;
    }
    Result<std::uint64_t> newest(agent::Stream stream) override {
        return stream == agent::Stream::audit && !events_.empty() ? events_.back().position : 0;
    }
    Result<std::uint64_t> before_oldest(agent::Stream) override { return std::uint64_t{0}; }

private:
    std::vector<agent::Event> events_;
};

class CountingAlerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override {
        const std::lock_guard lock(mutex_);
        names_.insert(a.kind);
    }
    std::set<std::string> names() {
        const std::lock_guard lock(mutex_);
        return names_;
    }

private:
    std::mutex mutex_;
    std::set<std::string> names_;
};

TEST(KafkaFaults, HundredThousandRecordsThroughFaultsNothingLostOrderKeptDuplicatesIdentifiable) {
    constexpr std::uint64_t kPerAppliance = 10'000;  // 100,000 records in all
    MockCluster cluster(3);
    cluster.create_topic("hsm.audit", 16, 3);
    for (const char* t : {"hsm.syslog", "hsm.alerts", "hsm.checkpoints"}) cluster.create_topic(t, 1, 3);

    CountingAlerts alerts;
    std::vector<std::string> serials;
    for (int i = 0; i < 10; ++i) serials.push_back(std::to_string(150401 + i));
    std::map<std::string, std::vector<std::string>> values;  // serial -> value of seq i+1
    std::vector<std::unique_ptr<agent::ExportRunner>> runners;
    std::vector<KafkaExporter*> exporters;
    for (std::size_t i = 0; i < serials.size(); ++i) {
        Appliance a(serials[i], 5'000, i + 11);
        std::vector<agent::Event> events;
        events.reserve(kPerAppliance);
        for (std::uint64_t n = 0; n < kPerAppliance; ++n) {
            events.push_back(a.next());
            values[serials[i]].push_back(events.back().event_id + " " + serials[i] + " " +
                                         std::to_string(events.back().position));
        }
        auto o = mock_options(cluster.bootstraps());
        o.name = "soc-" + serials[i];
        o.connect_timeout = std::chrono::milliseconds(1'000);
        o.message_timeout = std::chrono::milliseconds(2'000);
        o.flush_timeout = std::chrono::milliseconds(500);
        o.line_header = false;
        auto exporter = std::make_unique<KafkaExporter>(o, std::make_unique<IdFormatter>());
        exporters.push_back(exporter.get());
        agent::RunnerOptions ro;
        ro.name = o.name;
        ro.streams = {true, false, false, false};
        ro.batch = 1'000;
        ro.max_in_flight = 5'000;
        ro.backoff_initial = std::chrono::milliseconds(100);
        ro.backoff_max = std::chrono::milliseconds(1'000);
        ro.idle_wait = std::chrono::milliseconds(50);
        auto runner = agent::ExportRunner::open(ro, std::move(exporter),
                                                std::make_unique<VectorSource>(std::move(events)), alerts, [] {
                                                    // The runner's back-off runs on this clock: a real one.
                                                    return std::chrono::duration_cast<std::chrono::milliseconds>(
                                                               std::chrono::system_clock::now().time_since_epoch())
                                                        .count();
                                                });
        ASSERT_TRUE(runner) << runner.error().describe();
        runners.push_back(std::move(*runner));
    }

    auto delivered = [&] {
        std::uint64_t n = 0;
        for (const auto& r : runners) n += r->delivered_through(agent::Stream::audit);
        return n;
    };
    auto wait_for = [&](std::uint64_t target) {
        // A hang guard only (the ctest TIMEOUT would also end it), never the property tested.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(100);
        while (delivered() < target && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return delivered() >= target;
    };
    const std::uint64_t total = kPerAppliance * serials.size();
    for (auto& r : runners) r->start();

    // 1: Produce requests fail with retriable errors (librdkafka retries them itself, in order).
    ASSERT_TRUE(wait_for(total / 10));
    cluster.push_errors(0, std::vector<rd_kafka_resp_err_t>(12, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
    cluster.push_errors(0, std::vector<rd_kafka_resp_err_t>(12, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT));
    cluster.push_errors(0, std::vector<rd_kafka_resp_err_t>(12, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS));
    // 2: a broker down for longer than message.timeout.ms: deliveries fail (possibly persisted),
    //    the runners disconnect, back off and resend after their acknowledged prefix.
    ASSERT_TRUE(wait_for(total * 4 / 10));
    cluster.broker_down(1);
    cluster.broker_down(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(3'000));
    cluster.broker_up(1);
    cluster.broker_up(2);
    // 3: retriable errors once more near the end.
    ASSERT_TRUE(wait_for(total * 8 / 10));
    cluster.push_errors(0, std::vector<rd_kafka_resp_err_t>(20, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE));
    ASSERT_TRUE(wait_for(total)) << "delivered " << delivered() << " of " << total;

    std::uint64_t resent = 0, failures = 0, possibly = 0;
    for (std::size_t i = 0; i < runners.size(); ++i) {
        const auto st = runners[i]->stats();
        resent += st.resent;
        failures += st.failures;
        possibly += exporters[i]->kafka_stats().possibly_persisted;
    }
    for (auto& r : runners) r->stop();
    EXPECT_GT(failures, 0U) << "the outage must have been seen by the runners";
    EXPECT_TRUE(alerts.names().count("exporter.down")) << "the outage was alerted";

    // kcat reads the topic afterwards. (The mock cluster keeps about 5 MB per partition, as a
    // retention limit would: the transfer is spread over ten appliances and 16 partitions, and
    // the line header is off, so that every partition holds its whole share.)
    TempDir tmp;
    const auto got = kcat_consume(cluster.bootstraps(), "hsm.audit", tmp);
    ASSERT_FALSE(got.empty());
    ASSERT_NE(got.front().key, "KCAT-FAILED") << got.front().value;
    std::map<std::string, std::vector<std::uint64_t>> firsts;
    std::map<std::string, std::set<std::uint64_t>> seen;
    std::map<std::string, std::set<int>> partitions;
    std::uint64_t duplicates = 0;
    for (const auto& m : got) {
        const auto seq = std::stoull(m.value.substr(m.value.rfind(' ') + 1));
        ASSERT_GE(seq, 1U);
        ASSERT_LE(seq, kPerAppliance);
        // Same event id, same bytes: a duplicate is always identifiable as the same record.
        ASSERT_EQ(m.value, values[m.key][seq - 1]);
        partitions[m.key].insert(m.partition);
        if (seen[m.key].insert(seq).second)
            firsts[m.key].push_back(seq);
        else
            ++duplicates;
    }
    if (std::getenv("KAFKA_TEST_VERBOSE")) {
        std::map<std::string, std::size_t> n;
        std::map<int, std::pair<long long, long long>> range;
        for (const auto& m : got) {
            ++n[m.key + " p" + std::to_string(m.partition)];
            auto& r = range.try_emplace(m.partition, m.offset, m.offset).first->second;
            r.first = std::min(r.first, m.offset);
            r.second = std::max(r.second, m.offset);
        }
        for (const auto& [p, r] : range) std::fprintf(stderr, "p%d offsets %lld..%lld\n", p, r.first, r.second);
        for (const auto& [k, c] : n) std::fprintf(stderr, "%s: %zu messages\n", k.c_str(), c);
        std::fprintf(stderr, "read %zu messages\n", got.size());
    }
    for (const auto& s : serials) {
        EXPECT_EQ(partitions[s].size(), 1U) << s;
        ASSERT_EQ(firsts[s].size(), kPerAppliance) << s << ": nothing lost";
        for (std::uint64_t i = 0; i < kPerAppliance; ++i) ASSERT_EQ(firsts[s][i], i + 1) << s << ": in order";
    }
    EXPECT_LE(duplicates, resent) << "duplicates only among the events resent after a failure";
    RecordProperty("duplicates", static_cast<int>(duplicates));
    RecordProperty("resent", static_cast<int>(resent));
    RecordProperty("possibly_persisted", static_cast<int>(possibly));
    std::printf("kafka faults: %llu messages, %llu duplicates, %llu resent, %llu failures, %llu possibly persisted\n",
                static_cast<unsigned long long>(got.size()), static_cast<unsigned long long>(duplicates),
                static_cast<unsigned long long>(resent), static_cast<unsigned long long>(failures),
                static_cast<unsigned long long>(possibly));
}

}  // namespace
}  // namespace hsmaudit::testing::kafka
