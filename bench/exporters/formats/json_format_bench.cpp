// The JSON and HEC renderers alone, one thread: the streaming writer (exporters/formats/json.cpp)
// against the nlohmann ordered_json DOM renderer it replaced (the test's frozen copy,
// tests/unit/exporters/formats/json_oracle.cpp), in the same run, repetitions interleaved at
// random. Each iteration renders one event into a cleared buffer, as an exporter does (the
// renderers alone, unlimited: the Formatter's max_message_bytes check around them is the same
// for both and never re-renders these events).
//
//   json_format_bench                  5 repetitions of 0.3 s each per side (about 20 s)
//   json_format_bench --quick          3 repetitions of 0.05 s (about 3 s)
//   json_format_bench --callgrind[=SIDE]  each side (or SIDE, e.g. json/audit/writer) renders every
//     event once, no timing: run under valgrind --tool=callgrind --toggle-collect='*render_all_*'
//     for instructions per event (callgrind_annotate --inclusive=yes: render_all_dom, _writer)
//   (any --benchmark_* flag is passed to Google Benchmark)
//
// Events: 4,096 audit records from 3 simulated appliances as the store serves them (exact line,
// MAC, event id), and 4,096 syslog messages (an appliance login failure with structured data and
// the raw message). Counters: bytes_per_event (the rendering), allocs_per_event (operator new
// calls in the loop). The summary prints medians (min-max) and the ratio of medians.
// g++ 12 sees the replaced operator new and delete below inlined into std::allocator and calls
// free() on what it takes for new's memory: a false positive (both are malloc and free here).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "exporters/formats/detail/render.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/unit/exporters/formats/json_oracle.h"
#include "tests/unit/exporters/formats/test_events.h"

namespace {
std::atomic<std::uint64_t> g_allocs{0};  // operator new calls: this program's own instrument
}  // namespace

// The replaced allocation functions are the instrument: malloc and free by design.
// NOLINTBEGIN(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

// NOLINTEND(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)

