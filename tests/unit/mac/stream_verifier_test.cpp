// mac::StreamVerifier (the fleet verifier's chain logic) against the offline verifier: the same
// segments, tampered the same way, fed as a stream gives the same fault kinds as verify_paths()
// gives for the files (both apply ChainVerifier's rules), whether the stream carries the open and
// seal lines, only the records, or starts in the middle of the chain. And the epoch bound: an
// epoch of 2^64-1 is a fault, not a stall, in both.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "mac/chain_verifier.h"
#include "mac/checkpoint.h"
#include "mac/segment_format.h"
#include "mac/stream_verifier.h"
#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

/// Changes the last millisecond digit of a record line's time: a modified record that still parses.
std::string bump_time_line(std::string line) {
    const std::size_t pos = line.find(' ') + 1 + 22;
    line[pos] = line[pos] == '0' ? '1' : '0';
    return line;
}

/// One entry of a stream, as the exporter sends it: the line (no LF) and its segment's epoch.
struct Entry {
    enum Kind { open, record, seal } kind;
    std::string line;
    std::uint64_t epoch;
};

/// The entries of segment files in chain order.
std::vector<Entry> entries_of(const std::vector<std::string>& paths) {
    std::vector<Entry> out;
    for (const auto& p : paths) {
        auto lines = read_lines(p);
        auto open = parse_open_line(lines.front().substr(0, lines.front().size() - 1));
        EXPECT_TRUE(open.has_value()) << p;
        const std::uint64_t epoch = open ? open->epoch : 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            std::string l = lines[i];
            if (!l.empty() && l.back() == '\n') l.pop_back();
            const Entry::Kind k = i == 0 ? Entry::open : l.rfind("@seal", 0) == 0 ? Entry::seal : Entry::record;
            out.push_back(Entry{k, l, epoch});
        }
    }
    return out;
}

std::vector<Entry> records_only(const std::vector<Entry>& in) {
    std::vector<Entry> out;
    std::copy_if(in.begin(), in.end(), std::back_inserter(out), [](const Entry& e) { return e.kind == Entry::record; });
    return out;
}

std::vector<FaultKind> sorted(std::vector<FaultKind> kinds) {
    std::sort(kinds.begin(), kinds.end());
    return kinds;
}

std::string names(const std::vector<FaultKind>& kinds) {
    std::string s;
    for (auto k : kinds) s += std::string(to_string(k)) + " ";
    return s.empty() ? "(none)" : s;
}

/// What a StreamVerifier reports for `entries`.
struct StreamRun {
    std::vector<Fault> faults;
    StreamCounts counts;
    StreamPosition position;
    [[nodiscard]] std::vector<FaultKind> kinds() const {
        std::vector<FaultKind> k;
        for (const auto& f : faults) k.push_back(f.kind);
        return sorted(k);
    }
};

struct StreamOptions {
    bool with_key = true;
    bool epoch_headers = true;
    std::optional<StreamPosition> resume;
};

StreamRun run_stream(const NewChainKeys& keys, const std::vector<Entry>& entries, const StreamOptions& o = {},
                     const std::string& serial = "150123") {
    StreamRun r;
    StreamVerifier v(serial, o.with_key ? std::optional<AuditKey>(keys.key) : std::nullopt,
                     o.with_key ? std::nullopt : std::optional<AuditPub>(keys.key.pub()),
                     [&](Fault&& f) { r.faults.push_back(std::move(f)); });
    if (o.resume) v.resume(*o.resume);
    std::uint64_t offset = 0;
    for (const auto& e : entries) {
        switch (e.kind) {
            case Entry::open: v.open(e.line, "audit[0]", offset); break;
            case Entry::seal: v.seal(e.line, "audit[0]", offset); break;
            case Entry::record:
                (void)v.record(e.line, o.epoch_headers ? std::optional<std::uint64_t>(e.epoch) : std::nullopt,
                               "audit[0]", offset);
                break;
        }
        ++offset;
    }
    v.finish();
    r.counts = v.counts();
    r.position = v.position();
    return r;
}

