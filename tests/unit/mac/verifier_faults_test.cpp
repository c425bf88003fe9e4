// Every fault of issue 2, produced by tampering with honest segments written through the real
// ChainWriter, and asserted by kind, file, line and sequence number.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mac/chain_verifier.h"
#include "mac/errc.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

// Layout of the default trail (3 sealed segments of 4 records): in each file line 1 is the
// open line, lines 2-5 are records, line 6 is the seal. Segment s holds records 4s+1..4s+4.
constexpr std::uint64_t kSealLine = 6;

/// Changes the last millisecond digit of a record line's time: a modified record that still parses.
std::string bump_time(std::string line) {
    const std::size_t pos = line.find(' ') + 1 + 22;
    line[pos] = line[pos] == '0' ? '1' : '0';
    return line;
}

class VerifierFaults : public ::testing::Test {
protected:
    void SetUp() override { keys_ = std::make_unique<NewChainKeys>(make_keys()); }
    std::vector<std::string> trail(const TrailSpec& spec = {}) { return write_trail(*keys_, dir_.sub("t"), spec); }
    VerifyReport run(const VerifyOptions& opt) { return verify_ok({dir_.sub("t")}, opt); }

    TempDir dir_;
    std::unique_ptr<NewChainKeys> keys_;
};

TEST_F(VerifierFaults, HonestSealedTrailVerifiesInEveryMode) {
    const auto files = trail();
    ASSERT_EQ(files.size(), 3u);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_), both_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_TRUE(r.verified()) << describe(r);
        EXPECT_EQ(r.segments.size(), 3u);
        EXPECT_EQ(r.sealed_segments, 3u);
        EXPECT_EQ(r.open_segments, 0u);
        EXPECT_EQ(r.records, 12u);
        EXPECT_EQ(r.first_seq, 1u);
        EXPECT_EQ(r.last_seq, 12u);
        EXPECT_EQ(r.macs_checked, opt.key.has_value());
        EXPECT_TRUE(r.signatures_checked);
        EXPECT_LE(r.first_time_ms, r.last_time_ms);
    }
}

TEST_F(VerifierFaults, OrdersSegmentsByChainNotByFileName) {
    const auto files = trail();
    // Reverse the names: epoch 2 now sorts first by name.
    fs::rename(files[0], dir_.sub("t/c.log"));
    fs::rename(files[1], dir_.sub("t/b.log"));
    fs::rename(files[2], dir_.sub("t/a.log"));
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(r.verified()) << describe(r);
    ASSERT_EQ(r.segments.size(), 3u);
    EXPECT_EQ(r.segments[0].file, dir_.sub("t/c.log"));
    EXPECT_EQ(r.segments[2].file, dir_.sub("t/a.log"));
}

TEST_F(VerifierFaults, OpenTailIsReportedAsOpenNotAsFault) {
    const auto files = trail({.segment_records = {4, 4, 3}, .seal_last = false});
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_TRUE(r.verified()) << describe(r);
        EXPECT_EQ(r.open_segments, 1u);
        EXPECT_EQ(r.sealed_segments, 2u);
        ASSERT_EQ(r.segments.size(), 3u);
        EXPECT_TRUE(r.segments.back().open_tail);
        EXPECT_FALSE(r.segments.back().sealed);
        EXPECT_EQ(r.last_seq, 11u);
    }
}

TEST_F(VerifierFaults, OpenTailIsAFaultWithRequireSealed) {
    const auto files = trail({.segment_records = {4, 4, 3}, .seal_last = false});
    VerifyOptions opt = key_options(*keys_);
    opt.require_sealed = true;
    const VerifyReport r = run(opt);
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::seal_missing, files[2], 0, 0)) << describe(r);
    EXPECT_EQ(r.open_segments, 0u);
}

TEST_F(VerifierFaults, ModifiedRecordInOpenTailGivesExactlyOneFault) {
    const auto files = trail({.segment_records = {4, 4, 4}, .seal_last = false});
    auto lines = read_lines(files[2]);
    lines[2] = bump_time(lines[2]);  // record 10
    write_lines(files[2], lines);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::record_mac_mismatch, files[2], 3, 10)) << describe(r);
}

