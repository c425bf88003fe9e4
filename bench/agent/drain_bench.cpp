// Drain throughput: entries read from a source, verified online (every record MAC, the digest
// chain, seal MACs and signatures), appended to the store and committed (fdatasync), then
// acknowledged; one drain thread (the Merkle tree's leaf hashing runs on a helper thread).
//
// Side by side (the default mode): in each round, in rotating order, the shipped configuration
// (encrypted at rest, online verification on, Merkle tree on), the same pinned to one CPU (the
// tree's helper thread then shares that CPU: the honest one-core figure), the same with the store
// in plain text (not the default: labelled), and the reference, raw HMAC-SHA256 over the same
// record bodies chained as the module chains them (mac::HmacSha256: pad states hashed once, the
// fastest way through OpenSSL). Prints medians, min-max and the ratio of medians, wall and CPU
// time (the drain thread's own, and the whole process's, the tree's helper included), the load
// average at start and end and the command, as one summary block.
//
//   build/ci/bench/agent/hsmaudit_bench_agent [--records N] [--runs R] [--quick]
//   (--quick: 20,000 records, 1 run, < 15 s)
//
// Google Benchmark mode, as before: any --benchmark_* argument (e.g.
//   build/ci/bench/agent/hsmaudit_bench_agent --benchmark_counters_tabular=true), --records N
// sets the records per drain there too. BM_DrainTreeOnOff alternates the tree on and off in one
// run and reports the rate with the tree as a fraction of the rate without.
#include <benchmark/benchmark.h>

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/engine/pipeline/drain.h"
#include "agent/engine/sample.h"
#include "agent/engine/store/audit_store.h"
#include "mac/chain_writer.h"
#include "mac/merkle.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

// Records per drain: one full 16 MiB ring's worth by default; set once by main() (--records)
// before the source is first built.
std::size_t g_records = 200'000;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): set once by main
constexpr std::size_t kSegmentRecords = 50'000;

/// Pre-rendered entries (a module's ring already drained into memory): the source costs ~nothing.
class MemorySource final : public AuditSource {
public:
    explicit MemorySource(const mac::NewChainKeys& keys) {
        auto w = mac::ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, mac::genesis_head(keys.key));
        SampleWorkload load(3, 1'795'500'000'000);
        add(EntryKind::open, 0, *w->open_segment(load.now_ms()));
        mac::AuditRecord rec;
        std::string line;
        lines_.reserve(g_records + 2 * (g_records / kSegmentRecords) + 2);
        bodies_.reserve(g_records);
        for (std::size_t i = 0; i < g_records; ++i) {
            if (i > 0 && i % kSegmentRecords == 0) {
                add(EntryKind::seal, rec.seq, *w->seal(load.now_ms()));
                add(EntryKind::open, rec.seq + 1, *w->open_segment(load.now_ms()));
            }
            load.next(rec);
            line.clear();
            (void)w->append(rec, line);
            record_bytes_ += line.size() - 69;  // the body the MAC covers
            add(EntryKind::record, rec.seq, line);
        }
        // Views into lines_, taken once it no longer grows.
        for (std::size_t i = 0; i < lines_.size(); ++i)
            if (kinds_[i] == EntryKind::record)
                bodies_.emplace_back(std::string_view(lines_[i]).substr(0, lines_[i].size() - 69));
    }
    Result<std::size_t> read(std::uint64_t after, std::size_t max, std::chrono::milliseconds,
                             EntryBatch& out) override {
        std::size_t n = 0;
        for (std::uint64_t i = after; i < lines_.size() && n < max; ++i, ++n)
            out.add(kinds_[i], i + 1, seqs_[i], lines_[i]);
        return n;
    }
    Status acknowledge(std::uint64_t entry_no) override {
        acked_ = entry_no;
        return {};
    }
    Status request_seal() override { return {}; }
    Result<SourceStatus> status() override { return SourceStatus{}; }
    Result<std::string> checkpoint(std::uint64_t /*retained*/) override {
        return std::string("@checkpoint (not used by this benchmark)");
    }
    [[nodiscard]] std::uint64_t size() const { return lines_.size(); }
    [[nodiscard]] std::uint64_t acked() const { return acked_; }
    [[nodiscard]] std::uint64_t record_bytes() const { return record_bytes_; }
    [[nodiscard]] const std::vector<std::string_view>& bodies() const { return bodies_; }
    [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
    [[nodiscard]] const std::vector<EntryKind>& kinds() const { return kinds_; }

private:
    void add(EntryKind k, std::uint64_t seq, std::string line) {
        kinds_.push_back(k);
        seqs_.push_back(seq);
        lines_.push_back(std::move(line));
    }
    std::vector<EntryKind> kinds_;
    std::vector<std::uint64_t> seqs_;
    std::vector<std::string> lines_;
    std::vector<std::string_view> bodies_;
    std::uint64_t acked_ = 0;
    std::uint64_t record_bytes_ = 0;
};

