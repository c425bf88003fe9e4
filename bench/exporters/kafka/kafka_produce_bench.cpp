// Records/s from the Kafka exporter to librdkafka's mock cluster (3 brokers, in this process),
// every record counted only once its delivery report says PERSISTED (idempotent producer,
// acks=all). Reference in the same run: the same messages produced by a plain librdkafka producer
// (acks=1, no idempotence, no headers, no delivery-report callback; flushed at the end).
//
// The mock cluster runs in this process and takes CPU from the producer; each side's own CPU is
// reported apart: the producer's (the calling thread plus the threads its rd_kafka_t started,
// from /proc/self/task) and the mock cluster's (the threads that existed before the producer).
// Rounds run the sides interleaved (raw, exporter, exporter without the line header, ...) and
// the summary prints medians, min-max and the ratio of medians.
//
// The value: the exporter sides (a) and (b) send the record's segment line (219 bytes), as the
// figures before issue 18 did. A Kafka destination's default format is JSON (kafka_factory.cpp):
// sides (d) and (e) send the default configuration's real value, the event rendered by
// make_formatter() with the default options (format json, no syslog header, 8 KiB), (d) with the
// streaming JSON writer of exporters/formats/json.cpp, (e) with the nlohmann DOM renderer it
// replaced (the test's frozen copy, tests/unit/exporters/formats/json_oracle.cpp), for the
// difference in one run.
//
//   kafka_produce_bench [records] [serials] [rounds]      (defaults: 1000000 3 3)
//   kafka_produce_bench 20000 3 1                          (quick: well under 15 s)
//   KAFKA_BENCH_ONLY=exporter: side (a) alone; =json: side (d) alone; =json-dom: side (e) alone
//     (the summary then gives that side alone: no ratio, no target)
//   KAFKA_BENCH_WINDOW=<batch>,<in flight>: the exporter sides' send batch and window (default:
//     the runner's, exporters.*.batch 512 and exporters.*.max_in_flight 10000)
//
// Figures: docs/BENCHMARKS.md, "Kafka with delivery reports".
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agent/engine/export/runner.h"
#include "exporters/kafka/kafka_exporter.h"
#include "tests/integration/exporters/kafka/exporter_driver.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/kafka/kafka_test_util.h"
#include "tests/unit/exporters/formats/json_oracle.h"

namespace {

using namespace hsmaudit;
using Clock = std::chrono::steady_clock;

/// The value is the record's segment line (~200 bytes): the size of a JSON rendering.
class LineFormatter final : public exporters::formats::Formatter {
public:
    void format(const agent::Event& e, std::string& out) const override { out += e.line; }
    [[nodiscard]] std::string_view name() const override { return "line"; }
};

/// JSON by the nlohmann DOM renderer the streaming writer replaced (the default options; the
/// Formatter's max_message_bytes search is not needed: every record here renders well below 8 KiB).
class DomJsonFormatter final : public exporters::formats::Formatter {
public:
    void format(const agent::Event& e, std::string& out) const override {
        const std::size_t start = out.size();
        exporters::formats::test::oracle::render_json(e, options_, {}, out);
        if (out.size() - start > options_.max_message_bytes) std::abort();  // not a case this bench has
    }
    [[nodiscard]] std::string_view name() const override { return "json (nlohmann DOM)"; }

private:
    exporters::formats::FormatOptions options_ = json_options();
    static exporters::formats::FormatOptions json_options() {
        exporters::formats::FormatOptions o;
        o.kind = exporters::formats::FormatKind::json;
        return o;
    }
};

/// The value a side sends.
enum class Value : std::uint8_t { line, json, json_dom };

std::unique_ptr<exporters::formats::Formatter> formatter(Value v) {
    switch (v) {
        case Value::line: return std::make_unique<LineFormatter>();
        case Value::json_dom: return std::make_unique<DomJsonFormatter>();
        case Value::json: break;
    }
    exporters::formats::FormatOptions o;  // what kafka_factory.cpp's format_of() gives by default
    o.kind = exporters::formats::FormatKind::json;
    return exporters::formats::make_formatter(o);
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// CPU seconds (utime + stime) of each thread of this process, by thread id.
std::map<long, double> thread_cpu() {
    std::map<long, double> out;
    static const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    DIR* d = opendir("/proc/self/task");
    if (!d) return out;
    while (const dirent* ent = readdir(d)) {
        if (ent->d_name[0] == '.') continue;
        std::ifstream f(std::string("/proc/self/task/") + ent->d_name + "/stat");
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        const auto close = text.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(text.substr(close + 2));
        std::string field;
        unsigned long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && rest >> field; ++i) {
            if (i == 14) utime = std::stoul(field);
            if (i == 15) stime = std::stoul(field);
        }
        out[std::stol(ent->d_name)] = static_cast<double>(utime + stime) / tck;
    }
    closedir(d);
    return out;
}

/// One side's run: wall seconds, and CPU seconds of the producer and of the mock cluster.
struct Sample {
    double seconds = 0;
    double producer_cpu = 0;
    double caller_cpu = 0;  // of producer_cpu: the calling thread's (the runner's, in the agent)
    double mock_cpu = 0;
};

double process_cpu() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);  // exited threads included (the producer's, after its destruction)
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct CpuMark {
    std::map<long, double> threads = thread_cpu();
    double process = process_cpu();
};