/// What ChainVerifier reports for the same segments' lines fed without their seals (what a
/// records-only stream can be compared with: the open lines give the positions, the lines are
/// the same records).
std::vector<FaultKind> chain_without_seals(const NewChainKeys& keys, const std::vector<Entry>& entries) {
    std::vector<FaultKind> kinds;
    ChainVerifier cv(&keys.key, nullptr, [&](Fault&& f) { kinds.push_back(f.kind); });
    std::uint64_t n = 0;
    bool begun = false;
    for (const auto& e : entries) {
        ++n;
        if (e.kind == Entry::open) {
            if (begun) (void)cv.end_segment(true);
            auto o = parse_open_line(e.line);
            EXPECT_TRUE(o.has_value());
            begun = cv.begin_segment(*o, e.line, "f", n);
        } else if (e.kind == Entry::record) {
            cv.line(e.line, n);
        }
    }
    if (begun) (void)cv.end_segment(true);
    return sorted(kinds);
}

std::vector<FaultKind> offline_kinds(const VerifyReport& r) {
    std::vector<FaultKind> k;
    for (const auto& f : r.faults) k.push_back(f.kind);
    return sorted(k);
}

class StreamVerifierTest : public ::testing::Test {
protected:
    void SetUp() override {
        keys_ = std::make_unique<NewChainKeys>(make_keys());
        files_ = write_trail(*keys_, dir_.sub("t"), TrailSpec{{4, 4, 4}, true});
        ASSERT_EQ(files_.size(), 3u);
    }
    /// Replaces line `line` (0-based, with LF) of segment `seg`.
    void set_line(std::size_t seg, std::size_t line, const std::string& text) {
        auto lines = read_lines(files_[seg]);
        lines[line] = text;
        write_lines(files_[seg], lines);
    }
    std::vector<std::string> lines(std::size_t seg) const { return read_lines(files_[seg]); }
    void erase_line(std::size_t seg, std::size_t line) {
        auto l = read_lines(files_[seg]);
        l.erase(l.begin() + static_cast<std::ptrdiff_t>(line));
        write_lines(files_[seg], l);
    }

    /// The stream's kinds equal verify_paths()'s (full stream) and the chain's without seals
    /// (records-only stream, with and without epoch headers), in every key mode the inputs allow.
    void expect_agreement(const std::vector<FaultKind>& expected) {
        const auto all = entries_of(files_);
        const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
        EXPECT_EQ(offline_kinds(offline), sorted(expected)) << describe(offline);
        const StreamRun full = run_stream(*keys_, all);
        EXPECT_EQ(names(full.kinds()), names(offline_kinds(offline))) << "full stream vs files";

        const VerifyReport offline_pub = verify_ok({dir_.sub("t")}, pub_options(*keys_));
        const StreamRun full_pub = run_stream(*keys_, all, StreamOptions{false, true, std::nullopt});
        EXPECT_EQ(names(full_pub.kinds()), names(offline_kinds(offline_pub))) << "public key only";

        const auto recs = records_only(all);
        const auto reference = chain_without_seals(*keys_, all);
        EXPECT_EQ(names(run_stream(*keys_, recs).kinds()), names(reference)) << "records only, epoch headers";
        EXPECT_EQ(names(run_stream(*keys_, recs, StreamOptions{true, false, std::nullopt}).kinds()), names(reference))
            << "records only, no epoch header";
    }

    TempDir dir_;
    std::unique_ptr<NewChainKeys> keys_;
    std::vector<std::string> files_;
};

