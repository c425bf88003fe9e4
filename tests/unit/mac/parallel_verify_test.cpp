// verify_paths() on several threads (VerifyOptions::jobs, `hsmaudit verify --jobs`) gives the
// report one thread gives, byte for byte: trails with a fault of every kind the verifier reports
// (one segment each, so the faults of many segments are merged), a wrong secret (the wrong-key
// verdict and what follows it), encrypted segments with damaged chunks, anchors, the fault cap,
// and randomly damaged trails. Each report is compared in full (faults in order, segments,
// counts, totals); each scenario also asserts that its faults are there (a test that cannot fail
// is a defect).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "mac/checkpoint.h"
#include "mac/encrypted_file.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

/// Everything a report says, in order: what `hsmaudit verify` prints is rendered from these.
std::string fingerprint(const VerifyReport& r) {
    std::string s = describe(r);
    for (const auto& g : r.segments)
        s += "segment " + g.file + " " + g.serial + " e" + std::to_string(g.epoch) + " " + std::to_string(g.first_seq) +
             ".." + std::to_string(g.last_seq) + " n" + std::to_string(g.records) + " b" + std::to_string(g.bytes) +
             (g.sealed ? " sealed" : "") + (g.open_tail ? " open" : "") + (g.authenticated ? " auth" : "") + "\n";
    for (std::size_t k = 0; k < kFaultKindCount; ++k)
        if (r.fault_counts[k] != 0)
            s += std::string(to_string(static_cast<FaultKind>(k))) + "=" + std::to_string(r.fault_counts[k]) + "\n";
    for (const auto& c : r.identical_copies) s += "copy " + c.file + " = " + c.same_as + "\n";
    s += "total " + std::to_string(r.faults_total) + " chain " + r.chain_hex + " serial " + r.serial + " records " +
         std::to_string(r.records) + " bytes " + std::to_string(r.bytes) + " seq " + std::to_string(r.first_seq) +
         ".." + std::to_string(r.last_seq) + " time " + std::to_string(r.first_time_ms) + ".." +
         std::to_string(r.last_time_ms) + " sealed " + std::to_string(r.sealed_segments) + " open " +
         std::to_string(r.open_segments) + " macs " + std::to_string(static_cast<int>(r.macs_checked)) + " sigs " +
         std::to_string(static_cast<int>(r.signatures_checked)) + " anchors " + std::to_string(r.anchors_checked) +
         "/" + std::to_string(r.anchors_unchecked) + " unproven " + std::to_string(r.unproven_records) + "\n";
    return s;
}

/// Verifies `paths` with 1 thread and with 2, 3 and 4; expects the same report from each.
/// Returns the one-thread report.
VerifyReport same_for_every_jobs(const std::vector<std::string>& paths, VerifyOptions opt) {
    opt.jobs = 1;
    VerifyReport one = verify_ok(paths, opt);
    const std::string expected = fingerprint(one);
    for (const unsigned jobs : {2U, 3U, 4U}) {
        opt.jobs = jobs;
        EXPECT_EQ(fingerprint(verify_ok(paths, opt)), expected) << "jobs " << jobs;
    }
    return one;
}

/// Changes the boot counter of an open line: a modified open line that still parses.
std::string bump_boot(std::string line) {
    const std::size_t pos = line.find(" boot=") + 6;
    line[pos] = line[pos] == '7' ? '8' : '7';
    return line;
}

std::string bump_time(std::string line) {
    const std::size_t pos = line.find(' ') + 1 + 22;
    line[pos] = line[pos] == '0' ? '1' : '0';
    return line;
}

Mac mac_of(const std::string& record_line) {
    Mac m{};
    const auto pos = record_line.rfind(" mac=");
    EXPECT_TRUE(hex_decode(std::string_view(record_line).substr(pos + 5, 64), m));
    return m;
}

