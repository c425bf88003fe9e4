// Records appended per second with MACing, single writer. The reference, measured in the same run:
// mac::ChainWriter::append into memory (render + HMAC + digest, no ring). Then the same records
// committed to the NVRAM ring (binary encoding, CRC, two-slot state, seqlock publish), and through
// the whole Module (lock, counters, audit filter, ring) with log_external as the cheapest operation.
//
//   build/<dir>/bench/hsmcore/hsmaudit_bench_hsmcore --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "agent/engine/sample.h"
#include "hsmcore/module/module.h"
#include "hsmcore/ring/entry_codec.h"
#include "hsmcore/ring/ring.h"
#include "mac/chain_writer.h"

namespace hsmaudit::hsmcore {
namespace {

namespace fs = std::filesystem;

std::vector<mac::AuditRecord> sample_records(std::size_t n) {
    agent::SampleWorkload load(5, 1'795'500'000'000);
    std::vector<mac::AuditRecord> out(n);
    for (auto& r : out) load.next(r);
    return out;
}

struct Keys {
    mac::NewChainKeys keys = std::move(*mac::generate_chain_keys());
};

fs::path temp_dir(const char* name) {
    fs::path p = fs::temp_directory_path() / (std::string("hsmcore_bench_") + name + "_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

// Reference: the chain writer alone, into memory.
void BM_ChainWriterAppendInMemory(benchmark::State& state) {
    Keys k;
    auto w = mac::ChainWriter::create(k.keys.key.chain(), "150123", 1, k.keys.signer, mac::genesis_head(k.keys.key));
    (void)w->open_segment(0);
    const auto recs = sample_records(4096);
    std::string out;
    out.reserve(1 << 20);
    std::size_t i = 0;
    for (auto _ : state) {
        mac::AuditRecord r = recs[i++ & 4095];
        if (out.size() > (1 << 20) - 1024) out.clear();
        benchmark::DoNotOptimize(w->append(r, out));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ChainWriterAppendInMemory);

// The module's audit path without the module: chain writer + binary entry + ring commit; the ring is
// acknowledged in bulk whenever it is half full (the agent's acks, counted in the time).
void BM_RingAppendWithMac(benchmark::State& state) {
    Keys k;
    const fs::path dir = temp_dir("ring");
    const auto paths = ring::RingPaths::in_dir(dir.string());
    (void)ring::RingWriter::create(paths, {}, "150123", mac::genesis_head(k.keys.key));
    auto ring = ring::RingWriter::open(paths);
    auto w = mac::ChainWriter::create(k.keys.key.chain(), "150123", 1, k.keys.signer, ring->state().head);
    {
        std::string e;
        auto line = w->open_segment(0);
        ring::encode_line_entry(ring::EntryKind::open, 1, 1, *line, e);
        std::string_view v = e;
        (void)ring->commit({&v, 1}, w->head());
    }
    const auto recs = sample_records(4096);
    std::string entry;
    std::string line;
    std::size_t i = 0;
    for (auto _ : state) {
        mac::AuditRecord r = recs[i++ & 4095];
        r.seq = w->head().next_seq;
        r.serial = "150123";
        r.boot = 1;
        entry.clear();
        ring::encode_record_entry(ring->state().next_entry, r, mac::Mac{}, entry);
        line.clear();
        auto m = w->append(r, line);
        ring::patch_record_mac(entry, 0, *m);
        std::string_view v = entry;
        if (!ring->commit({&v, 1}, w->head())) state.SkipWithError("commit failed");
        if (ring->used() > ring->capacity() / 2) (void)ring->ack_through(ring->state().next_entry - 1);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["bytes_per_record"] =
        static_cast<double>(ring->state().end_pos) / static_cast<double>(ring->state().next_entry);
    fs::remove_all(dir);
}
BENCHMARK(BM_RingAppendWithMac);

// The whole module: an application message (LUNA_LOG_EXTERNAL) per iteration, audited into the ring.
void BM_ModuleAuditedOperation(benchmark::State& state) {
    const fs::path dir = temp_dir("module");
    module::InitOptions o;
    (void)module::Module::init((dir / "m").string(), o);
    auto m = module::Module::open((dir / "m").string());
    auto pins = module::load_client_pins((dir / "m").string());
    auto s = (*m)->open_session(1);
    (void)(*m)->login(s->handle, module::Role::co, pins->at({"CO", 1}));
    for (auto _ : state) {
        auto r = (*m)->log_external(s->handle, "batch 42 settled");
        if (!r) state.SkipWithError("operation failed");
        auto st = (*m)->status();
        if (st.used_bytes > st.capacity / 2) (void)(*m)->ack_through(st.next_entry - 1);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    m->reset();
    fs::remove_all(dir);
}
BENCHMARK(BM_ModuleAuditedOperation);

}  // namespace
}  // namespace hsmaudit::hsmcore

BENCHMARK_MAIN();