TEST_F(StreamVerifierTest, InOrderEveryModeVerifies) {
    expect_agreement({});
    const StreamRun full = run_stream(*keys_, entries_of(files_));
    EXPECT_EQ(full.counts.records, 12u);
    EXPECT_EQ(full.counts.segments, 3u);
    EXPECT_EQ(full.counts.seals, 3u);
    EXPECT_EQ(full.counts.macs_checked, 12u);
    EXPECT_EQ(full.position.next_seq, 13u);
    EXPECT_EQ(full.position.epoch, 2u);
    const StreamRun recs = run_stream(*keys_, records_only(entries_of(files_)));
    EXPECT_EQ(recs.counts.records, 12u);
    EXPECT_EQ(recs.counts.macs_checked, 11u);  // the first record is the stream's start
    EXPECT_EQ(recs.position.epoch, 2u);
    const StreamRun searched = run_stream(*keys_, records_only(entries_of(files_)), StreamOptions{true, false, {}});
    EXPECT_EQ(searched.counts.macs_checked, 11u);
    EXPECT_EQ(searched.position.epoch, 2u);  // found by the key that verifies each record
}

TEST_F(StreamVerifierTest, ATamperedRecordIsRecordMacMismatchEverywhere) {
    set_line(1, 2, bump_time_line(lines(1)[2]));
    expect_agreement({FaultKind::record_mac_mismatch});
}

TEST_F(StreamVerifierTest, ADeletedRecordIsASequenceGapEverywhere) {
    erase_line(1, 2);  // record 6
    expect_agreement({FaultKind::sequence_gap, FaultKind::seal_mismatch});
    const StreamRun recs = run_stream(*keys_, records_only(entries_of(files_)));
    ASSERT_EQ(recs.faults.size(), 1u);
    EXPECT_EQ(recs.faults[0].seq, 6u);
}

TEST_F(StreamVerifierTest, ADuplicateWithOtherBytesIsSequenceDuplicateEverywhere) {
    auto l = lines(1);
    l.insert(l.begin() + 3, bump_time_line(l[2]));  // record 6 again, modified
    write_lines(files_[1], l);
    expect_agreement({FaultKind::sequence_duplicate, FaultKind::seal_mismatch});
}

TEST_F(StreamVerifierTest, AnIdenticalCopyIsARedeliveryInAStreamButADuplicateInAFile) {
    // The one intended difference (at-least-once export delivers records twice).
    auto l = lines(1);
    l.insert(l.begin() + 3, l[2]);
    write_lines(files_[1], l);
    const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
    EXPECT_EQ(count(offline, FaultKind::sequence_duplicate), 1u) << describe(offline);
    const StreamRun full = run_stream(*keys_, entries_of(files_));
    EXPECT_TRUE(full.faults.empty()) << names(full.kinds());
    EXPECT_EQ(full.counts.redelivered, 1u);
    EXPECT_EQ(full.counts.records, 12u);
}

TEST_F(StreamVerifierTest, ReorderedRecordsGiveTheSameKindsEverywhere) {
    auto l = lines(1);
    std::swap(l[2], l[3]);  // records 6 and 7
    write_lines(files_[1], l);
    expect_agreement({FaultKind::sequence_gap, FaultKind::sequence_reordered, FaultKind::record_mac_mismatch});
}

TEST_F(StreamVerifierTest, ASegmentOfAnotherChainIsForeignChainAndSkipped) {
    const auto other = make_keys();
    const auto foreign = write_trail(other, dir_.sub("other"), TrailSpec{{4}, true});
    // Offline, in the same directory: set apart as foreign_chain.
    std::filesystem::copy_file(foreign[0], dir_.sub("t") + "/zz_foreign.log");
    const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
    EXPECT_EQ(offline_kinds(offline), std::vector<FaultKind>{FaultKind::foreign_chain}) << describe(offline);
    // In a stream, between this chain's segments: the same fault, and its records are skipped.
    auto all = entries_of({files_[0]});
    const auto f = entries_of(foreign);
    all.insert(all.end(), f.begin(), f.end());
    const auto rest = entries_of({files_[1], files_[2]});
    all.insert(all.end(), rest.begin(), rest.end());
    const StreamRun full = run_stream(*keys_, all);
    EXPECT_EQ(names(full.kinds()), names(offline_kinds(offline)));
    EXPECT_EQ(full.counts.records, 12u);
}