/// Splits the CPU used since `before`: the mock cluster's threads (those that existed before,
/// except this one) and the producer's (the rest of the process: this thread and the threads its
/// rd_kafka_t started and ended).
Sample split(const CpuMark& before, double seconds) {
    Sample s;
    s.seconds = seconds;
    const long self = static_cast<long>(gettid());
    const double total = process_cpu() - before.process;
    for (const auto& [tid, cpu] : thread_cpu()) {
        const auto b = before.threads.find(tid);
        if (b == before.threads.end()) continue;
        if (tid == self)
            s.caller_cpu = cpu - b->second;
        else
            s.mock_cpu += cpu - b->second;
    }
    s.producer_cpu = total - s.mock_cpu;
    return s;
}

/// Events per send() and most events in flight: the runner's defaults (exporters.*.batch,
/// exporters.*.max_in_flight), or KAFKA_BENCH_WINDOW=<batch>,<in flight> for an experiment.
struct Window {
    std::size_t batch = agent::RunnerOptions{}.batch;
    std::size_t in_flight = agent::RunnerOptions{}.max_in_flight;
};

Window window() {
    Window w;
    if (const char* env = std::getenv("KAFKA_BENCH_WINDOW")) {
        char* end = nullptr;
        w.batch = std::strtoull(env, &end, 10);
        w.in_flight = *end == ',' ? std::strtoull(end + 1, nullptr, 10) : 0;
        if (w.batch == 0 || w.in_flight == 0) {
            (void)std::fprintf(stderr, "KAFKA_BENCH_WINDOW: expected <batch>,<in flight>, got '%s'\n", env);
            std::exit(2);
        }
    }
    return w;
}

Sample run_exporter(const std::string& brokers, const std::vector<agent::Event>& events, bool line_header,
                    Value value = Value::line) {
    auto o = testing::kafka::mock_options(brokers);
    o.line_header = line_header;
    // Extra pass-through properties for experiments: KAFKA_BENCH_PROPS="k=v,k=v".
    if (const char* extra = std::getenv("KAFKA_BENCH_PROPS"))
        if (auto p = exporters::kafka::parse_property_list(extra, "KAFKA_BENCH_PROPS"))
            o.properties.insert(o.properties.end(), p->begin(), p->end());
    const CpuMark before;
    exporters::kafka::KafkaExporter exporter(o, formatter(value));
    const auto t0 = Clock::now();
    const Window w = window();
    const auto r = testing::kafka::drive(exporter, events, w.batch, w.in_flight, {}, std::chrono::seconds(600));
    const double s = seconds_since(t0);
    if (r.delivered != events.size() || r.failures != 0) {
        (void)std::fprintf(stderr, "exporter: delivered %llu of %zu, %llu failures\n",
                           static_cast<unsigned long long>(r.delivered), events.size(),
                           static_cast<unsigned long long>(r.failures));
        std::exit(1);
    }
    const auto ks = exporter.kafka_stats();
    if (ks.persisted < events.size()) {
        (void)std::fprintf(stderr, "exporter: %llu persisted reports for %zu records\n",
                           static_cast<unsigned long long>(ks.persisted), events.size());
        std::exit(1);
    }
    return split(before, s);
}

