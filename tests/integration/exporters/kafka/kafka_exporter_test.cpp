// The Kafka exporter against librdkafka's mock cluster (the real Kafka protocol on loopback), with
// kcat as the independent consumer.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>

#include "base/config/config.h"
#include "exporters/kafka/errc.h"
#include "exporters/kafka/kafka_config.h"
#include "exporters/kafka/kafka_exporter.h"
#include "tests/integration/exporters/kafka/exporter_driver.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/kafka/kafka_test_util.h"

namespace hsmaudit::testing::kafka {
namespace {

using exporters::kafka::KafkaExporter;

std::unique_ptr<KafkaExporter> make_exporter(const std::string& brokers) {
    return std::make_unique<KafkaExporter>(mock_options(brokers), std::make_unique<IdFormatter>());
}

void create_topics(MockCluster& cluster, int partitions) {
    for (const char* t : {"hsm.audit", "hsm.syslog", "hsm.alerts", "hsm.checkpoints"})
        cluster.create_topic(t, partitions, 3);
}

TEST(KafkaExporter, EveryRecordArrivesOnceInOrderPerSerialAsKcatSeesIt) {
    MockCluster cluster(3);
    create_topics(cluster, 4);
    std::vector<Appliance> fleet;
    for (const char* s : {"150001", "150002", "150003"}) fleet.emplace_back(s, 500);
    std::vector<agent::Event> events;
    for (int i = 0; i < 2000; ++i)
        for (auto& a : fleet) events.push_back(a.next());
    for (std::uint64_t i = 0; i < 3; ++i) events.push_back(fleet[i].checkpoint(i + 1));

    auto exporter = make_exporter(cluster.bootstraps());
    const auto r = drive(*exporter, events, 512, 4096, {});
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.failures, 0U) << (r.errors.empty() ? "" : r.errors.front());
    EXPECT_EQ(r.delivered, events.size());
    const auto ks = exporter->kafka_stats();
    EXPECT_EQ(ks.persisted, events.size());
    EXPECT_EQ(ks.possibly_persisted + ks.not_persisted, 0U);

    TempDir tmp;
    const auto audit = kcat_consume(cluster.bootstraps(), "hsm.audit", tmp);
    ASSERT_EQ(audit.size(), 6000U) << (audit.empty() ? "" : audit.front().value);
    std::map<std::string, std::vector<std::uint64_t>> seqs;
    std::map<std::string, std::set<int>> partitions;
    for (const auto& m : audit) {
        std::istringstream v(m.value);
        std::string id, serial;
        std::uint64_t seq = 0;
        v >> id >> serial >> seq;
        EXPECT_EQ(serial, m.key);
        EXPECT_EQ(id, serial + "-1-" + std::to_string(seq));
        seqs[m.key].push_back(seq);
        partitions[m.key].insert(m.partition);
    }
    ASSERT_EQ(seqs.size(), 3U);
    for (const auto& [serial, list] : seqs) {
        EXPECT_EQ(partitions[serial].size(), 1U) << serial << ": one chain, one partition";
        ASSERT_EQ(list.size(), 2000U) << serial;
        for (std::size_t i = 0; i < list.size(); ++i) ASSERT_EQ(list[i], i + 1) << serial << " at " << i;
    }
    const auto cps = kcat_consume(cluster.bootstraps(), "hsm.checkpoints", tmp);
    EXPECT_EQ(cps.size(), 3U);
}

TEST(KafkaExporter, HeadersCarryIdSeqMacClassFormatAndTheExactLine) {
    MockCluster cluster(1);
    create_topics(cluster, 1);
    Appliance a("150009", 100);
    std::vector<agent::Event> events;
    events.reserve(5);
    for (int i = 0; i < 5; ++i) events.push_back(a.next());
    auto exporter = make_exporter(cluster.bootstraps());
    const auto r = drive(*exporter, events, 10, 100, {});
    ASSERT_EQ(r.delivered, events.size());

    TempDir tmp;
    const auto got = kcat_consume(cluster.bootstraps(), "hsm.audit", tmp, "%k|%p|%o|%h\\n");
    ASSERT_EQ(got.size(), 5U) << (got.empty() ? "" : got.front().value);
    for (std::size_t i = 0; i < got.size(); ++i) {
        const auto& e = events[i];
        std::string line;
        mac::encode_record_body(e.record, line);
        line += " mac=" + e.mac_hex;
        const std::string& h = got[i].value;
        EXPECT_NE(h.find("event_id=" + e.event_id), std::string::npos) << h;
        EXPECT_NE(h.find("kind=audit"), std::string::npos) << h;
        EXPECT_NE(h.find("format=test"), std::string::npos) << h;
        EXPECT_NE(h.find("seq=" + std::to_string(e.record.seq)), std::string::npos) << h;
        EXPECT_NE(h.find("mac=" + e.mac_hex), std::string::npos) << h;
        EXPECT_NE(h.find("class=" + e.record.event_class), std::string::npos) << h;
        EXPECT_NE(h.find("line=" + line), std::string::npos) << h;
    }
}

TEST(KafkaExporter, UnreachableClusterIsAConnectFailureNotAHang) {
    auto opts = mock_options("127.0.0.1:1");
    opts.connect_timeout = std::chrono::milliseconds(300);
    KafkaExporter exporter(opts, std::make_unique<IdFormatter>());
    auto st = exporter.connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, exporters::kafka::errc::unreachable) << st.error().describe();
    EXPECT_EQ(exporter.stats().connect_failures, 1U);
    Appliance a("150010", 100);
    const std::vector<agent::Event> one{a.next()};
    EXPECT_FALSE(exporter.send(one));  // not connected: an error, never a silent drop
}