class NullAlerts final : public AlertSink {
public:
    void alert(Alert&& a) override {
        ++count;
        (void)a;
    }
    int count = 0;
};

const mac::NewChainKeys& keys() {
    static const mac::NewChainKeys k = *mac::generate_chain_keys();
    return k;
}

MemorySource& source() {
    static MemorySource s(keys());
    return s;
}

void BM_RawHmacSha256(benchmark::State& state) {
    auto& src = source();
    auto hmac = mac::HmacSha256::create(mac::Bytes32{1});
    mac::Mac prev{};
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        for (const auto& body : src.bodies()) prev = hmac->compute(mac::as_bytes(body), prev);
        benchmark::DoNotOptimize(prev);
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(src.bodies().size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RawHmacSha256)->Unit(benchmark::kMillisecond)->UseRealTime();

double cpu_seconds(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct DrainRun {
    double wall = 0;          // seconds
    double drain_thread = 0;  // CPU seconds of the drain's own thread
    double process = 0;       // CPU seconds of the whole process (the tree's helper thread included)
};

/// Drains the whole source into a fresh store; returns the seconds the drain took (0: failed).
double drain_once(bool encrypt, bool tree, std::string* error, DrainRun* run = nullptr) {
    auto& src = source();
    const fs::path dir = fs::temp_directory_path() / ("hsmaudit-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    auto store = AuditStore::open(AuditStoreOptions{dir.string(), encrypt}, keys().key);
    if (!store) {
        *error = store.error().message;
        return 0;
    }
    NullAlerts alerts;
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(0);
    opt.segment_max_bytes = 1ULL << 40;
    opt.merkle_tree = tree;
    Drain drain(src, **store, keys().key, alerts, opt, [] { return std::int64_t{1'795'500'000'000}; });
    const auto t0 = std::chrono::steady_clock::now();
    const double thread0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const double process0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    while ((*store)->durable().entry_no < src.size()) {
        auto r = drain.step();
        if (!r) {
            *error = r.error().message;
            return 0;
        }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (run != nullptr)
        *run = DrainRun{s, cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0,
                        cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0};
    if (alerts.count != 0) *error = "the drain raised alerts on an honest trail";
    if (tree && (!drain.tree() || drain.tree()->size() != g_records)) *error = "the tree does not cover every record";
    store->reset();
    fs::remove_all(dir);
    return error->empty() ? s : 0;
}

/// Tree off and on alternately, `rounds` pairs, in one run (the machine's load hits both alike):
/// records/s of each and the ratio of their medians.
void BM_DrainTreeOnOff(benchmark::State& state) {
    const bool encrypt = state.range(0) != 0;
    std::vector<double> off, on, off_thread, on_thread, off_process, on_process;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        for (int round = 0; round < 5; ++round) {
            for (const bool tree : {round % 2 == 0, round % 2 != 0}) {
                std::string error;
                DrainRun run;
                if (drain_once(encrypt, tree, &error, &run) == 0) {
                    state.SkipWithError(error.c_str());
                    return;
                }
                const double n = static_cast<double>(g_records);
                (tree ? on : off).push_back(n / run.wall);
                (tree ? on_thread : off_thread).push_back(run.drain_thread * 1e9 / n);
                (tree ? on_process : off_process).push_back(run.process * 1e9 / n);
            }
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    state.counters["off_rec/s"] = median(off);
    state.counters["on_rec/s"] = median(on);
    state.counters["on/off"] = median(on) / median(off);
    // CPU nanoseconds per record: the drain thread's own (its critical path) and the process's.
    state.counters["off_thr_ns"] = median(off_thread);
    state.counters["on_thr_ns"] = median(on_thread);
    state.counters["off_cpu_ns"] = median(off_process);
    state.counters["on_cpu_ns"] = median(on_process);
    state.SetLabel(encrypt ? "encrypted at rest" : "plain");
}
BENCHMARK(BM_DrainTreeOnOff)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

/// What the tree adds per record, alone: one leaf hash of the record line and the frontier's append.
void BM_TreeAppend(benchmark::State& state) {
    auto& src = source();
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        mac::tlog::CompactTree tree;
        for (std::size_t i = 0; i < src.lines().size(); ++i) {
            if (src.kinds()[i] != EntryKind::record) continue;
            std::string_view leaf = src.lines()[i];
            leaf.remove_suffix(1);
            tree.append(mac::tlog::leaf_hash(leaf));
        }
        benchmark::DoNotOptimize(tree.root());
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(g_records), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TreeAppend)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DrainVerifyStore(benchmark::State& state) {
    const bool encrypt = state.range(0) != 0;
    const bool tree = state.range(1) != 0;
    auto& src = source();
    std::uint64_t records = 0;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        state.PauseTiming();
        const fs::path dir = fs::temp_directory_path() / ("hsmaudit-bench-" + std::to_string(::getpid()));
        fs::remove_all(dir);
        auto store = AuditStore::open(AuditStoreOptions{dir.string(), encrypt}, keys().key);
        NullAlerts alerts;
        DrainOptions opt;
        opt.poll_wait = std::chrono::milliseconds(0);
        opt.segment_max_bytes = 1ULL << 40;
        opt.merkle_tree = tree;
        Drain drain(src, **store, keys().key, alerts, opt, [] { return std::int64_t{1'795'500'000'000}; });
        state.ResumeTiming();
        while ((*store)->durable().entry_no < src.size()) {
            auto r = drain.step();
            if (!r) {
                state.SkipWithError(r.error().message.c_str());
                break;
            }
        }
        state.PauseTiming();
        if (alerts.count != 0) state.SkipWithError("the drain raised alerts on an honest trail");
        records += g_records;
        store->reset();
        fs::remove_all(dir);
        state.ResumeTiming();
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(g_records), benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::string(encrypt ? "encrypted at rest" : "plain") + (tree ? ", Merkle tree" : ", no tree"));
}
BENCHMARK(BM_DrainVerifyStore)
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace hsmaudit::agent

namespace hsmaudit::agent {
namespace {

// ---- Side by side (the default mode) ----

struct Side {
    const char* name;
    enum Kind { drain, hmac } kind = drain;
    bool encrypt = true;
    bool pin = false;  // the whole process on one CPU for the run
    std::vector<double> rate, thread_ns, process_ns;
};

std::string load_average() {
    std::ifstream f("/proc/loadavg");
    std::string one, five, fifteen;
    if (!(f >> one >> five >> fifteen)) return "?";
    return one + " " + five + " " + fifteen;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/// Pins the calling thread (and the threads it starts: the tree's helper) to the CPU it runs on;
/// restores the previous mask when destroyed.
class PinToOneCpu {
public:
    explicit PinToOneCpu(bool on) : on_(on) {
        if (!on_) return;
        CPU_ZERO(&saved_);
        if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0) {
            on_ = false;
            return;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        const int cpu = ::sched_getcpu();
        CPU_SET(cpu < 0 ? 0 : cpu, &one);
        if (::sched_setaffinity(0, sizeof one, &one) != 0) on_ = false;
    }
    ~PinToOneCpu() {
        if (on_) (void)::sched_setaffinity(0, sizeof saved_, &saved_);
    }
    PinToOneCpu(const PinToOneCpu&) = delete;
    PinToOneCpu& operator=(const PinToOneCpu&) = delete;
    [[nodiscard]] bool pinned() const { return on_; }

private:
    bool on_;
    cpu_set_t saved_{};
};

/// Raw HMAC-SHA256 over the record bodies, chained (body_i || MAC_{i-1}): the reference.
DrainRun hmac_once() {
    auto& src = source();
    auto hmac = mac::HmacSha256::create(keys().key.secret());
    mac::Mac prev{};
    const auto t0 = std::chrono::steady_clock::now();
    const double thread0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const double process0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (const auto body : src.bodies()) prev = hmac->compute(mac::as_bytes(body), prev);
    benchmark::DoNotOptimize(prev);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return DrainRun{s, cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0,
                    cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process0};
}

int side_by_side(int runs, const std::string& command, std::string_view only) {
    const std::string load_start = load_average();
    std::vector<Side> sides = {
        {"encrypted at rest (default), tree on", Side::drain, true, false, {}, {}, {}},
        {"encrypted at rest (default), 1 CPU pinned", Side::drain, true, true, {}, {}, {}},
        {"plain store (NOT default), tree on", Side::drain, false, false, {}, {}, {}},
        {"raw HMAC-SHA256 of the same records (ref)", Side::hmac, true, false, {}, {}, {}},
    };
    if (!only.empty()) {  // --only: one side alone (for profiling); no summary of the others
        const std::size_t i = only == "enc" ? 0 : only == "enc1" ? 1 : only == "plain" ? 2 : only == "hmac" ? 3 : 4;
        if (i == 4) {
            (void)std::fprintf(stderr, "--only takes enc, enc1, plain or hmac\n");
            return 2;
        }
        sides = {sides[i]};
    }
    const auto t_build = std::chrono::steady_clock::now();
    (void)source();  // the records, rendered and MAC'd once, before any timing
    const double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();
    bool pin_failed = false;
    for (int round = 0; round < runs; ++round) {
        for (std::size_t k = 0; k < sides.size(); ++k) {
            Side& side = sides[(k + static_cast<std::size_t>(round)) % sides.size()];  // rotating order
            DrainRun run;
            if (side.kind == Side::hmac) {
                run = hmac_once();
            } else {
                PinToOneCpu pin(side.pin);
                if (side.pin && !pin.pinned()) pin_failed = true;
                std::string error;
                if (drain_once(side.encrypt, true, &error, &run) == 0) {
                    (void)std::fprintf(stderr, "%s: %s\n", side.name, error.c_str());
                    return 1;
                }
            }
            const double n = static_cast<double>(g_records);
            side.rate.push_back(n / run.wall);
            side.thread_ns.push_back(run.drain_thread * 1e9 / n);
            side.process_ns.push_back(run.process * 1e9 / n);
        }
    }
    const std::string load_end = load_average();
    auto row = [](const Side& s) {
        const auto [lo, hi] = std::minmax_element(s.rate.begin(), s.rate.end());
        std::printf("%-44s %11.0f  %10.0f-%-10.0f %8.0f %9.0f %13.0f\n", s.name, median(s.rate), *lo, *hi,
                    median(s.thread_ns), median(s.process_ns), 1e9 / median(s.process_ns));
    };
    if (sides.size() == 1) {
        std::printf("%-44s %11s  %-21s %8s %9s %13s\n", "side", "rec/s med", "rec/s min-max", "thr ns", "proc ns",
                    "rec/proc-CPU-s");
        row(sides[0]);
        return 0;
    }
    const double enc = median(sides[0].rate), enc1 = median(sides[1].rate), plain = median(sides[2].rate),
                 ref = median(sides[3].rate);
    const double enc_cpu_rate = 1e9 / median(sides[0].process_ns);
    std::printf("\n==== drain + verify + store, side by side (hsmaudit_bench_agent) ====\n");
    std::printf("command: %s\n", command.c_str());
    std::printf("load average: start %s, end %s; %ld CPUs online\n", load_start.c_str(), load_end.c_str(),
                ::sysconf(_SC_NPROCESSORS_ONLN));
    std::printf(
        "records per run: %zu (segments of %zu, sealed and signed), rendered in %.2f s; %d interleaved runs, rotating "
        "order\n",
        g_records, kSegmentRecords, build_s, runs);
    std::printf(
        "each drain run: fresh store in %s, every record MAC-verified online, the chain and seals checked,\n"
        "  appended, committed with fdatasync, acknowledged; Merkle tree on (leaf hashes on a helper thread)\n",
        fs::temp_directory_path().c_str());
    std::printf("%-44s %11s  %-21s %8s %9s %13s\n", "side", "rec/s med", "rec/s min-max", "thr ns", "proc ns",
                "rec/proc-CPU-s");
    for (const auto& s : sides) row(s);
    std::printf(
        "thr ns: CPU ns per record of the drain's (or reference's) own thread; proc ns: of the whole process,\n"
        "  the tree's helper thread included; rec/proc-CPU-s: records per second of CPU, all threads.\n");
    std::printf("ratios of medians: encrypted/plain %.3f; encrypted/raw HMAC %.3f; encrypted 1 CPU/raw HMAC %.3f\n",
                enc / plain, enc / ref, enc1 / ref);
    std::printf(
        "target (issue 18): encrypted >= 1,000,000 records/s on one core: 1 CPU pinned %.0f (%s); "
        "per CPU-second of all threads %.0f (%s); wall with the helper thread on a 2nd CPU %.0f\n",
        enc1, enc1 >= 1e6 ? "met" : "NOT met", enc_cpu_rate, enc_cpu_rate >= 1e6 ? "met" : "NOT met", enc);
    if (pin_failed) std::printf("WARNING: pinning to one CPU failed; the '1 CPU pinned' row is not pinned\n");
    std::printf("====\n");
    return 0;
}

}  // namespace
}  // namespace hsmaudit::agent

int main(int argc, char** argv) {
    using hsmaudit::agent::g_records;
    std::string command;
    for (int i = 0; i < argc; ++i) command += (i == 0 ? "" : " ") + std::string(argv[i]);
    int runs = 5;
    std::string only;
    bool gbench = false;
    std::vector<char*> rest = {argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--records" && i + 1 < argc) {
            g_records = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--runs" && i + 1 < argc) {
            runs = std::atoi(argv[++i]);
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--quick") {
            g_records = 20'000;
            runs = 1;
        } else if (a == "-h" || a == "--help") {
            std::printf(
                "usage: %s [--records N] [--runs R] [--quick] [--only enc|enc1|plain|hmac]   side by side\n"
                "       %s [--records N] --benchmark_...          Google Benchmark\n",
                argv[0], argv[0]);
            return 0;
        } else {
            if (a.starts_with("--benchmark")) gbench = true;
            rest.push_back(argv[i]);
        }
    }
    if (g_records == 0 || runs <= 0) {
        (void)std::fprintf(stderr, "--records and --runs must be positive\n");
        return 2;
    }
    if (!gbench && rest.size() > 1) {
        (void)std::fprintf(stderr, "unknown argument %s (see --help)\n", rest[1]);
        return 2;
    }
    if (!gbench) return hsmaudit::agent::side_by_side(runs, command, only);
    int n = static_cast<int>(rest.size());
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