Sample run_raw(const std::string& brokers, const std::vector<agent::Event>& events) {
    exporters::kafka::detail::ConfPtr conf(rd_kafka_conf_new());
    char err[512];
    for (auto [k, v] : {std::pair{"bootstrap.servers", brokers.c_str()}, std::pair{"acks", "1"},
                        std::pair{"enable.idempotence", "false"}, std::pair{"log_level", "3"}})
        if (rd_kafka_conf_set(conf.get(), k, v, err, sizeof err) != RD_KAFKA_CONF_OK) std::exit(2);
    const CpuMark before;
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
    const double s = seconds_since(t0);
    rk.reset();  // its threads end: counted in the process's CPU as for the exporter
    return split(before, s);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Side {
    const char* name;
    std::vector<Sample> samples;
    [[nodiscard]] std::vector<double> rates(std::size_t records) const {
        std::vector<double> out;
        for (const auto& s : samples) out.push_back(static_cast<double>(records) / s.seconds);
        return out;
    }
    [[nodiscard]] std::vector<double> us_per_record(std::size_t records, bool producer, bool caller = false) const {
        std::vector<double> out;
        for (const auto& s : samples)
            out.push_back((caller     ? s.caller_cpu
                           : producer ? s.producer_cpu
                                      : s.mock_cpu) *
                          1e6 / static_cast<double>(records));
        return out;
    }
};

std::string loadavg() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return a + " " + b + " " + c;
}