/// Rewrites a plain segment file encrypted at rest, one chunk per `lines_per_chunk` lines.
void encrypt_file(const std::string& path, const Bytes32& key, std::size_t lines_per_chunk) {
    const auto lines = read_lines(path);
    auto sealer = ChunkSealer::create(key);
    ASSERT_TRUE(sealer.has_value());
    std::string out = sealer->header();
    for (std::size_t i = 0; i < lines.size(); i += lines_per_chunk) {
        std::string plain;
        for (std::size_t j = i; j < std::min(lines.size(), i + lines_per_chunk); ++j) plain += lines[j];
        ASSERT_TRUE(sealer->seal(plain, out).has_value());
    }
    write_all(path, out);
}

class ParallelVerify : public ::testing::Test {
protected:
    void SetUp() override { keys_ = std::make_unique<NewChainKeys>(make_keys()); }
    std::vector<std::string> trail(const TrailSpec& spec) { return write_trail(*keys_, dir_.sub("t"), spec); }

    TempDir dir_;
    std::unique_ptr<NewChainKeys> keys_;
};

TEST_F(ParallelVerify, EveryFaultKindGivesTheSameReportOnAnyNumberOfThreads) {
    TrailSpec spec;
    spec.segment_records = std::vector<std::uint64_t>(16, 5);
    spec.seal_last = false;
    const auto f = trail(spec);
    ASSERT_EQ(f.size(), 16u);
    // Layout: line 1 open, lines 2-6 records, line 7 seal; segment s holds records 5s+1..5s+5.
    auto edit = [](const std::string& path, const std::function<void(std::vector<std::string>&)>& change) {
        auto lines = read_lines(path);
        change(lines);
        write_lines(path, lines);
    };
    const std::string before_link = read_lines(f[6])[5];         // the last record of segment 6
    edit(f[1], [](auto& l) { l[2] = bump_time(l[2]); });         // record_mac_mismatch
    edit(f[2], [](auto& l) { l.erase(l.begin() + 3); });         // sequence_gap, seal_mismatch
    edit(f[3], [](auto& l) { std::swap(l[2], l[3]); });          // sequence_reordered
    edit(f[4], [](auto& l) { l.insert(l.begin() + 3, l[2]); });  // sequence_duplicate
    edit(f[5], [](auto& l) {
        l.resize(5);
        l[4].resize(l[4].size() / 2);
    });                                                       // torn_line, seal_missing
    edit(f[6], [](auto& l) { l[5][l[5].size() - 3] ^= 1; });  // the link to segment 7 breaks
    fs::remove(f[8]);                                         // segment_missing
    fs::copy_file(f[9], dir_.sub("t/zz_replayed.log"));       // segment_duplicate
    edit(f[10], [](auto& l) {
        l[0] = bump_boot(l[0]);
        l.push_back("after\n");
    });  // open line, data after seal
    edit(f[11], [](auto& l) {
        l.insert(l.begin() + 2, "not a line\n");
        const std::size_t pos = l.back().find(" sig=") + 15;
        l.back()[pos] = l.back()[pos] == 'a' ? 'b' : 'a';  // bad_signature
    });
    edit(f[12], [](auto& l) {
        const std::size_t pos = l[6].find(" mac=") + 10;
        l[6][pos] = l[6][pos] == 'a' ? 'b' : 'a';  // seal_mac_mismatch (its MAC field)
    });
    const NewChainKeys other = make_keys();
    const auto theirs = write_trail(other, dir_.sub("other"), {});
    fs::copy_file(theirs[1], dir_.sub("t/intruder.log"));  // foreign_chain
    {
        auto lines = read_lines(f[12]);  // a forged far epoch
        const auto e = lines[0].find(" epoch=");
        lines[0].replace(e, lines[0].find(' ', e + 1) - e, " epoch=99999999999");
        write_lines(dir_.sub("t/far.log"), lines);
    }
    write_all(dir_.sub("t/junk.log"), "hello\n");  // not_a_segment
    // Anchors: one matching, one with another MAC, one beyond the end, one in the deleted segment.
    const auto rec13 = read_lines(f[13])[1];
    const auto rec14 = read_lines(f[14])[2];
    std::vector<Checkpoint> anchors;
    auto cp = [&](std::uint64_t epoch, std::uint64_t seq, const Mac& mac) {
        auto c = make_checkpoint(keys_->key.chain(), "150123", epoch, seq, 1'795'500'000'000, mac, keys_->signer);
        ASSERT_TRUE(c.has_value());
        anchors.push_back(*c);
    };
    cp(13, seq_of(rec13), mac_of(rec13));
    cp(14, seq_of(rec14), mac_of(before_link));
    cp(15, 500, mac_of(rec13));
    cp(8, 42, mac_of(rec13));

    for (VerifyOptions opt : {key_options(*keys_), pub_options(*keys_), both_options(*keys_)}) {
        opt.anchors = anchors;
        const VerifyReport r = same_for_every_jobs({dir_.sub("t")}, opt);
        for (const FaultKind k :
             {FaultKind::sequence_gap, FaultKind::sequence_reordered, FaultKind::sequence_duplicate,
              FaultKind::torn_line, FaultKind::seal_missing, FaultKind::seal_mismatch, FaultKind::chain_link_broken,
              FaultKind::segment_missing, FaultKind::segment_duplicate, FaultKind::data_after_seal,
              FaultKind::malformed_line, FaultKind::bad_signature, FaultKind::foreign_chain,
              FaultKind::epoch_out_of_range, FaultKind::not_a_segment, FaultKind::anchor_mismatch,
              FaultKind::trail_truncated, FaultKind::anchor_record_missing})
            EXPECT_GT(count(r, k), 0u) << to_string(k) << "\n" << describe(r);
        if (opt.key) {
            EXPECT_GT(count(r, FaultKind::record_mac_mismatch), 0u) << describe(r);
            EXPECT_GT(count(r, FaultKind::open_mac_mismatch), 0u) << describe(r);
            EXPECT_GT(count(r, FaultKind::seal_mac_mismatch), 0u) << describe(r);
        } else {
            EXPECT_GT(count(r, FaultKind::digest_mismatch), 0u) << describe(r);
        }
        EXPECT_EQ(r.anchors_checked, 2u) << describe(r);
        // The fault cap: the first faults in chain order, every fault counted.
        opt.max_faults = 3;
        const VerifyReport capped = same_for_every_jobs({dir_.sub("t")}, opt);
        EXPECT_EQ(capped.faults.size(), 3u);
        EXPECT_EQ(capped.faults_total, r.faults_total);
    }
}

