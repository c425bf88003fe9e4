// Drain throughput: entries read from a source, verified online (every record MAC, the digest
// chain, seal MACs and signatures), appended to the store and committed (fdatasync), then
// acknowledged; one thread. The reference, measured in the same run: raw HMAC-SHA256 over the
// same record bytes (what verification alone cannot beat).
//
//   build/ci/bench/agent/hsmaudit_bench_agent --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <filesystem>

#include "agent/api/alerts.h"
#include "agent/engine/pipeline/drain.h"
#include "agent/engine/sample.h"
#include "agent/engine/store/audit_store.h"
#include "mac/chain_writer.h"

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

void BM_DrainVerifyStore(benchmark::State& state) {
    const bool encrypt = state.range(0) != 0;
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
    state.SetLabel(encrypt ? "encrypted at rest" : "plain");
}
BENCHMARK(BM_DrainVerifyStore)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace hsmaudit::agent

BENCHMARK_MAIN();
