// RFC 6962 proofs over one chain's records (mac/merkle.h), single thread:
//
//   BM_InclusionProveStored/n   an inclusion proof from a tree whose interior nodes are kept
//                               (MemoryTree): O(log n) lookups
//   BM_InclusionProveLeaves/n   an inclusion proof from leaf hashes only (VectorLeafHashes, what
//                               `hsmaudit prove` has after reading a trail): O(n) node hashes
//   BM_InclusionVerify/n        verify_inclusion() of leaf 0: ceil(log2 n) node hashes
//   BM_ConsistencyVerify/n      verify_consistency() from n/2 to n
//   BM_CompactTreeAppend        CompactTree::append: the writer's cost per record (amortised
//                               one node hash; root() adds popcount(n) - 1)
//
// Counter `proof_hashes` = hashes in the proof of leaf 0 (ceil(log2 n), the longest), `proof_bytes`
// = 32 * proof_hashes. n = 10^3 .. 10^7 leaves (the 10^7 tree takes ~1 GiB and a few seconds to
// build, once). Figures go to docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mac/merkle.h"

namespace {

using namespace hsmaudit::mac::tlog;

constexpr std::uint64_t kMaxLeaves = 10000000;

const std::vector<Hash>& leaves() {
    static const std::vector<Hash> l = [] {
        std::vector<Hash> v;
        v.reserve(kMaxLeaves);
        for (std::uint64_t i = 0; i < kMaxLeaves; ++i) v.push_back(leaf_hash("record line " + std::to_string(i)));
        return v;
    }();
    return l;
}

const MemoryTree& stored() {
    static const MemoryTree t(leaves());
    return t;
}

void BM_InclusionProveStored(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    const MemoryTree& t = stored();
    std::uint64_t i = 0;
    std::size_t hashes = 0;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        auto p = inclusion_proof((i++ * 7919) % n, n, t);
        hashes = p->size();
        benchmark::DoNotOptimize(p);
    }
    // The deepest leaf (index 0) has the longest path: ceil(log2 n) hashes; the last leaf's may be shorter.
    state.counters["proof_hashes"] = static_cast<double>(inclusion_proof(0, n, t)->size());
    state.counters["proof_bytes"] = 32.0 * static_cast<double>(inclusion_proof(0, n, t)->size());
    state.counters["last_leaf_hashes"] = static_cast<double>(inclusion_proof(n - 1, n, t)->size());
    benchmark::DoNotOptimize(hashes);
}
BENCHMARK(BM_InclusionProveStored)->RangeMultiplier(10)->Range(1000, 10000000);

void BM_InclusionProveLeaves(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    const VectorLeafHashes src(std::vector<Hash>(leaves().begin(), leaves().begin() + static_cast<std::ptrdiff_t>(n)));
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        auto p = inclusion_proof(n / 3, n, src);
        benchmark::DoNotOptimize(p);
    }
    state.counters["proof_hashes"] = static_cast<double>(inclusion_proof(n / 3, n, src)->size());
}
BENCHMARK(BM_InclusionProveLeaves)->RangeMultiplier(10)->Range(1000, 10000000)->Unit(benchmark::kMillisecond);

void BM_InclusionVerify(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    const MemoryTree& t = stored();
    const std::uint64_t index = 0;  // the longest path: ceil(log2 n) hashes
    const auto proof = *inclusion_proof(index, n, t);
    const Hash root = *tree_root(n, t);
    const Hash leaf = leaves()[index];
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        bool ok = verify_inclusion(index, n, leaf, proof, root);
        if (!ok) state.SkipWithError("proof did not verify");
        benchmark::DoNotOptimize(ok);
    }
    state.counters["proof_hashes"] = static_cast<double>(proof.size());
}
BENCHMARK(BM_InclusionVerify)->RangeMultiplier(10)->Range(1000, 10000000);

void BM_ConsistencyVerify(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    const MemoryTree& t = stored();
    const std::uint64_t m = n / 2 + 1;
    const auto proof = *consistency_proof(m, n, t);
    const Hash old_root = *tree_root(m, t);
    const Hash root = *tree_root(n, t);
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        bool ok = verify_consistency(m, n, old_root, root, proof);
        if (!ok) state.SkipWithError("proof did not verify");
        benchmark::DoNotOptimize(ok);
    }
    state.counters["proof_hashes"] = static_cast<double>(proof.size());
}
BENCHMARK(BM_ConsistencyVerify)->RangeMultiplier(10)->Range(1000, 10000000);

void BM_CompactTreeAppend(benchmark::State& state) {
    CompactTree t;
    std::size_t i = 0;
    for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the benchmark loop idiom
        t.append(leaves()[i++ % 1000]);
        benchmark::DoNotOptimize(t.size());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CompactTreeAppend);

}  // namespace

BENCHMARK_MAIN();