TEST_F(StreamVerifierTest, ARecordOfAnotherModuleIsForeignModule) {
    const auto other = make_keys();
    TrailSpec spec{{4}, true};
    spec.serial = "150999";
    const auto foreign = write_trail(other, dir_.sub("other"), spec);
    auto all = entries_of({files_[0]});
    all.push_back(entries_of(foreign)[1]);
    const StreamRun r = run_stream(*keys_, all);
    ASSERT_EQ(r.faults.size(), 1u) << names(r.kinds());
    EXPECT_EQ(r.faults[0].kind, FaultKind::foreign_module);
}

TEST_F(StreamVerifierTest, StartingMidChainAtAKnownPositionVerifiesTheRest) {
    // Records 1..6 verified by an earlier run: it stood at epoch 1, record 7 next, record 6's MAC.
    const auto all = entries_of(files_);
    const auto r6 = split_record_line(lines(1)[2].substr(0, lines(1)[2].size() - 1));
    ASSERT_TRUE(r6.has_value());
    ASSERT_EQ(r6->seq, 6u);
    StreamPosition at;
    at.epoch = 1;
    at.epoch_known = true;
    at.next_seq = 7;
    at.last_mac = r6->mac;
    // The stream resumes at record 7 (entry 9: open0, 4 records, seal0, open1, records 5 and 6).
    const std::vector<Entry> tail(all.begin() + 9, all.end());
    ASSERT_EQ(tail.front().kind, Entry::record);
    for (const bool with_key : {true, false}) {
        const StreamRun r = run_stream(*keys_, tail, StreamOptions{with_key, true, at});
        EXPECT_TRUE(r.faults.empty()) << names(r.kinds());
        EXPECT_EQ(r.counts.records, 6u);
        EXPECT_EQ(r.counts.seals, 2u);
        EXPECT_EQ(r.counts.macs_checked, with_key ? 6u : 0u);
    }
    // From an unknown position: the first record is the start.
    const StreamRun unknown = run_stream(*keys_, tail);
    EXPECT_TRUE(unknown.faults.empty()) << names(unknown.kinds());
    EXPECT_EQ(unknown.counts.first_seq, 7u);

    // A wrong MAC at the position: the first record does not continue it, as a broken link would.
    StreamPosition wrong = at;
    (*wrong.last_mac)[0] ^= 1;
    const StreamRun broken = run_stream(*keys_, tail, StreamOptions{true, true, wrong});
    EXPECT_EQ(names(broken.kinds()), names({FaultKind::record_mac_mismatch}));
    // A record missing at the position: a gap, as between segment files.
    StreamPosition behind = at;
    behind.next_seq = 6;
    const StreamRun gap = run_stream(*keys_, tail, StreamOptions{true, true, behind});
    ASSERT_FALSE(gap.faults.empty());
    EXPECT_EQ(gap.faults[0].kind, FaultKind::sequence_gap);
    EXPECT_EQ(gap.faults[0].seq, 6u);
}

TEST_F(StreamVerifierTest, TamperingAfterAMidChainStartIsFoundAsInTheFile) {
    set_line(2, 2, bump_time_line(lines(2)[2]));  // record 10
    const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
    const auto all = entries_of(files_);
    const auto r6 = split_record_line(lines(1)[2].substr(0, lines(1)[2].size() - 1));
    ASSERT_TRUE(r6.has_value());
    StreamPosition at{1, true, 7, r6->mac};
    const StreamRun r =
        run_stream(*keys_, std::vector<Entry>(all.begin() + 9, all.end()), StreamOptions{true, true, at});
    EXPECT_EQ(names(r.kinds()), names(offline_kinds(offline)));
    ASSERT_FALSE(r.faults.empty());
    EXPECT_EQ(r.faults[0].seq, 10u);
}