TEST(KafkaExporter, ClusterDownThenBackDeliveryResumesInOrder) {
    MockCluster cluster(1);
    create_topics(cluster, 2);
    Appliance a("150011", 1000);
    std::vector<agent::Event> events;
    events.reserve(3000);
    for (int i = 0; i < 3000; ++i) events.push_back(a.next());
    auto opts = mock_options(cluster.bootstraps());
    opts.connect_timeout = std::chrono::milliseconds(500);
    opts.message_timeout = std::chrono::milliseconds(1500);
    opts.flush_timeout = std::chrono::milliseconds(200);
    KafkaExporter exporter(opts, std::make_unique<IdFormatter>());
    bool downed = false;
    std::optional<std::jthread> upper;
    const auto r = drive(exporter, events, 100, 500, [&](std::uint64_t cursor) {
        if (!downed && cursor >= 1000) {
            downed = true;
            cluster.broker_down(1);
            // Down for longer than message.timeout.ms: deliveries fail, reconnects fail, then it returns.
            upper.emplace([&cluster] {
                std::this_thread::sleep_for(std::chrono::milliseconds(3000));
                cluster.broker_up(1);
            });
        }
    });
    upper.reset();
    ASSERT_FALSE(r.timed_out);
    EXPECT_TRUE(downed);
    EXPECT_GT(r.failures, 0U) << "the outage was seen";
    EXPECT_EQ(r.delivered, events.size());

    TempDir tmp;
    const auto got = kcat_consume(cluster.bootstraps(), "hsm.audit", tmp);
    std::vector<std::uint64_t> firsts;
    std::set<std::uint64_t> seen;
    for (const auto& m : got) {
        const auto seq = std::stoull(m.value.substr(m.value.rfind(' ') + 1));
        if (seen.insert(seq).second) firsts.push_back(seq);
    }
    ASSERT_EQ(firsts.size(), events.size()) << "nothing lost";
    for (std::size_t i = 0; i < firsts.size(); ++i) ASSERT_EQ(firsts[i], i + 1) << "in order at " << i;
    EXPECT_LE(got.size() - firsts.size(), r.resent) << "duplicates only among what was resent";
}

base::Config parse_config(const std::string& yaml) {
    auto c = base::Config::parse(yaml, "test.yaml", exporters::kafka::kafka_config_keys());
    if (!c) throw std::runtime_error(c.error().describe());
    return std::move(*c);
}

TEST(KafkaConfig, PassThroughSecretsFromA0600FileOnlyAndNeverShown) {
    TempDir tmp;
    const std::string secret_file = tmp.file("kafka.secret");
    {
        std::ofstream f(secret_file);
        f << "# SASL/SCRAM\nsasl.password=hunter2-very-secret\n";
    }
    ::chmod(secret_file.c_str(), 0600);
    const std::string yaml =
        "exporters:\n  soc:\n    kafka:\n      brokers: k1:9093,k2:9093\n"
        "      properties: security.protocol=sasl_ssl,sasl.mechanism=SCRAM-SHA-512,"
        "sasl.username=hsm\n      secret_properties_file: " +
        secret_file + "\n";
    auto o = exporters::kafka::producer_options(parse_config(yaml), "soc");
    ASSERT_TRUE(o) << o.error().describe();
    EXPECT_EQ(o->brokers, "k1:9093,k2:9093");
    EXPECT_EQ(o->topics[0], "hsm.audit");
    ASSERT_EQ(o->secret_properties.size(), 1U);
    EXPECT_EQ(o->secret_properties[0].second, "hunter2-very-secret");
    const std::string shown = o->describe();
    EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
    EXPECT_NE(shown.find("sasl.password=***"), std::string::npos) << shown;
    EXPECT_NE(shown.find("sasl.mechanism=SCRAM-SHA-512"), std::string::npos) << shown;

    ::chmod(secret_file.c_str(), 0644);
    auto loose = exporters::kafka::producer_options(parse_config(yaml), "soc");
    ASSERT_FALSE(loose);
    EXPECT_EQ(loose.error().message.find("hunter2"), std::string::npos);

    auto inline_secret =
        exporters::kafka::producer_options(parse_config("exporters:\n  soc:\n    kafka:\n      brokers: k1:9093\n"
                                                        "      properties: sasl.password=hunter2\n"),
                                           "soc");
    ASSERT_FALSE(inline_secret);
    EXPECT_NE(inline_secret.error().message.find("secret_properties_file"), std::string::npos);
    EXPECT_EQ(inline_secret.error().message.find("hunter2"), std::string::npos);

    auto no_idem =
        exporters::kafka::producer_options(parse_config("exporters:\n  soc:\n    kafka:\n      brokers: k1:9093\n"
                                                        "      properties: enable.idempotence=false\n"),
                                           "soc");
    ASSERT_FALSE(no_idem);

    auto bad_value_secret = exporters::kafka::make_conf({}, {{"ssl.key.password", std::string(600000, 'x')}});
    (void)bad_value_secret;  // accepted or not, never echoed (checked below on an invalid property)
    auto unknown = exporters::kafka::make_conf({}, {{"no.such.property.password", "hunter2"}});
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message.find("hunter2"), std::string::npos);

    auto missing = exporters::kafka::producer_options(
        parse_config("exporters:\n  soc:\n    kafka:\n      topic.audit: x\n"), "soc");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("brokers"), std::string::npos);
}

}  // namespace
}  // namespace hsmaudit::testing::kafka