int run(int argc, char** argv) {
    const std::size_t records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const std::size_t serials = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 3;
    const std::size_t rounds = argc > 3 ? std::max<std::size_t>(1, std::strtoull(argv[3], nullptr, 10)) : 3;
    const std::string load_start = loadavg();
    std::vector<testing::kafka::Appliance> fleet;
    for (std::size_t i = 0; i < serials; ++i) fleet.emplace_back(std::to_string(150000 + i), 10'000, i + 1);
    std::vector<agent::Event> events;
    events.reserve(records);
    for (std::size_t i = 0; i < records; ++i) events.push_back(fleet[i % serials].next());
    std::size_t bytes = 0;
    for (const auto& e : events) bytes += e.line.size();
    double json_bytes = 0;
    {
        const auto f = formatter(Value::json);
        std::string out;
        for (const auto& e : events) {
            out.clear();
            f->format(e, out);
            json_bytes += static_cast<double>(out.size());
        }
        json_bytes /= static_cast<double>(records);
    }

    testing::kafka::MockCluster cluster(3);
    for (const char* t : {"hsm.audit", "hsm.syslog", "hsm.alerts", "hsm.checkpoints", "hsm.raw"})
        cluster.create_topic(t, 6, 3);
    std::printf(
        "%zu records from %zu appliances, %.0f bytes/record, mock cluster of 3 brokers, 6 partitions, "
        "%zu rounds\n",
        records, serials, static_cast<double>(bytes) / static_cast<double>(records), rounds);
    Side raw{"plain librdkafka producer (acks=1, no idempotence, no headers, no reports waited)", {}};
    Side exp{
        "KafkaExporter, default producer settings (idempotent, acks=all, line header on, persisted reports), value: "
        "the segment line, not the default format",
        {}};
    Side noline{"KafkaExporter, line_header off, value: the segment line", {}};
    Side json{
        "KafkaExporter, default configuration with its default value: format json by the streaming writer "
        "(line header on)",
        {}};
    Side dom{"KafkaExporter, default configuration, format json by the nlohmann DOM renderer (before)", {}};
    // KAFKA_BENCH_ONLY=exporter, json or json-dom: that side alone (for a profile of it).
    const char* only_env = std::getenv("KAFKA_BENCH_ONLY");
    const std::string only = only_env == nullptr ? "" : only_env;
    const bool all = only.empty();
    const Sample none{1, 0, 0, 0};
    for (std::size_t r = 0; r < rounds; ++r) {
        const std::string& b = cluster.bootstraps();
        raw.samples.push_back(all ? run_raw(b, events) : none);
        exp.samples.push_back(all || only == "exporter" ? run_exporter(b, events, true) : none);
        noline.samples.push_back(all ? run_exporter(b, events, false) : none);
        json.samples.push_back(all || only == "json" ? run_exporter(b, events, true, Value::json) : none);
        dom.samples.push_back(all || only == "json-dom" ? run_exporter(b, events, true, Value::json_dom) : none);
        std::string round = "round " + std::to_string(r + 1) + ":";
        auto add = [&](const char* name, const Side& side, bool ran) {
            if (ran)
                round +=
                    std::string(" ") + name + " " +
                    std::to_string(static_cast<long long>(static_cast<double>(records) / side.samples.back().seconds)) +
                    "/s";
        };
        add("raw", raw, all);
        add("exporter", exp, all || only == "exporter");
        add("exporter-without-line", noline, all);
        add("json", json, all || only == "json");
        add("json-DOM", dom, all || only == "json-dom");
        std::printf("%s; load %s\n", round.c_str(), loadavg().c_str());
        (void)std::fflush(stdout);
    }
    auto line = [&](const Side& s) {
        const auto rates = s.rates(records);
        const auto prod = s.us_per_record(records, true);
        const auto mock = s.us_per_record(records, false);
        std::printf(
            "  %s:\n    %.0f records/s (%.0f-%.0f); producer CPU %.2f us/record (%.2f-%.2f), of which the "
            "calling thread %.2f; mock cluster CPU %.2f us/record\n",
            s.name, median(rates), *std::min_element(rates.begin(), rates.end()),
            *std::max_element(rates.begin(), rates.end()), median(prod), *std::min_element(prod.begin(), prod.end()),
            *std::max_element(prod.begin(), prod.end()), median(s.us_per_record(records, true, true)), median(mock));
    };
    const bool ran_exp = all || only == "exporter", ran_json = all || only == "json",
               ran_dom = all || only == "json-dom";
    const Window w = window();
    std::printf("\n=== kafka_produce_bench summary: medians (min-max) of %zu interleaved rounds ===\n", rounds);
    std::printf("command: %s %zu %zu %zu; load average at start %s, at end %s\n", argv[0], records, serials, rounds,
                load_start.c_str(), loadavg().c_str());
    std::printf(
        "exporter sides: %zu events a send, at most %zu in flight%s\n", w.batch, w.in_flight,
        std::getenv("KAFKA_BENCH_WINDOW") ? " (KAFKA_BENCH_WINDOW, not the defaults)" : " (the runner's defaults)");
    if (const char* extra = std::getenv("KAFKA_BENCH_PROPS")) std::printf("KAFKA_BENCH_PROPS=%s\n", extra);
    if (!all) std::printf("KAFKA_BENCH_ONLY=%s: that side alone, no ratio and no target\n", only.c_str());
    if (ran_exp) line(exp);
    if (all) line(noline);
    if (all) line(raw);
    if (ran_json) line(json);
    if (ran_dom) line(dom);
    if (!all) return 0;
    const double e = median(exp.rates(records)), n = median(noline.rates(records)), r = median(raw.rates(records));
    std::printf(
        "  ratio exporter / plain producer %.2f (line header off: %.2f); producer CPU per record, exporter / "
        "plain %.2f\n",
        e / r, n / r, median(exp.us_per_record(records, true)) / median(raw.us_per_record(records, true)));
    std::printf("  target 300,000 records/s (line value): %s\n", e >= 300'000 ? "met" : "NOT met");
    const double j = median(json.rates(records)), d = median(dom.rates(records));
    std::printf(
        "  format json (the default value, %.0f bytes/record): writer / DOM records/s %.2f, producer CPU per record "
        "DOM / writer %.2f, calling thread DOM / writer %.2f; ratio json / plain producer %.2f\n",
        json_bytes, j / d, median(dom.us_per_record(records, true)) / median(json.us_per_record(records, true)),
        median(dom.us_per_record(records, true, true)) / median(json.us_per_record(records, true, true)), j / r);
    std::printf("  target 300,000 records/s (default configuration, format json): %s\n",
                j >= 300'000 ? "met" : "NOT met");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        (void)std::fprintf(stderr, "kafka_produce_bench: %s\n", e.what());
        return 1;
    } catch (...) {
        return 1;
    }
}