TEST_F(StreamVerifierTest, ASealSeenWithoutItsOpenIsCheckedAgainstThePositionAsInTheFile) {
    erase_line(1, 4);  // record 8, the last of segment 1: its seal no longer matches
    const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
    const auto all = entries_of(files_);
    const auto r6 = split_record_line(lines(1)[2].substr(0, lines(1)[2].size() - 1));
    ASSERT_TRUE(r6.has_value());
    const StreamRun r = run_stream(*keys_, std::vector<Entry>(all.begin() + 9, all.end()),
                                   StreamOptions{true, true, StreamPosition{1, true, 7, r6->mac}});
    EXPECT_EQ(names(r.kinds()), names(offline_kinds(offline))) << describe(offline);
    EXPECT_EQ(count(offline, FaultKind::seal_mismatch), 2u) << describe(offline);
}

TEST_F(StreamVerifierTest, CheckpointsAreMatchedAgainstTheRecordsSeen) {
    const auto all = entries_of(files_);
    const auto r6 = split_record_line(lines(1)[2].substr(0, lines(1)[2].size() - 1));
    ASSERT_TRUE(r6.has_value());
    auto good = make_checkpoint(keys_->key.chain(), "150123", 1, 6, 1'795'500'000'000, r6->mac, keys_->signer);
    Mac other = r6->mac;
    other[0] ^= 1;
    auto bad = make_checkpoint(keys_->key.chain(), "150123", 1, 6, 1'795'500'000'000, other, keys_->signer);
    ASSERT_TRUE(good.has_value() && bad.has_value());
    std::vector<Fault> faults;
    StreamVerifier v("150123", keys_->key, std::nullopt, [&](Fault&& f) { faults.push_back(std::move(f)); });
    std::uint64_t n = 0;
    for (const auto& e : all) {
        if (e.kind == Entry::open) v.open(e.line, "a", ++n);
        if (e.kind == Entry::record) (void)v.record(e.line, e.epoch, "a", ++n);
        if (e.kind == Entry::seal) v.seal(e.line, "a", ++n);
    }
    v.checkpoint(good->line(), "a", ++n);
    v.checkpoint(bad->line(), "a", ++n);
    ASSERT_EQ(faults.size(), 1u);
    EXPECT_EQ(faults[0].kind, FaultKind::anchor_mismatch);
    EXPECT_EQ(v.counts().anchors_matched, 1u);
    // Another chain's checkpoint (the serial re-initialised) is ignored and counted; a version 2
    // checkpoint of this chain is matched like a version 1.
    auto other_keys = generate_chain_keys();
    auto foreign =
        make_checkpoint(other_keys->key.chain(), "150123", 0, 6, 1'795'500'000'000, other, other_keys->signer);
    auto v2 = make_checkpoint(keys_->key.chain(), "150123", 1, 6, 1, 1'795'500'000'001, r6->mac, keys_->signer);
    ASSERT_TRUE(foreign.has_value() && v2.has_value());
    v.checkpoint(foreign->line(), "a", ++n);
    v.checkpoint(v2->line(), "a", ++n);
    EXPECT_EQ(faults.size(), 1u);
    EXPECT_EQ(v.counts().anchors_other_chains, 1u);
    EXPECT_EQ(v.counts().anchors_matched, 2u);
}