TEST_F(VerifierFaults, ModifiedRecordInSealedSegmentIsPinpointedWithoutCascade) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    lines[2] = bump_time(lines[2]);  // record 6 on line 3
    write_lines(files[1], lines);

    const VerifyReport k = run(key_options(*keys_));
    // One record fault; the following records (7, 8) and later segments verify. (With the
    // secret the digest chain is not recomputed: the MACs already cover every byte.)
    EXPECT_EQ(count(k, FaultKind::record_mac_mismatch), 1u) << describe(k);
    EXPECT_TRUE(has_fault(k, FaultKind::record_mac_mismatch, files[1], 3, 6)) << describe(k);
    EXPECT_EQ(k.faults_total, 1u) << describe(k);

    // With only the public key the digest is what catches it.
    const VerifyReport p = run(pub_options(*keys_));
    EXPECT_EQ(p.faults_total, 1u) << describe(p);
    EXPECT_TRUE(has_fault(p, FaultKind::digest_mismatch, files[1], kSealLine, 0)) << describe(p);
}

TEST_F(VerifierFaults, DeletedRecordsAreAGap) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    lines.erase(lines.begin() + 2, lines.begin() + 4);  // records 6 and 7
    write_lines(files[1], lines);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_FALSE(r.verified());
        // Record 8 is now on line 3; records from 6 are missing.
        EXPECT_TRUE(has_fault(r, FaultKind::sequence_gap, files[1], 3, 6)) << describe(r);
        EXPECT_EQ(count(r, FaultKind::sequence_gap), 1u) << describe(r);
        EXPECT_EQ(count(r, FaultKind::record_mac_mismatch), 0u) << describe(r);
        EXPECT_GE(count(r, FaultKind::seal_mismatch), 1u) << describe(r);
    }
}

TEST_F(VerifierFaults, DeletedRecordInOpenTailIsOneGap) {
    const auto files = trail({.segment_records = {4, 4, 4}, .seal_last = false});
    auto lines = read_lines(files[2]);
    lines.erase(lines.begin() + 2);  // record 10
    write_lines(files[2], lines);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::sequence_gap, files[2], 3, 10)) << describe(r);
}

TEST_F(VerifierFaults, InsertedForgedRecord) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    // A forged record 6 (a real line, altered) inserted before the real record 6.
    lines.insert(lines.begin() + 2, bump_time(lines[2]));
    write_lines(files[1], lines);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(r, FaultKind::record_mac_mismatch, files[1], 3, 6)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::sequence_duplicate, files[1], 4, 6)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::seal_mismatch, files[1], kSealLine + 1, 0)) << describe(r);
    // Records 7 and 8 verify against the MAC of the real record 6.
    EXPECT_EQ(count(r, FaultKind::record_mac_mismatch), 1u) << describe(r);
}

TEST_F(VerifierFaults, InsertedCopyOfAnEarlierRecordIsReordered) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    lines.insert(lines.begin() + 4, lines[1]);  // record 5 again, after record 7
    write_lines(files[1], lines);
    const VerifyReport r = run(pub_options(*keys_));
    EXPECT_TRUE(has_fault(r, FaultKind::sequence_reordered, files[1], 5, 5)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::digest_mismatch, files[1], kSealLine + 1, 0)) << describe(r);
}

TEST_F(VerifierFaults, DuplicatedRecord) {
    const auto files = trail({.segment_records = {4, 4, 4}, .seal_last = false});
    auto lines = read_lines(files[2]);
    lines.insert(lines.begin() + 3, lines[2]);  // record 10 twice
    write_lines(files[2], lines);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::sequence_duplicate, files[2], 4, 10)) << describe(r);
}

TEST_F(VerifierFaults, ReorderedRecords) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    std::swap(lines[2], lines[3]);  // records 7, 6 on lines 3, 4
    write_lines(files[1], lines);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_TRUE(has_fault(r, FaultKind::sequence_reordered, files[1], 4, 6)) << describe(r);
        EXPECT_EQ(count(r, FaultKind::sequence_reordered), 1u) << describe(r);
    }
}

