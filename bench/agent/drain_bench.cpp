// Drain throughput: entries read from a source, verified online (every record MAC, the digest
// chain, seal MACs and signatures), appended to the store and committed (fdatasync), then
// acknowledged; one thread. The reference, measured in the same run: raw HMAC-SHA256 over the
// same record bytes (what verification alone cannot beat). The second argument switches the
// drain's RFC 6962 Merkle tree (DrainOptions::merkle_tree: one leaf hash per record, amortised
// one node hash, the frontier committed with each batch's position); BM_DrainTreeOnOff alternates
// the two in one run and reports the rate with the tree as a fraction of the rate without.
//
//   build/ci/bench/agent/hsmaudit_bench_agent --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <time.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <filesystem>
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

constexpr std::size_t kRecords = 200'000;  // one full 16 MiB ring's worth
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
        for (std::size_t i = 0; i < kRecords; ++i) {
            if (i > 0 && i % kSegmentRecords == 0) {
                add(EntryKind::seal, rec.seq, *w->seal(load.now_ms()));
                add(EntryKind::open, rec.seq + 1, *w->open_segment(load.now_ms()));
            }
            load.next(rec);
            line.clear();
            (void)w->append(rec, line);
            record_bytes_ += line.size() - 69;  // the body the MAC covers
            bodies_.emplace_back(line.substr(0, line.size() - 69));
            add(EntryKind::record, rec.seq, line);
        }
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
    [[nodiscard]] const std::vector<std::string>& bodies() const { return bodies_; }
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
    std::vector<std::string> bodies_;
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
    if (tree && (!drain.tree() || drain.tree()->size() != kRecords)) *error = "the tree does not cover every record";
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
                const double n = static_cast<double>(kRecords);
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
        benchmark::Counter(static_cast<double>(kRecords), benchmark::Counter::kIsIterationInvariantRate);
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
        records += kRecords;
        store->reset();
        fs::remove_all(dir);
        state.ResumeTiming();
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(kRecords), benchmark::Counter::kIsIterationInvariantRate);
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

BENCHMARK_MAIN();