// An epoch of 2^64-1 would make the key deriver walk 2^64 HMACs: refused at once instead.
TEST_F(StreamVerifierTest, AnEpochOfTwoToTheSixtyFourIsAFaultNotAStall) {
    constexpr std::uint64_t kFar = std::numeric_limits<std::uint64_t>::max();
    const auto started = std::chrono::steady_clock::now();
    auto all = records_only(entries_of(files_));
    all[5].epoch = kFar;  // the message claims epoch 2^64-1 for record 6
    const StreamRun r = run_stream(*keys_, all);
    ASSERT_EQ(r.faults.size(), 1u) << names(r.kinds());
    EXPECT_EQ(r.faults[0].kind, FaultKind::epoch_out_of_range);
    EXPECT_EQ(r.faults[0].line, 5u);
    EXPECT_EQ(r.counts.macs_checked, 10u);  // the rest continues from record 6's MAC as written
    EXPECT_EQ(r.position.next_seq, 13u);

    // An open line (in a stream, and in a file for the offline verifier) claiming that epoch.
    auto l = lines(2);
    const auto at = l[0].find(" epoch=2 ");
    ASSERT_NE(at, std::string::npos);
    l[0].replace(at, 9, " epoch=" + std::to_string(kFar) + " ");
    write_lines(dir_.sub("t") + "/far.log", l);
    const VerifyReport offline = verify_ok({dir_.sub("t")}, key_options(*keys_));
    EXPECT_EQ(count(offline, FaultKind::epoch_out_of_range), 1u) << describe(offline);
    EXPECT_EQ(offline.faults_total, 1u) << describe(offline);
    auto stream = entries_of(files_);
    auto far = entries_of({dir_.sub("t") + "/far.log"});
    stream.insert(stream.end(), far.begin(), far.end());
    const StreamRun s = run_stream(*keys_, stream);
    EXPECT_EQ(names(s.kinds()), names(offline_kinds(offline)));
    EXPECT_EQ(to_string(FaultKind::epoch_out_of_range), "epoch_out_of_range");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

TEST(ChainVerifierBound, EpochsWithinTheStepAreAcceptedBeyondItRefused) {
    const auto keys = make_keys();
    const AuditPub pub = keys.key.pub();
    std::vector<Fault> faults;
    ChainVerifier cv(nullptr, &pub, [&](Fault&& f) { faults.push_back(std::move(f)); });
    // The chain's first epoch may lie far from 0 (retention deleted the oldest segments)...
    EXPECT_TRUE(cv.epoch_in_range(kMaxEpochStep));
    EXPECT_FALSE(cv.epoch_in_range(kMaxEpochStep + 1));
    ASSERT_TRUE(cv.begin_at(ChainPosition{kMaxEpochStep, 1, Mac{}, "150123"}, "f"));
    (void)cv.end_segment(true);
    // ... later ones only within kMaxEpochGap of the furthest accepted.
    EXPECT_TRUE(cv.epoch_in_range(kMaxEpochStep + kMaxEpochGap));
    EXPECT_FALSE(cv.epoch_in_range(2 * kMaxEpochStep));
    EXPECT_FALSE(cv.begin_at(ChainPosition{kMaxEpochStep + kMaxEpochGap + 1, 1, Mac{}, "150123"}, "f", 9));
    ASSERT_EQ(faults.size(), 1u);
    EXPECT_EQ(faults[0].kind, FaultKind::epoch_out_of_range);
    EXPECT_EQ(faults[0].line, 9u);
    // A signed checkpoint naming a far epoch justifies epochs near it.
    cv.justify_epoch(5 * kMaxEpochStep);
    EXPECT_TRUE(cv.epoch_in_range(5 * kMaxEpochStep + kMaxEpochGap));
    EXPECT_FALSE(cv.epoch_in_range(5 * kMaxEpochStep + kMaxEpochGap + 1));
}

// A verifier resumed from a chain end (the drain after a restart) measures from that end.
TEST(ChainVerifierBound, ResumedChainEndCountsAsReached) {
    const auto keys = make_keys();
    ChainVerifier cv(&keys.key, nullptr, [](Fault&&) {});
    cv.resume(ChainEnd{3 * kMaxEpochStep, 10, Mac{}, "x"});
    EXPECT_TRUE(cv.epoch_in_range(3 * kMaxEpochStep + 1));
    EXPECT_FALSE(cv.epoch_in_range(3 * kMaxEpochStep + kMaxEpochGap + 1));
}

}  // namespace
}  // namespace hsmaudit::mac