namespace {

using namespace hsmaudit;
using exporters::formats::FormatKind;
using exporters::formats::FormatOptions;
using exporters::formats::detail::RenderLimits;
using Render = void (*)(const agent::Event&, const FormatOptions&, const RenderLimits&, std::string&);

constexpr std::size_t kEvents = 4096;

const std::vector<agent::Event>& audit_events() {
    static const std::vector<agent::Event> events = [] {
        std::vector<testing::kafka::Appliance> fleet;
        fleet.reserve(3);
        for (int i = 0; i < 3; ++i) fleet.emplace_back(std::to_string(150000 + i), 10'000, i + 1);
        std::vector<agent::Event> v;
        for (std::size_t i = 0; i < kEvents; ++i) v.push_back(fleet[i % 3].next());
        return v;
    }();
    return events;
}

const std::vector<agent::Event>& syslog_events() {
    static const std::vector<agent::Event> events = [] {
        std::vector<agent::Event> v;
        for (std::size_t i = 0; i < kEvents; ++i) {
            auto e = exporters::formats::test::syslog_event();
            e.position += i;
            e.event_id = agent::make_event_id(e);
            e.received_ms = e.time_ms + 3;
            e.syslog.sd = {{"timeQuality", {{"tzKnown", "1"}, {"isSynced", "1"}}}};
            e.syslog.raw =
                "<164>1 2026-11-24T06:15:19.250Z myLuna lunash 1234 - [timeQuality tzKnown=\"1\" "
                "isSynced=\"1\"] " +
                e.syslog.msg;
            v.push_back(std::move(e));
        }
        return v;
    }();
    return events;
}

void bm_render(benchmark::State& state, Render render, FormatKind kind, const std::vector<agent::Event>* events) {
    FormatOptions o;
    o.kind = kind;
    const RenderLimits limits;
    std::string out;
    out.reserve(8192);
    std::size_t i = 0;
    std::size_t bytes = 0;
    const std::uint64_t allocs_before = g_allocs.load(std::memory_order_relaxed);
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        out.clear();
        render((*events)[i], o, limits, out);
        bytes += out.size();
        benchmark::DoNotOptimize(out.data());
        if (++i == events->size()) i = 0;
    }
    const auto n = static_cast<double>(state.iterations());
    state.counters["allocs_per_event"] =
        static_cast<double>(g_allocs.load(std::memory_order_relaxed) - allocs_before) / n;
    state.counters["bytes_per_event"] = static_cast<double>(bytes) / n;
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

struct Side {
    const char* name;
    Render render;
    FormatKind kind;
    const std::vector<agent::Event>* (*events)();
};

const std::vector<agent::Event>* audit() {
    return &audit_events();
}
const std::vector<agent::Event>* syslog() {
    return &syslog_events();
}

const std::vector<Side>& sides() {
    namespace d = exporters::formats::detail;
    namespace oracle = exporters::formats::test::oracle;
    static const std::vector<Side> s = {
        {"json/audit/dom", oracle::render_json, FormatKind::json, audit},
        {"json/audit/writer", d::render_json, FormatKind::json, audit},
        {"hec/audit/dom", oracle::render_hec, FormatKind::hec, audit},
        {"hec/audit/writer", d::render_hec, FormatKind::hec, audit},
        {"json/syslog/dom", oracle::render_json, FormatKind::json, syslog},
        {"json/syslog/writer", d::render_json, FormatKind::json, syslog},
    };
    return s;
}

/// Every event once with one side's renderer: the functions callgrind's --toggle-collect names
/// (noipa: identical bodies must not be folded into one).
[[gnu::noipa]] std::size_t render_all(const Side& s) {
    FormatOptions o;
    o.kind = s.kind;
    std::string out;
    std::size_t total = 0;
    for (const auto& e : *s.events()) {
        out.clear();
        s.render(e, o, RenderLimits{}, out);
        total += out.size();
    }
    return total;
}
[[gnu::noipa]] std::size_t render_all_dom(const Side& s) {
    return render_all(s);
}
[[gnu::noipa]] std::size_t render_all_writer(const Side& s) {
    return render_all(s);
}

/// Keeps each repetition's CPU time per event, for the summary.
class Collector : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) {
            if (r.run_type != Run::RT_Iteration || r.iterations == 0) continue;
            std::string name = r.benchmark_name();
            name = name.substr(0, name.find("/repeats"));
            auto& s = samples_[name];
            s.ns.push_back(r.GetAdjustedCPUTime());
            const auto a = r.counters.find("allocs_per_event");
            if (a != r.counters.end()) s.allocs = a->second.value;
            const auto b = r.counters.find("bytes_per_event");
            if (b != r.counters.end()) s.bytes = b->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
    struct Samples {
        std::vector<double> ns;
        double allocs = 0;
        double bytes = 0;
    };
    std::map<std::string, Samples> samples_;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string loadavg() {
    std::ifstream f("/proc/loadavg");
    std::string a, b, c;
    f >> a >> b >> c;
    return a + " " + b + " " + c;
}

int run(int argc, char** argv) {
    std::vector<char*> args(argv, argv + argc);
    bool quick = false;
    bool callgrind = false;
    std::string callgrind_side;
    bool repetitions = false;
    std::string command;
    for (int i = 0; i < argc; ++i) {
        command += (i ? " " : "") + std::string(argv[i]);
        quick = quick || std::strcmp(argv[i], "--quick") == 0;
        if (std::strncmp(argv[i], "--callgrind", 11) == 0) {
            callgrind = true;
            if (argv[i][11] == '=') callgrind_side = argv[i] + 12;
        }
        repetitions = repetitions || std::strncmp(argv[i], "--benchmark_repetitions", 23) == 0;
    }
    args.erase(
        std::remove_if(args.begin() + 1, args.end(),
                       [](char* a) { return std::strcmp(a, "--quick") == 0 || std::strcmp(a, "--callgrind") == 0; }),
        args.end());
    if (callgrind) {
        std::size_t total = 0;
        for (const auto& s : sides()) {
            if (!callgrind_side.empty() && callgrind_side != s.name) continue;
            (void)audit_events();
            (void)syslog_events();
            total += std::string(s.name).ends_with("/dom") ? render_all_dom(s) : render_all_writer(s);
        }
        std::printf("rendered %zu events per side (%s), %zu bytes in all\n", kEvents,
                    callgrind_side.empty() ? "every side" : callgrind_side.c_str(), total);
        return 0;
    }
    static char reps[] = "--benchmark_repetitions=5";
    static char reps_quick[] = "--benchmark_repetitions=3";
    static char min_time[] = "--benchmark_min_time=0.3";
    static char min_time_quick[] = "--benchmark_min_time=0.05";
    static char interleave[] = "--benchmark_enable_random_interleaving=true";
    if (!repetitions) {
        args.push_back(quick ? reps_quick : reps);
        args.push_back(quick ? min_time_quick : min_time);
        args.push_back(interleave);
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    const std::string load_start = loadavg();
    (void)audit_events();  // built before the clock runs
    (void)syslog_events();
    for (const auto& s : sides()) benchmark::RegisterBenchmark(s.name, bm_render, s.render, s.kind, s.events());
    Collector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);

    std::printf(
        "\n=== json_format_bench summary: CPU ns per event, medians (min-max) of interleaved repetitions ===\n");
    std::printf("command: %s; load average at start %s, at end %s\n", command.c_str(), load_start.c_str(),
                loadavg().c_str());
    for (const char* pair : {"json/audit", "hec/audit", "json/syslog"}) {
        const auto dom = collector.samples_.find(std::string(pair) + "/dom");
        const auto writer = collector.samples_.find(std::string(pair) + "/writer");
        if (dom == collector.samples_.end() || writer == collector.samples_.end()) continue;
        auto line = [](const char* what, const Collector::Samples& s) {
            std::printf(
                "  %-38s %7.0f ns/event (%.0f-%.0f), %8.0f events/s, %.1f allocs/event, %.0f bytes/event, %zu reps\n",
                what, median(s.ns), *std::min_element(s.ns.begin(), s.ns.end()),
                *std::max_element(s.ns.begin(), s.ns.end()), 1e9 / median(s.ns), s.allocs, s.bytes, s.ns.size());
        };
        std::printf("%s:\n", pair);
        line("nlohmann ordered_json DOM (before)", dom->second);
        line("streaming writer (now)", writer->second);
        std::printf("  ratio of medians, DOM / writer: %.2fx\n", median(dom->second.ns) / median(writer->second.ns));
    }
    benchmark::Shutdown();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        (void)std::fprintf(stderr, "json_format_bench: %s\n", e.what());
        return 1;
    } catch (...) {
        return 1;
    }
}