TEST_F(ParallelVerify, AWrongSecretGivesOneVerdictAndTheSameReport) {
    TrailSpec spec;
    spec.segment_records = {0, 3, 3, 3, 3, 3, 3, 3, 3, 3};  // the verdict falls on the second segment
    const auto f = trail(spec);
    Bytes32 secret{};
    ASSERT_TRUE(random_bytes(secret).has_value());
    VerifyOptions opt;
    opt.key.emplace(AuditKey(keys_->key.chain(), secret, keys_->key.pubkey()));
    const VerifyReport r = same_for_every_jobs({dir_.sub("t")}, opt);
    EXPECT_EQ(count(r, FaultKind::wrong_key), 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::wrong_key, f[1], 2, 1)) << describe(r);
    // The seals of the segments after it are still checked: a damaged one is found.
    auto lines = read_lines(f[7]);
    lines[1] = bump_time(lines[1]);
    write_lines(f[7], lines);
    const VerifyReport damaged = same_for_every_jobs({dir_.sub("t")}, opt);
    EXPECT_EQ(count(damaged, FaultKind::digest_mismatch), 1u) << describe(damaged);
}

TEST_F(ParallelVerify, FirstRecordAndOpenLineForgedIsTheWrongKeyVerdictOnAnyNumberOfThreads) {
    TrailSpec spec;
    spec.segment_records = std::vector<std::uint64_t>(8, 3);
    const auto f = trail(spec);
    auto lines = read_lines(f[0]);
    lines[0] = bump_boot(lines[0]);
    lines[1] = bump_time(lines[1]);
    write_lines(f[0], lines);
    const VerifyReport r = same_for_every_jobs({dir_.sub("t")}, key_options(*keys_));
    EXPECT_EQ(count(r, FaultKind::wrong_key), 1u) << describe(r);
    // The same forgery in a later segment is two faults, the verdict being given by the first.
    const auto g = write_trail(*keys_, dir_.sub("u"), spec);
    lines = read_lines(g[3]);
    lines[0] = bump_boot(lines[0]);
    lines[1] = bump_time(lines[1]);
    write_lines(g[3], lines);
    const VerifyReport later = same_for_every_jobs({dir_.sub("u")}, key_options(*keys_));
    EXPECT_EQ(count(later, FaultKind::wrong_key), 0u) << describe(later);
    EXPECT_EQ(count(later, FaultKind::open_mac_mismatch), 1u) << describe(later);
}