TEST_F(VerifierFaults, TornLastLineOfOpenTail) {
    const auto files = trail({.segment_records = {4, 4, 4}, .seal_last = false});
    std::string data = read_all(files[2]);
    data.pop_back();  // the last LF
    write_all(files[2], data);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::torn_line, files[2], 5, 0)) << describe(r);
}

TEST_F(VerifierFaults, FileCutInsideSealedSegment) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    std::string cut = lines[0] + lines[1] + lines[2] + lines[3].substr(0, 40);  // inside record 7
    write_all(files[1], cut);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_TRUE(has_fault(r, FaultKind::torn_line, files[1], 4, 0)) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::seal_missing, files[1], 0, 0)) << describe(r);
        // The next segment continues from record 8's MAC, which this file no longer reaches.
        EXPECT_TRUE(has_fault(r, FaultKind::chain_link_broken, files[2], 1, 9)) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::sequence_gap, files[2], 1, 7)) << describe(r);
    }
}

TEST_F(VerifierFaults, MissingSealOfEarlierSegment) {
    const auto files = trail();
    auto lines = read_lines(files[0]);
    lines.pop_back();
    write_lines(files[0], lines);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::seal_missing, files[0], 0, 0)) << describe(r);
    }
}

TEST_F(VerifierFaults, MissingSegment) {
    const auto files = trail();
    fs::remove(files[1]);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::segment_missing, files[2], 1, 9)) << describe(r);
    }
}

TEST_F(VerifierFaults, DuplicatedSegment) {
    const auto files = trail();
    const std::string copy = dir_.sub("t/zz_copy.log");
    fs::copy_file(files[1], copy);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::segment_duplicate, copy, 1, 0)) << describe(r);
    EXPECT_EQ(r.records, 12u);
}

TEST_F(VerifierFaults, ReplayedSegmentInPlaceOfANewerOne) {
    // The newest segment is replaced by a replay of an older one: the epoch repeats.
    const auto files = trail({.segment_records = {4, 4, 4, 4}});
    fs::copy_file(files[1], files[3], fs::copy_options::overwrite_existing);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_TRUE(has_fault(r, FaultKind::segment_duplicate, files[3], 1, 0)) << describe(r);
    }
}

TEST_F(VerifierFaults, SegmentFromAnotherChain) {
    const auto files = trail();
    const NewChainKeys other = make_keys();
    const auto theirs = write_trail(other, dir_.sub("other"), {});
    const std::string intruder = dir_.sub("t/intruder.log");
    fs::copy_file(theirs[1], intruder);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::foreign_chain, intruder, 1, 0)) << describe(r);
        EXPECT_EQ(r.segments.size(), 3u);
    }
}

TEST_F(VerifierFaults, SegmentFromAnotherModuleSerial) {
    // Same chain keys, but the second segment is written under another module serial.
    fs::create_directories(dir_.sub("t"));
    auto w1 = ChainWriter::create(keys_->key.chain(), "150123", 1, keys_->signer, genesis_head(keys_->key));
    ASSERT_TRUE(w1.has_value());
    TestWorkload load(3, 1'795'500'000'000);
    AuditRecord rec;
    std::string seg0 = *w1->open_segment(load.now_ms());
    for (int i = 0; i < 3; ++i) {
        load.next(rec);
        ASSERT_TRUE(w1->append(rec, seg0).has_value());
    }
    seg0 += *w1->seal(load.now_ms());
    auto w2 = ChainWriter::create(keys_->key.chain(), "150999", 1, keys_->signer, w1->head());
    ASSERT_TRUE(w2.has_value());
    std::string seg1 = *w2->open_segment(load.now_ms());
    for (int i = 0; i < 3; ++i) {
        load.next(rec);
        ASSERT_TRUE(w2->append(rec, seg1).has_value());
    }
    seg1 += *w2->seal(load.now_ms());
    const std::string f0 = dir_.sub("t/" + segment_file_name("150123", 0));
    const std::string f1 = dir_.sub("t/" + segment_file_name("150999", 1));
    write_all(f0, seg0);
    write_all(f1, seg1);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::foreign_module, f1, 1, 0)) << describe(r);
    }
}

