// Offline verification throughput in records/s on a sample trail (typical 150-250-byte
// records), next to raw HMAC-SHA256 over the same record bytes in the same run, single thread.
//
//   BM_RawHmac        HMAC(K, body_i || MAC_{i-1}) for every record: EVP_MAC keyed once and
//                     re-initialised per message (mac::HmacSha256), nothing else.
//   BM_RawDigestChain the segment digest chain alone over the same record lines (reference).
//   BM_VerifyWithKey  verify_paths() with the audit key: record MACs, open and seal MACs,
//                     digest chain and seal signatures, reading the files.
//   BM_VerifyPubOnly  verify_paths() with only the public key: digest chain and signatures.
//
// Counter `vs_raw_hmac` = records/s of the benchmark / records/s of raw HMAC, both measured in
// this process (thread CPU time). Figures go to docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/engine/sample.h"
#include "mac/crypto.h"
#include "mac/keys.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"

namespace {

using namespace hsmaudit;
namespace fs = std::filesystem;

constexpr std::uint64_t kRecords = 50'000;
constexpr std::uint64_t kSegmentRecords = 5'000;

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The sample trail, written once per process into a temp dir, and its record bodies.
struct Trail {
    std::string dir;
    std::optional<mac::NewChainKeys> keys;
    std::vector<std::string> bodies;  // record line bytes the MAC covers
    std::uint64_t record_bytes = 0;   // full record lines with LF
    double raw_hmac_rate = 0;         // records/s, calibrated below

    Trail() {
        std::string tmpl = (fs::temp_directory_path() / "hsmaudit_bench_XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
        dir = tmpl;
        auto k = mac::generate_chain_keys();
        if (!k) std::abort();
        keys.emplace(std::move(*k));
        agent::SampleOptions opt;
        opt.records = kRecords;
        opt.segment_records = kSegmentRecords;
        auto paths = agent::write_sample_trail(keys->key, keys->signer, dir, opt);
        if (!paths) std::abort();
        for (const auto& p : *paths) {
            std::ifstream in(p, std::ios::binary);
            for (std::string line; std::getline(in, line);) {
                if (mac::classify_line(line) != mac::LineKind::record) continue;
                record_bytes += line.size() + 1;
                bodies.push_back(line.substr(0, line.size() - 69));  // without " mac=<64 hex>"
            }
        }
        if (bodies.size() != kRecords) std::abort();
        // Calibrate raw HMAC: best of several passes over every body.
        auto h = mac::HmacSha256::create(keys->key.secret());
        if (!h) std::abort();
        double best = 1e30;
        for (int pass = 0; pass < 7; ++pass) {
            mac::Mac prev{};
            const double t0 = thread_cpu_seconds();
            for (const auto& b : bodies) prev = h->compute(mac::as_bytes(b), prev);
            benchmark::DoNotOptimize(prev);
            best = std::min(best, thread_cpu_seconds() - t0);
        }
        raw_hmac_rate = static_cast<double>(bodies.size()) / best;
    }
    ~Trail() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

Trail& trail() {
    static Trail t;
    return t;
}

void report(benchmark::State& state, std::uint64_t records, std::uint64_t bytes) {
    const auto iters = static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(records));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
    // Rate counter: (records / raw rate) per second of this benchmark = this rate / raw rate.
    state.counters["vs_raw_hmac"] =
        benchmark::Counter(iters * static_cast<double>(records) / trail().raw_hmac_rate, benchmark::Counter::kIsRate);
    state.counters["avg_record_bytes"] = static_cast<double>(trail().record_bytes) / static_cast<double>(records);
}

void BM_RawHmac(benchmark::State& state) {
    Trail& t = trail();
    auto h = mac::HmacSha256::create(t.keys->key.secret());
    if (!h) std::abort();
    std::uint64_t body_bytes = 0;
    for (const auto& b : t.bodies) body_bytes += b.size();
    for (auto _ : state) {
        mac::Mac prev{};
        for (const auto& b : t.bodies) prev = h->compute(mac::as_bytes(b), prev);
        benchmark::DoNotOptimize(prev);
    }
    report(state, t.bodies.size(), body_bytes);
}

// What the digest chain alone costs: D_i = SHA-256(D_{i-1} || line_i || LF) over the same record
// lines, as the verifier computes it for every line before a seal (docs/FORMAT.md 2.6).
void BM_RawDigestChain(benchmark::State& state) {
    Trail& t = trail();
    auto sha = mac::Sha256::create();
    if (!sha) std::abort();
    std::vector<std::string> lines;
    lines.reserve(t.bodies.size());
    for (const auto& b : t.bodies) lines.push_back(b + " mac=" + std::string(64, '0') + "\n");
    for (auto _ : state) {
        mac::Bytes32 d{};
        for (const auto& l : lines) d = mac::digest_next(*sha, d, l);
        benchmark::DoNotOptimize(d);
    }
    report(state, t.bodies.size(), t.record_bytes);
}

void verify(benchmark::State& state, const mac::VerifyOptions& opt) {
    Trail& t = trail();
    for (auto _ : state) {
        auto r = mac::verify_paths({t.dir}, opt);
        if (!r || !r->verified() || r->records != kRecords) {
            state.SkipWithError("the sample trail did not verify");
            return;
        }
        benchmark::DoNotOptimize(r->records);
    }
    report(state, kRecords, t.record_bytes);
}

void BM_VerifyWithKey(benchmark::State& state) {
    mac::VerifyOptions opt;
    opt.key.emplace(trail().keys->key);
    verify(state, opt);
}

void BM_VerifyPubOnly(benchmark::State& state) {
    mac::VerifyOptions opt;
    opt.pub.emplace(trail().keys->key.pub());
    verify(state, opt);
}

BENCHMARK(BM_RawHmac)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawDigestChain)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VerifyWithKey)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VerifyPubOnly)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
