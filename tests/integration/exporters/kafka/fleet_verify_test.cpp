// `hsmaudit verify --kafka` over the mock cluster: simulated appliances produce real MAC-chained
// records through the Kafka exporter; the CLI (a separate process, a consumer) verifies each chain.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <limits>
#include <optional>
#include <string_view>

#include "base/files.h"
#include "exporters/kafka/fleet_verify.h"
#include "exporters/kafka/kafka_exporter.h"
#include "tests/integration/exporters/kafka/exporter_driver.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/kafka/kafka_test_util.h"

namespace hsmaudit::testing::kafka {
namespace {

using exporters::kafka::KafkaExporter;
using nlohmann::json;

// The mock cluster's group coordinator keeps a member that left until its session times out, so a
// rejoining verifier waits for it: a short session keeps the test short.
const char* const kGroupTiming = "session.timeout.ms=6000,heartbeat.interval.ms=500";
const std::string kHsmaudit = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";

class FleetVerify : public ::testing::Test {
protected:
    void SetUp() override {
        cluster_.create_topic("hsm.audit", 4, 3);
        keys_ = tmp_.path() + "/keys";
        std::filesystem::create_directory(keys_);
    }

    void write_key(const Appliance& a) {
        ASSERT_TRUE(base::write_file_atomic(keys_ + "/" + a.serial() + ".key", a.key().serialize(), 0600, false));
    }
    void write_pub(const Appliance& a) {
        ASSERT_TRUE(base::write_file_atomic(keys_ + "/" + a.serial() + ".pub", a.key().pub().serialize(), 0644, false));
    }

    /// Produces through the real exporter (checkpoints into the audit topic too).
    void produce(const std::vector<agent::Event>& events) {
        auto o = mock_options(cluster_.bootstraps());
        o.topics = {"hsm.audit", "hsm.syslog", "hsm.alerts", "hsm.audit"};
        KafkaExporter exporter(o, std::make_unique<IdFormatter>());
        const auto r = drive(exporter, events, 512, 4096, {});
        ASSERT_EQ(r.delivered, events.size()) << (r.errors.empty() ? "" : r.errors.front());
    }