TEST_F(VerifierFaults, SegmentOfAForkedChainBreaksTheLink) {
    // A second trail with the same keys (a forked module state): valid on its own, but its
    // second segment does not continue our first segment's last MAC.
    const auto files = trail();
    const auto fork = write_trail(*keys_, dir_.sub("fork"), {.seed = 99});
    fs::copy_file(fork[1], files[1], fs::copy_options::overwrite_existing);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(r, FaultKind::chain_link_broken, files[1], 1, 5)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::chain_link_broken, files[2], 1, 9)) << describe(r);
    EXPECT_EQ(count(r, FaultKind::record_mac_mismatch), 0u) << describe(r);
}

TEST_F(VerifierFaults, BadSignature) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    std::string& seal = lines[kSealLine - 1];
    const std::size_t pos = seal.find(" sig=") + 5 + 10;
    seal[pos] = seal[pos] == 'a' ? 'b' : 'a';
    write_lines(files[1], lines);
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::bad_signature, files[1], kSealLine, 0)) << describe(r);
    }
}

TEST_F(VerifierFaults, SealResignedByAnotherKeyIsBadSignature) {
    const auto files = trail();
    auto lines = read_lines(files[0]);
    std::string& seal_text = lines[kSealLine - 1];
    auto parsed = parse_seal_line(std::string_view(seal_text).substr(0, seal_text.size() - 1));
    ASSERT_TRUE(parsed.has_value());
    SealLine s = parsed->seal;
    const NewChainKeys attacker = make_keys();
    auto sig = attacker.signer.sign(as_bytes(s.signed_body()));
    ASSERT_TRUE(sig.has_value());
    s.sig = *sig;
    seal_text = s.line();
    write_lines(files[0], lines);
    const VerifyReport r = run(pub_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::bad_signature, files[0], kSealLine, 0)) << describe(r);
}

TEST_F(VerifierFaults, SealCountChanged) {
    const auto files = trail();
    auto lines = read_lines(files[2]);
    std::string& seal = lines[kSealLine - 1];
    const auto pos = seal.find(" records=4 ");
    ASSERT_NE(pos, std::string::npos);
    seal.replace(pos, 11, " records=3 ");
    write_lines(files[2], lines);
    const VerifyReport k = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(k, FaultKind::seal_mismatch, files[2], kSealLine, 0)) << describe(k);
    EXPECT_TRUE(has_fault(k, FaultKind::seal_mac_mismatch, files[2], kSealLine, 0)) << describe(k);
    EXPECT_TRUE(has_fault(k, FaultKind::bad_signature, files[2], kSealLine, 0)) << describe(k);
    const VerifyReport p = run(pub_options(*keys_));
    EXPECT_TRUE(has_fault(p, FaultKind::seal_mismatch, files[2], kSealLine, 0)) << describe(p);
    EXPECT_TRUE(has_fault(p, FaultKind::bad_signature, files[2], kSealLine, 0)) << describe(p);
    EXPECT_EQ(count(p, FaultKind::seal_mac_mismatch), 0u) << "the seal MAC needs the secret";
}

TEST_F(VerifierFaults, ModifiedOpenLine) {
    const auto files = trail();
    auto lines = read_lines(files[1]);
    std::string& open = lines[0];
    const std::size_t pos = open.find(" time=") + 6 + 22;  // last millisecond digit
    open[pos] = open[pos] == '0' ? '1' : '0';
    write_lines(files[1], lines);
    const VerifyReport k = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(k, FaultKind::open_mac_mismatch, files[1], 1, 0)) << describe(k);
    EXPECT_EQ(count(k, FaultKind::wrong_key), 0u) << describe(k);
    EXPECT_EQ(k.faults_total, 1u) << describe(k);
    // Without the secret, the digest chain witnesses it at the seal.
    const VerifyReport p = run(pub_options(*keys_));
    EXPECT_TRUE(has_fault(p, FaultKind::digest_mismatch, files[1], kSealLine, 0)) << describe(p);
}

