// The probes' families: names, types, values, label sets, histogram buckets; every family name
// is emitted by exactly one collectable.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "agent/api/metric_families.h"
#include "agent/engine/export/probe.h"
#include "agent/engine/pipeline/probe.h"
#include "agent/engine/store/probe.h"
#include "collectors/module/probe.h"
#include "collectors/syslog/probe_collector.h"
#include "exporters/prometheus/process_collector.h"

namespace {

using namespace hsmaudit;
namespace fs = std::filesystem;

const prometheus::MetricFamily* find(const std::vector<prometheus::MetricFamily>& fs, const std::string& name) {
    for (const auto& f : fs)
        if (f.name == name) return &f;
    return nullptr;
}

std::string label(const prometheus::ClientMetric& m, const std::string& name) {
    for (const auto& l : m.label)
        if (l.name == name) return l.value;
    return "";
}

TEST(LatencyHistogram, BucketsFollowPrometheusLeSemantics) {
    const double bounds[] = {0.01, 0.1, 1};
    agent::LatencyHistogram h(bounds);
    h.observe(0.01);  // le=0.01 (inclusive)
    h.observe(0.05);  // le=0.1
    h.observe(5);     // +Inf
    h.observe(-3);    // clock skew counts as 0
    auto t = h.tally();
    h.count(t, 0.5);
    h.count(t, 0.5);
    h.add(t);
    const auto s = h.snapshot();
    ASSERT_EQ(s.counts.size(), 4u);
    EXPECT_EQ(s.counts[0], 2u);
    EXPECT_EQ(s.counts[1], 1u);
    EXPECT_EQ(s.counts[2], 2u);
    EXPECT_EQ(s.counts[3], 1u);
    EXPECT_EQ(s.count, 6u);
    EXPECT_NEAR(s.sum_seconds, 0.01 + 0.05 + 5 + 1.0, 1e-6);

    auto f = agent::metrics::histogram_family("x_seconds", "x");
    agent::metrics::add(f, s);
    const auto& b = f.metric.at(0).histogram.bucket;
    ASSERT_EQ(b.size(), 4u);
    EXPECT_EQ(b[0].cumulative_count, 2u);
    EXPECT_EQ(b[2].cumulative_count, 5u);
    EXPECT_EQ(b[3].cumulative_count, 6u);
    EXPECT_TRUE(std::isinf(b[3].upper_bound));
    EXPECT_EQ(f.metric[0].histogram.sample_count, 6u);
}

TEST(DrainProbe, FamiliesCarryTheStats) {
    agent::DrainStats d;
    d.records = 90;
    d.records_verified = 100;
    d.faults_by_kind[static_cast<std::size_t>(mac::FaultKind::sequence_gap)] = 3;
    d.ring_fill = 0.25;
    d.seconds_to_reserve = -1;
    d.acks_paused = true;
    const double bounds[] = {1};
    agent::LatencyHistogram h(bounds);
    h.observe(0.5);
    const auto fs = agent::drain_families(d, h.snapshot(), agent::LatencyHistogram(bounds).snapshot());

    EXPECT_EQ(find(fs, "hsmaudit_drain_records_stored_total")->metric.at(0).counter.value, 90);
    EXPECT_EQ(find(fs, "hsmaudit_drain_records_stored_total")->type, prometheus::MetricType::Counter);
    EXPECT_EQ(find(fs, "hsmaudit_drain_records_verified_total")->metric.at(0).counter.value, 100);
    EXPECT_EQ(find(fs, "hsmaudit_ring_fill_ratio")->metric.at(0).gauge.value, 0.25);
    EXPECT_TRUE(std::isinf(find(fs, "hsmaudit_ring_predicted_full_seconds")->metric.at(0).gauge.value));
    EXPECT_EQ(find(fs, "hsmaudit_drain_acks_paused")->metric.at(0).gauge.value, 1);

    const auto* faults = find(fs, "hsmaudit_chain_verification_failures_total");
    ASSERT_NE(faults, nullptr);
    EXPECT_EQ(faults->metric.size(), mac::kFaultKindCount);  // every kind, zeros included
    std::map<std::string, double> by_kind;
    for (const auto& m : faults->metric) by_kind[label(m, "kind")] = m.counter.value;
    EXPECT_EQ(by_kind.at("sequence_gap"), 3);
    EXPECT_EQ(by_kind.at("record_mac_mismatch"), 0);
    EXPECT_EQ(by_kind.size(), mac::kFaultKindCount);

    const auto* batch = find(fs, "hsmaudit_drain_batch_duration_seconds");
    ASSERT_NE(batch, nullptr);
    EXPECT_EQ(batch->type, prometheus::MetricType::Histogram);
    EXPECT_EQ(batch->metric.at(0).histogram.sample_count, 1u);
}

TEST(ModuleProbe, NothingBeforeTheFirstStatusThenTheModulesFigures) {
    collectors::ModuleProbe probe;
    EXPECT_TRUE(collectors::ModuleProbeCollector(probe).Collect().empty());
    hsmcore::ring::RingStatus st;
    st.capacity = 1000;
    st.reserve = 50;
    st.used_bytes = 400;
    st.oldest_seq = 10;
    st.next_seq = 30;
    st.blocked = true;
    st.counters.op_requests = 7;
    st.counters.refused_log_full = 2;
    st.counters.critical_events = 4;
    probe.record(st, 1'700'000'000'000);
    const auto fs = collectors::ModuleProbeCollector(probe).Collect();
    EXPECT_EQ(find(fs, "hsmaudit_ring_used_records")->metric.at(0).gauge.value, 20);
    EXPECT_EQ(find(fs, "hsmaudit_ring_capacity_bytes")->metric.at(0).gauge.value, 1000);
    EXPECT_EQ(find(fs, "hsmaudit_module_blocked")->metric.at(0).gauge.value, 1);
    EXPECT_EQ(find(fs, "hsmaudit_module_operation_requests_total")->metric.at(0).counter.value, 7);
    const auto* refused = find(fs, "hsmaudit_module_operations_refused_total");
    EXPECT_EQ(label(refused->metric.at(0), "reason"), "log_full");
    EXPECT_EQ(refused->metric.at(0).counter.value, 2);
    EXPECT_EQ(find(fs, "hsmaudit_module_status_timestamp_seconds")->metric.at(0).gauge.value, 1'700'000'000.0);
}

TEST(ExportProbe, LagDeliveryAndTransportPerDestination) {
    agent::RunnerStats s;
    s.state = agent::RunnerState::down;
    s.cursor[0] = 90;
    s.newest[0] = 100;
    s.delivered[0] = 90;
    s.resent = 5;
    s.failures = 2;
    s.last_delivered_event_ms = 1'000'000;
    s.transport.connect_failures = 3;
    agent::ExportProbe probe([] { return std::int64_t{1'030'000}; });
    probe.add({"siem", "relp", {true, false, false, false}, [s] { return s; }, nullptr});
    agent::RunnerStats caught_up;
    caught_up.state = agent::RunnerState::up;
    caught_up.cursor[0] = caught_up.newest[0] = 100;
    probe.add({"kafka1", "kafka", {true, true, false, false}, [caught_up] { return caught_up; }, nullptr});
    const auto fs = probe.Collect();

    std::map<std::string, double> lag_s, up;
    for (const auto& m : find(fs, "hsmaudit_exporter_lag_seconds")->metric) lag_s[label(m, "exporter")] = m.gauge.value;
    for (const auto& m : find(fs, "hsmaudit_exporter_up")->metric) up[label(m, "exporter")] = m.gauge.value;
    EXPECT_EQ(lag_s.at("siem"), 30);  // the newest record it delivered is 30 s old
    EXPECT_EQ(lag_s.at("kafka1"), 0);
    EXPECT_EQ(up.at("siem"), 0);
    EXPECT_EQ(up.at("kafka1"), 1);
    std::set<std::string> lag_streams;
    for (const auto& m : find(fs, "hsmaudit_exporter_lag_events")->metric) {
        lag_streams.insert(label(m, "exporter") + "/" + label(m, "stream"));
        if (label(m, "exporter") == "siem") {
            EXPECT_EQ(m.gauge.value, 10);
        }
    }
    EXPECT_EQ(lag_streams, (std::set<std::string>{"siem/audit", "kafka1/audit", "kafka1/syslog"}));
    EXPECT_EQ(find(fs, "hsmaudit_exporter_events_resent_total")->metric.at(0).counter.value, 5);
    EXPECT_EQ(find(fs, "hsmaudit_exporter_connect_failures_total")->metric.at(0).counter.value, 3);
    EXPECT_EQ(find(fs, "hsmaudit_exporter_delivery_latency_seconds"), nullptr);  // no runner keeps one here

    // Waiting events, nothing delivered yet: the age is unknown, so no sample rather than a guess.
    agent::RunnerStats fresh;
    fresh.newest[0] = 5;
    EXPECT_FALSE(agent::exporter_lag_seconds(fresh, 1000).has_value());
}

TEST(SyslogProbe, OneSeriesPerListener) {
    collectors::syslog::Probe udp, tcp;
    collectors::syslog::Probe::add(udp.received, 10);
    collectors::syslog::Probe::add(udp.dropped, 2);
    collectors::syslog::Probe::add(tcp.malformed, 1);
    collectors::syslog::ProbeCollector c({{"udp:127.0.0.1:514", &udp}, {"tcp:127.0.0.1:601", &tcp}});
    const auto fs = c.Collect();
    const auto* dropped = find(fs, "hsmaudit_syslog_datagrams_dropped_total");
    ASSERT_EQ(dropped->metric.size(), 2u);
    EXPECT_EQ(label(dropped->metric[0], "listener"), "udp:127.0.0.1:514");
    EXPECT_EQ(dropped->metric[0].counter.value, 2);
    EXPECT_EQ(find(fs, "hsmaudit_syslog_messages_malformed_total")->metric[1].counter.value, 1);
}

TEST(StoreProbe, CountsFilesAndReportsRetention) {
    const fs::path dir = fs::path(::testing::TempDir()) / "store_probe_test";
    fs::remove_all(dir);
    fs::create_directories(dir / "ready_for_archive");
    fs::create_directories(dir / "archive");
    fs::create_directories(dir / "current");
    for (const char* f :
         {"ready_for_archive/hsm_1_00000001.log", "ready_for_archive/hsm_1_00000002.log", "current/hsm_1_00000003.log",
          "archive/audit-1-00000000-00000000.tgz", "archive/.tmp-audit-x.tgz"})
        std::ofstream(dir / f) << "x";
    const auto files = agent::count_store_files(dir.string());
    EXPECT_EQ(files.sealed_segments, 2u);
    EXPECT_EQ(files.open_segments, 1u);
    EXPECT_EQ(files.archives, 1u);  // the temp file of an unfinished archive is not one

    agent::RetentionStats r;
    r.used_bytes = 500;
    r.quota_bytes = 1000;
    r.level = agent::QuotaLevel::warning;
    r.last_check_ms = 1;
    agent::SpoolStats spool;
    spool.dropped = 4;
    const auto fs = agent::store_families(r, std::nullopt, files, spool);
    EXPECT_EQ(find(fs, "hsmaudit_store_quota_level")->metric.at(0).gauge.value, 1);
    EXPECT_EQ(find(fs, "hsmaudit_store_used_bytes")->metric.at(0).gauge.value, 500);
    EXPECT_EQ(find(fs, "hsmaudit_syslog_spool_dropped_total")->metric.at(0).counter.value, 4);
    EXPECT_EQ(find(fs, "hsmaudit_archiver_runs_total"), nullptr);  // no archiver given
    // Before the first quota check there is nothing to say (not zeros that look like an empty disk).
    EXPECT_EQ(find(agent::store_families(agent::RetentionStats{}, std::nullopt, std::nullopt, std::nullopt),
                   "hsmaudit_store_used_bytes"),
              nullptr);
    fs::remove_all(dir);
}

TEST(ProcessCollector, ReadsThisProcess) {
    const auto p = exporters::prometheus::read_process_figures();
    ASSERT_TRUE(p.has_value());
    EXPECT_GT(p->resident_bytes, 0);
    EXPECT_GE(p->virtual_bytes, p->resident_bytes);
    EXPECT_GT(p->open_fds, 2);  // stdin, stdout, stderr at least
    EXPECT_GE(p->max_fds, p->open_fds);
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_LE(p->start_time_seconds, now + 1);
    EXPECT_GT(p->start_time_seconds, now - 3600);  // this test binary started recently
}

// Two collectables emitting one name would give Prometheus a second TYPE line, which it refuses.
TEST(Probes, EveryFamilyNameComesFromOneCollectable) {
    std::map<std::string, std::string> owner;
    auto claim = [&](const std::string& who, const std::vector<prometheus::MetricFamily>& fs) {
        for (const auto& f : fs) {
            const auto [it, fresh] = owner.emplace(f.name, who);
            EXPECT_TRUE(fresh) << f.name << " from " << who << " and " << it->second;
            EXPECT_TRUE(f.name.starts_with("hsmaudit_") || f.name.starts_with("process_")) << f.name;
            EXPECT_EQ(f.type == prometheus::MetricType::Counter, f.name.ends_with("_total")) << f.name;
        }
    };
    const double bounds[] = {1};
    agent::LatencyHistogram h(bounds);
    claim("drain", agent::drain_families({}, h.snapshot(), h.snapshot()));
    collectors::ModuleProbe mp;
    mp.record({}, 1);
    claim("module", collectors::ModuleProbeCollector(mp).Collect());
    agent::RetentionStats r;
    r.last_check_ms = 1;
    claim("store", agent::store_families(r, agent::ArchiverStats{}, agent::StoreFiles{}, agent::SpoolStats{}));
    agent::RunnerStats rs;
    rs.last_delivered_event_ms = 1;
    claim("export", agent::export_families({{"a", "relp", {true, true, true, true}, rs, h.snapshot()}}, 1));
    collectors::syslog::Probe sp;
    claim("syslog", collectors::syslog::ProbeCollector({{"x", &sp}}).Collect());
    claim("process", exporters::prometheus::ProcessCollector().Collect());
    claim("build", exporters::prometheus::BuildInfoCollector().Collect());
    EXPECT_GT(owner.size(), 60u);
}

}  // namespace