TEST_F(ParallelVerify, EncryptedSegmentsWithDamagedChunks) {
    TrailSpec spec;
    spec.segment_records = std::vector<std::uint64_t>(10, 6);
    spec.seal_last = false;
    const auto f = trail(spec);
    auto key = store_key(keys_->key);
    ASSERT_TRUE(key.has_value());
    for (const auto& p : f) encrypt_file(p, *key, 2);
    std::string bytes = read_all(f[3]);
    bytes[bytes.size() / 2] ^= 0x40;  // a chunk fails authentication
    write_all(f[3], bytes);
    bytes = read_all(f[6]);
    bytes.resize(bytes.size() - 7);  // a torn last chunk
    write_all(f[6], bytes);
    const VerifyReport r = same_for_every_jobs({dir_.sub("t")}, key_options(*keys_));
    EXPECT_EQ(count(r, FaultKind::encrypted_damaged), 2u) << describe(r);
    EXPECT_EQ(r.segments.size(), 10u) << describe(r);
}

TEST_F(ParallelVerify, RandomlyDamagedTrailsGiveTheSameReport) {
    std::uint64_t state = 0x5eed;
    auto rnd = [&state](std::uint64_t n) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (state >> 33) % n;
    };
    std::size_t faulty = 0;
    for (int round = 0; round < 24; ++round) {
        TrailSpec spec;
        spec.segment_records = std::vector<std::uint64_t>(9, 4);
        spec.seal_last = round % 2 == 0;
        spec.seed = static_cast<std::uint64_t>(round);
        const std::string dir = dir_.sub("r" + std::to_string(round));
        const auto f = write_trail(*keys_, dir, spec);
        for (int m = 0; m < 3; ++m) {
            const std::string& path = f[rnd(f.size())];
            if (!fs::exists(path)) continue;
            auto lines = read_lines(path);
            const std::size_t i = rnd(lines.size());
            switch (rnd(7)) {
                case 0: lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i)); break;
                case 1: lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i), lines[rnd(lines.size())]); break;
                case 2: std::swap(lines[i], lines[rnd(lines.size())]); break;
                case 3: lines[i][rnd(lines[i].size())] ^= static_cast<char>(1 + rnd(100)); break;
                case 4:
                    lines.resize(i + 1);
                    lines[i].resize(rnd(lines[i].size()));
                    break;
                case 5: fs::remove(path); continue;
                default: fs::copy_file(path, dir + "/copy" + std::to_string(m) + ".log"); continue;
            }
            write_lines(path, lines);
        }
        for (VerifyOptions opt : {key_options(*keys_), pub_options(*keys_)}) {
            opt.max_faults = round % 3 == 0 ? 2 : 10000;
            opt.require_sealed = round % 4 == 1;
            auto one = verify_paths({dir}, VerifyOptions(opt));
            if (!one) continue;  // e.g. every file removed: an error either way
            if (!one->verified()) ++faulty;
            same_for_every_jobs({dir}, opt);
        }
    }
    EXPECT_GT(faulty, 30u);  // the damage was seen
}

}  // namespace
}  // namespace hsmaudit::mac