TEST_F(VerifierFaults, DataAfterSeal) {
    const auto files = trail();
    auto lines = read_lines(files[0]);
    lines.push_back(lines[1]);
    lines.push_back("junk\n");
    write_lines(files[0], lines);
    const VerifyReport r = run(pub_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::data_after_seal, files[0], kSealLine + 1, 0)) << describe(r);
}

TEST_F(VerifierFaults, MalformedAndTooLongLines) {
    const auto files = trail({.segment_records = {4, 4, 4}, .seal_last = false});
    auto lines = read_lines(files[2]);
    lines.insert(lines.begin() + 2, "hello world\n");
    lines.insert(lines.begin() + 3, "9 " + std::string(kMaxLineBytes + 10, 'x') + "\n");
    write_lines(files[2], lines);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(r, FaultKind::malformed_line, files[2], 3, 0)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::malformed_line, files[2], 4, 0)) << describe(r);
    EXPECT_EQ(r.faults_total, 2u) << describe(r);
}

TEST_F(VerifierFaults, NotASegment) {
    trail();
    const std::string junk = dir_.sub("t/junk.log");
    write_all(junk, "this is not a segment\n");
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::not_a_segment, junk, 1, 0)) << describe(r);
}

TEST_F(VerifierFaults, WrongAuditKeyFile) {
    const auto files = trail();
    const NewChainKeys other = make_keys();
    for (const auto& opt : {key_options(other), pub_options(other)}) {
        const VerifyReport r = run(opt);
        EXPECT_EQ(r.faults_total, 1u) << describe(r);
        EXPECT_EQ(count(r, FaultKind::wrong_key), 1u) << describe(r);
        ASSERT_EQ(r.faults.size(), 1u);
        EXPECT_EQ(r.faults[0].file, files[0]);
        EXPECT_TRUE(r.segments.empty());
    }
}

TEST_F(VerifierFaults, WrongSecretForTheRightChain) {
    // A key file with the right chain id and public key but another secret (e.g. a stale or
    // mistyped secret): MACs fail from the first record; the verdict is wrong_key, not a
    // flood of record faults, and seals are still checked.
    const auto files = trail();
    Bytes32 secret{};
    ASSERT_TRUE(random_bytes(secret).has_value());
    VerifyOptions opt;
    opt.key.emplace(AuditKey(keys_->key.chain(), secret, keys_->key.pubkey()));
    const VerifyReport r = run(opt);
    EXPECT_EQ(r.faults_total, 1u) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::wrong_key, files[0], 2, 1)) << describe(r);
    EXPECT_EQ(r.segments.size(), 3u);
    EXPECT_EQ(r.records, 12u);
    EXPECT_EQ(r.sealed_segments, 3u);
}

TEST_F(VerifierFaults, SeveralFaultsInOneRunAreAllReported) {
    const auto files = trail({.segment_records = {4, 4, 4, 4, 4, 4}, .seal_last = false});
    {  // segment 0: modified record 2
        auto l = read_lines(files[0]);
        l[2] = bump_time(l[2]);
        write_lines(files[0], l);
    }
    {  // segment 1: record 6 deleted
        auto l = read_lines(files[1]);
        l.erase(l.begin() + 2);
        write_lines(files[1], l);
    }
    {  // segment 2: seal removed
        auto l = read_lines(files[2]);
        l.pop_back();
        write_lines(files[2], l);
    }
    {  // segment 3: signature altered
        auto l = read_lines(files[3]);
        auto& s = l.back();
        const std::size_t pos = s.find(" sig=") + 5;
        s[pos] = s[pos] == 'a' ? 'b' : 'a';
        write_lines(files[3], l);
    }
    fs::remove(files[4]);  // segment 4 missing
    {                      // segment 5 (open tail): torn last line
        std::string d = read_all(files[5]);
        d.pop_back();
        write_all(files[5], d);
    }
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(has_fault(r, FaultKind::record_mac_mismatch, files[0], 3, 2)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::sequence_gap, files[1], 3, 6)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::seal_missing, files[2], 0, 0)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::bad_signature, files[3], kSealLine, 0)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::segment_missing, files[5], 1, 21)) << describe(r);
    EXPECT_TRUE(has_fault(r, FaultKind::torn_line, files[5], 5, 0)) << describe(r);
    EXPECT_EQ(r.faults.size(), r.faults_total);
    std::uint64_t sum = 0;
    for (auto c : r.fault_counts) sum += c;
    EXPECT_EQ(sum, r.faults_total);
}