    /// Runs the CLI; returns (exit code, parsed JSON report).
    std::pair<int, json> verify(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {kHsmaudit, "verify", "--kafka", cluster_.bootstraps(), "--topic", "hsm.audit",
                                         "--keys",  keys_,    "--json",  "--idle-timeout",      "20"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto [code, out] = run(argv, tmp_.file("verify-" + std::to_string(++runs_)));
        json j;
        const auto brace = out.find('{');
        if (brace != std::string::npos) j = json::parse(out.substr(brace), nullptr, false);
        if (j.is_discarded() || !j.is_object()) ADD_FAILURE() << "not a JSON report: " << out;
        if (std::getenv("KAFKA_TEST_VERBOSE")) (void)std::fprintf(stderr, "%s\n", out.c_str());
        return {code, j};
    }

    static const json* serial(const json& report, const std::string& s) {
        for (const auto& o : report["serials"])
            if (o["serial"] == s) return &o;
        return nullptr;
    }

    MockCluster cluster_{3};
    TempDir tmp_;
    std::string keys_;
    int runs_ = 0;
};

TEST_F(FleetVerify, ThreeAppliancesOneTamperedTheTamperedOneIsNamedTheOthersPass) {
    Appliance a("150101", 300, 1), b("150102", 300, 2), c("150103", 300, 3);
    for (auto* x : {&a, &b, &c}) write_key(*x);
    std::vector<agent::Event> events;
    std::uint64_t tampered_seq = 0;
    for (int i = 0; i < 1000; ++i) {
        a.emit(events, true);   // open and seal entries in the stream: full segment verification
        b.emit(events, false);  // records only: record-to-record MACs under the epoch header
        c.emit(events, true);
        if (i == 600) {
            // Change c's record 601 after the module MACed it: its result code becomes "success".
            auto& e = events.back().entry == agent::EntryKind::record ? events.back() : events[events.size() - 2];
            ASSERT_EQ(e.serial, "150103");
            const auto pos = e.line.find(" result=0x");
            ASSERT_NE(pos, std::string::npos);
            e.line[pos + 17] = e.line[pos + 17] == '1' ? '0' : '1';
            tampered_seq = e.record.seq;
        }
    }
    events.push_back(a.checkpoint(1));  // a's signed chain head, on the same topic
    produce(events);

    auto [code, report] = verify();
    EXPECT_EQ(code, 1) << report.dump(2);
    EXPECT_EQ(report["verdict"], "failed");
    const json* ra = serial(report, "150101");
    const json* rb = serial(report, "150102");
    const json* rc = serial(report, "150103");
    ASSERT_TRUE(ra && rb && rc) << report.dump(2);
    EXPECT_EQ((*ra)["verdict"], "verified") << ra->dump(2);
    EXPECT_EQ((*ra)["records"], 1000);
    EXPECT_EQ((*ra)["last_seq"], 1000);
    EXPECT_EQ((*ra)["seals"], 3);
    EXPECT_EQ((*ra)["segments"], 4);
    EXPECT_EQ((*ra)["anchors_matched"], 1);
    EXPECT_EQ((*rb)["verdict"], "verified") << rb->dump(2);
    EXPECT_EQ((*rb)["records"], 1000);
    EXPECT_EQ((*rb)["macs_checked"], 999);  // the first record is the stream's start
    EXPECT_EQ((*rc)["verdict"], "failed");
    ASSERT_EQ((*rc)["faults_total"], 1) << rc->dump(2);
    EXPECT_EQ((*rc)["faults"][0]["kind"], "record_mac_mismatch");
    EXPECT_EQ((*rc)["faults"][0]["seq"], tampered_seq);
    // Issue 18: the partitions verified on one thread and on three give the same report (the run
    // above used the default, every CPU online).
    for (const char* jobs : {"1", "3"}) {
        auto [jcode, jreport] = verify({"--jobs", jobs});
        EXPECT_EQ(jcode, code) << "--jobs " << jobs;
        EXPECT_EQ(jreport.dump(2), report.dump(2)) << "--jobs " << jobs;
    }

    // The text report names it too.
    auto [tcode, text] = run({kHsmaudit, "verify", "--kafka", cluster_.bootstraps(), "--topic", "hsm.audit", "--keys",
                              keys_, "--idle-timeout", "20"},
                             tmp_.file("text"));
    EXPECT_EQ(tcode, 1);
    EXPECT_NE(text.find("150103: FAILED"), std::string::npos) << text;
    EXPECT_NE(text.find("150101: VERIFIED"), std::string::npos) << text;
}

TEST_F(FleetVerify, GapsRedeliveriesBootAndMissingKeysAreToldApart) {
    Appliance a("150201", 100, 4), b("150202", 100, 5), c("150203", 100, 6);
    write_key(a);
    write_pub(b);  // public key only: seals and checkpoints, no record MACs
    std::vector<agent::Event> events;
    std::vector<agent::Event> a_records;
    for (int i = 0; i < 250; ++i) {
        std::vector<agent::Event> batch;
        a.emit(batch, false);
        if (i == 120) continue;  // a's record 121 never arrives: a gap
        for (auto& e : batch) events.push_back(e);
        a_records.push_back(batch.front());
        b.emit(events, true);
        c.emit(events, false);  // no key for c
    }
    // The exporter resent a's records 200..210 after a failure (at-least-once): not a fault.
    for (std::size_t i = 198; i < 209; ++i) events.push_back(a_records[i]);
    produce(events);

    auto [code, report] = verify();
    EXPECT_EQ(code, 1) << report.dump(2);
    const json* ra = serial(report, "150201");
    const json* rb = serial(report, "150202");
    const json* rc = serial(report, "150203");
    ASSERT_TRUE(ra && rb && rc) << report.dump(2);
    ASSERT_EQ((*ra)["faults_total"], 1) << ra->dump(2);
    EXPECT_EQ((*ra)["faults"][0]["kind"], "sequence_gap");
    EXPECT_EQ((*ra)["faults"][0]["seq"], 121);
    EXPECT_EQ((*ra)["redelivered"], 11);
    EXPECT_EQ((*rb)["verdict"], "verified") << rb->dump(2);
    EXPECT_EQ((*rb)["key"], "pub");
    EXPECT_EQ((*rb)["seals"], 2);
    EXPECT_EQ((*rc)["verdict"], "failed");
    EXPECT_EQ((*rc)["faults"][0]["kind"], "no_key");
    auto [one_code, one] = verify({"--jobs", "1"});  // issue 18: the same report on one thread
    EXPECT_EQ(one_code, code);
    EXPECT_EQ(one.dump(2), report.dump(2));
}

TEST_F(FleetVerify, AGroupResumesWhereItStoppedWithTheChainStateCommittedWithItsOffsets) {
    Appliance a("150301", 200, 7), b("150302", 200, 8), c("150303", 200, 9);
    for (auto* x : {&a, &b, &c}) write_key(*x);
    std::vector<agent::Event> first, second;
    for (int i = 0; i < 500; ++i)
        for (auto* x : {&a, &b, &c}) x->emit(first, x != &b);
    produce(first);
    auto [code1, r1] = verify({"--group", "soc-verifiers", "--kafka-property", kGroupTiming});
    EXPECT_EQ(code1, 0) << r1.dump(2);
    for (const char* s : {"150301", "150302", "150303"}) {
        const json* o = serial(r1, s);
        ASSERT_TRUE(o) << r1.dump(2);
        EXPECT_EQ((*o)["records"], 500);
        EXPECT_EQ((*o)["resumed"], false);
    }

    for (int i = 0; i < 300; ++i)
        for (auto* x : {&a, &b, &c}) x->emit(second, x != &b);
    // c's record 700 is altered in the second run: found after the resume.
    for (auto& e : second)
        if (e.serial == "150303" && e.entry == agent::EntryKind::record && e.record.seq == 700)
            e.line.replace(e.line.find(" sess="), 6, " sess=9");
    produce(second);
    auto [code2, r2] = verify({"--group", "soc-verifiers", "--kafka-property", kGroupTiming});
    EXPECT_EQ(code2, 1) << r2.dump(2);
    for (const char* s : {"150301", "150302", "150303"}) {
        const json* o = serial(r2, s);
        ASSERT_TRUE(o) << r2.dump(2);
        EXPECT_EQ((*o)["records"], 300) << s << ": only what came after the committed offset";
        EXPECT_EQ((*o)["first_seq"], 501);
        EXPECT_EQ((*o)["resumed"], true);
    }
    // Record 501's MAC chains to record 500's, verified in the first run: checked across the resume.
    EXPECT_EQ((*serial(r2, "150302"))["macs_checked"], 300);
    EXPECT_EQ((*serial(r2, "150301"))["verdict"], "verified");
    const json* rc = serial(r2, "150303");
    EXPECT_EQ((*rc)["faults"][0]["kind"], "record_mac_mismatch") << rc->dump(2);
    EXPECT_EQ((*rc)["faults"][0]["seq"], 700);

    // --from-beginning ignores the group's position: the whole stream again.
    auto [code3, r3] = verify({"--group", "soc-verifiers", "--from-beginning", "--kafka-property", kGroupTiming});
    EXPECT_EQ(code3, 1);
    EXPECT_EQ((*serial(r3, "150301"))["records"], 800);
}

/// The messages of records-only events as the consumer reads them (headers kind, entry, line, epoch).
std::vector<exporters::kafka::StreamMessage> messages_of(const std::vector<agent::Event>& events) {
    std::vector<exporters::kafka::StreamMessage> out;
    std::uint64_t offset = 0;
    for (const auto& e : events) {
        const std::string epoch = std::to_string(e.epoch);
        out.push_back(exporters::kafka::stream_message("hsm.audit[0]", offset++,
                                                       [&](const char* name) -> std::optional<std::string_view> {
                                                           const std::string_view n(name);
                                                           if (n == "kind") return "audit";
                                                           if (n == "entry") return "record";
                                                           if (n == "line") return std::string_view(e.line);
                                                           if (n == "epoch") return std::string_view(epoch);
                                                           return std::nullopt;
                                                       }));
    }
    return out;
}

// A message claiming epoch 2^64-1 (a forged header) once made the verifier derive epoch keys up
// to it, one HMAC per epoch: now it is epoch_out_of_range, named as `hsmaudit verify` names it, the
// record is not verified, the chain goes on after it, and the run ends at once.
TEST(FleetChain, AMessageClaimingEpochTwoToTheSixtyFourIsAFaultNotAStall) {
    Appliance a("150401", 4, 11);
    std::vector<agent::Event> events;
    for (int i = 0; i < 12; ++i) a.emit(events, false);
    auto messages = messages_of(events);
    ASSERT_EQ(messages.size(), 12U);
    ASSERT_EQ(messages[6].epoch, 1U);
    messages[6].epoch = std::numeric_limits<std::uint64_t>::max();
    const auto started = std::chrono::steady_clock::now();
    exporters::kafka::ApplianceStream chain("150401", a.key(), std::nullopt, 16);
    for (const auto& m : messages) chain.feed(m);
    chain.finish(std::nullopt, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
    const auto& r = chain.report();
    ASSERT_EQ(r.faults_total, 1U);
    EXPECT_EQ(r.faults[0].kind_name(), "epoch_out_of_range");
    EXPECT_EQ(r.faults[0].where, "hsm.audit[0]@6");
    EXPECT_EQ(r.records, 12U);
    EXPECT_EQ(r.macs_checked, 10U);  // not the first (the start) nor the one out of range
    EXPECT_EQ(r.epoch, 2U);
    exporters::kafka::FleetReport fleet;
    fleet.topic = "hsm.audit";
    fleet.serials.push_back(r);
    EXPECT_EQ(exporters::kafka::render_fleet_json(fleet)["serials"][0]["faults"][0]["kind"], "epoch_out_of_range");
}

// A serial without a key verifies nothing: the state committed for it by an earlier run (when
// its key was there) is committed again unchanged, not reset to "first record is the start".
TEST(FleetChain, WithoutAKeyTheCommittedStateIsKeptAsItCame) {
    exporters::kafka::ChainState s;
    s.epoch = 4;
    s.epoch_known = true;
    s.next_seq = 901;
    s.last_mac[3] = 0x5a;
    s.mac_known = true;
    s.boot = 2;
    s.last_time_ms = 1'795'500'000'000;
    exporters::kafka::ApplianceStream chain("150501", std::nullopt, std::nullopt, 16);
    chain.resume(s);
    const auto back = chain.state();
    EXPECT_EQ(exporters::kafka::encode_states({{"150501", back}}), exporters::kafka::encode_states({{"150501", s}}));
}

TEST(FleetState, EncodesAndDecodesTheCommittedMetadata) {
    std::map<std::string, exporters::kafka::ChainState, std::less<>> states;
    exporters::kafka::ChainState s;
    s.epoch = 7;
    s.epoch_known = true;
    s.next_seq = 1234;
    s.last_mac[0] = 0xab;
    s.mac_known = true;
    s.boot = 3;
    s.last_time_ms = 1'795'500'000'123;
    states["150001"] = s;
    states["150002"] = exporters::kafka::ChainState{};
    const auto text = exporters::kafka::encode_states(states);
    auto back = exporters::kafka::decode_states(text);
    ASSERT_TRUE(back) << back.error().describe();
    ASSERT_EQ(back->size(), 2U);
    const auto& t = back->at("150001");
    EXPECT_EQ(t.epoch, 7U);
    EXPECT_TRUE(t.epoch_known);
    EXPECT_EQ(t.next_seq, 1234U);
    EXPECT_EQ(t.last_mac, s.last_mac);
    EXPECT_EQ(t.boot, 3U);
    EXPECT_EQ(t.last_time_ms, s.last_time_ms);
    EXPECT_FALSE(back->at("150002").mac_known);
    EXPECT_FALSE(exporters::kafka::decode_states("v1;../x:1:1:-:0:0"));
    EXPECT_FALSE(exporters::kafka::decode_states("v2"));
}

}  // namespace
}  // namespace hsmaudit::testing::kafka