TEST_F(VerifierFaults, FaultListIsCappedButEveryFaultIsCounted) {
    const auto files = trail({.segment_records = {30}, .seal_last = false});
    auto lines = read_lines(files[0]);
    for (std::size_t i = 1; i < lines.size(); i += 2) lines[i] = bump_time(lines[i]);
    write_lines(files[0], lines);
    VerifyOptions opt = key_options(*keys_);
    opt.max_faults = 5;
    const VerifyReport r = run(opt);
    EXPECT_EQ(r.faults.size(), 5u);
    EXPECT_EQ(r.faults_total, 15u) << describe(r);
    EXPECT_EQ(count(r, FaultKind::record_mac_mismatch), 15u);
}

TEST_F(VerifierFaults, AFifoIsRefusedNotWaitedOn) {
    trail();
    const std::string fifo = dir_.sub("fifo.log");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // Named explicitly: refused as not a regular file (before the fix, open() blocked forever).
    auto r = verify_paths({fifo}, key_options(*keys_));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::io_error);
    EXPECT_NE(r.error().message.find(fifo), std::string::npos) << r.error().message;
}

TEST_F(VerifierFaults, UsageAndIoErrorsAreErrorsNotFaults) {
    trail();
    auto none = verify_paths({dir_.sub("t")}, VerifyOptions{});
    ASSERT_FALSE(none.has_value());
    EXPECT_EQ(none.error().code, errc::invalid_argument);
    auto missing = verify_paths({dir_.sub("does-not-exist")}, key_options(*keys_));
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().code, errc::io_error);
    EXPECT_NE(missing.error().message.find("does-not-exist"), std::string::npos);
    fs::create_directories(dir_.sub("empty"));
    auto empty = verify_paths({dir_.sub("empty")}, key_options(*keys_));
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error().code, errc::invalid_argument);
}

}  // namespace
}  // namespace hsmaudit::mac

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

// The online drain feeds a replayed segment to the verifier line by line and ends it: the
// duplicate is reported once, and the chain continues from the segment verified before it (a
// verifier left "stuck" on the skipped segment raised false faults on every later one).
TEST(ChainVerifierReplay, ASkippedReplayedSegmentLeavesTheChainEndWhereItWas) {
    TempDir dir;
    const auto keys = make_keys();
    const auto paths = write_trail(keys, dir.path(), TrailSpec{{3, 3, 3}, true});
    std::vector<Fault> faults;
    ChainVerifier cv(&keys.key, nullptr, [&](Fault&& f) { faults.push_back(std::move(f)); });
    auto feed = [&](const std::string& path, const std::string& name) {
        auto lines = read_lines(path);
        for (auto& l : lines) l.pop_back();  // the verifier takes lines without LF
        auto open = parse_open_line(lines.front());
        ASSERT_TRUE(open.has_value());
        const bool begun = cv.begin_segment(*open, lines.front(), name);
        for (std::size_t i = 1; i < lines.size(); ++i) cv.line(lines[i], i + 1);
        if (begun || !cv.in_segment()) (void)cv.end_segment(false);
    };
    feed(paths[0], paths[0]);
    feed(paths[1], paths[1]);
    feed(paths[1], "replayed.log");
    ASSERT_TRUE(cv.chain_end().has_value());
    EXPECT_EQ(cv.chain_end()->file, paths[1]);  // not the skipped copy
    feed(paths[2], paths[2]);
    ASSERT_EQ(faults.size(), 1u) << faults.back().message;
    EXPECT_EQ(faults[0].kind, FaultKind::segment_duplicate);
    ASSERT_TRUE(cv.chain_end().has_value());
    EXPECT_EQ(cv.chain_end()->next_seq, 10u);
}

}  // namespace
}  // namespace hsmaudit::mac
