// Unit tests of the NVRAM ring: round trip, wrap-around, full, recovery after simulated crashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "agent/engine/sample.h"
#include "hsmcore/errc.h"
#include "hsmcore/ring/entry_codec.h"
#include "hsmcore/ring/ring.h"
#include "mac/chain_writer.h"
#include "mac/keys.h"

namespace hsmaudit::hsmcore::ring {
namespace {

namespace fs = std::filesystem;

class RingTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmcore_ring_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        paths_ = RingPaths::in_dir(dir_.string());
        auto keys = mac::generate_chain_keys();
        ASSERT_TRUE(keys);
        keys_.emplace(std::move(*keys));
    }
    void TearDown() override { fs::remove_all(dir_); }

    void make_ring(std::size_t bytes, std::size_t reserve = 0) {
        ASSERT_TRUE(RingWriter::create(paths_, {bytes, reserve}, "150123", mac::genesis_head(keys_->key)));
        open_ring();
    }
    void open_ring(RingOptions options = {}) {
        auto w = RingWriter::open(paths_, options);
        ASSERT_TRUE(w) << w.error().message;
        ring_.emplace(std::move(*w));
        auto cw = mac::ChainWriter::create(keys_->key.chain(), "150123", 1, keys_->signer, ring_->state().head);
        ASSERT_TRUE(cw);
        chain_.emplace(std::move(*cw));
    }
    /// Opens a segment if needed; returns the open line.
    void ensure_open() {
        if (chain_->head().segment_open) return;
        auto line = chain_->open_segment(1000);
        ASSERT_TRUE(line);
        std::string e;
        encode_line_entry(EntryKind::open, ring_->state().next_entry, chain_->head().next_seq, *line, e);
        std::string_view v = e;
        ASSERT_TRUE(ring_->commit({&v, 1}, chain_->head()));
        lines_.push_back(*line);
    }
    /// Appends one record; returns the commit status. On log_full the chain writer is rebuilt from the
    /// ring (the module checks space before MACing; this test helper does it the blunt way).
    Status append(mac::AuditRecord rec) {
        const mac::ChainHead before = chain_->head();
        std::string line;
        auto m = chain_->append(rec, line);
        if (!m) return std::move(m).error();
        std::string e;
        encode_record_entry(ring_->state().next_entry, rec, *m, e);
        std::string_view v = e;
        auto st = ring_->commit({&v, 1}, chain_->head());
        if (!st) {
            auto cw = mac::ChainWriter::create(keys_->key.chain(), "150123", 1, keys_->signer, before);
            chain_.emplace(std::move(*cw));
            return st;
        }
        lines_.push_back(line);
        return {};
    }
    static mac::AuditRecord sample(std::uint64_t i) {
        mac::AuditRecord r;
        r.time_ms = 1'795'500'000'000 + static_cast<std::int64_t>(i);
        r.partition = 1;
        r.role = "CU";
        r.session = 7;
        r.event = "LUNA_SIGN";
        r.event_class = "usage";
        r.details = {{"key", std::to_string(100 + i % 50)}, {"mech", "CKM_ECDSA_SHA256"}};
        return r;
    }
    /// Reads everything after `after` and renders it.
    std::vector<std::string> read_lines(RingReader& reader, std::uint64_t after, std::uint64_t* last = nullptr) {
        std::vector<EntryView> v;
        auto n = reader.read_after(after, 1'000'000, v);
        EXPECT_TRUE(n) << n.error().message;
        std::vector<std::string> out;
        for (const auto& e : v) {
            std::string line;
            EXPECT_TRUE(render_entry_line(e.entry, reader.serial(), line));
            out.push_back(line);
            if (last) *last = e.entry.entry_no;
        }
        return out;
    }

    fs::path dir_;
    RingPaths paths_;
    std::optional<mac::NewChainKeys> keys_;
    std::optional<RingWriter> ring_;
    std::optional<mac::ChainWriter> chain_;
    std::vector<std::string> lines_;  // every line written, in order
};

TEST_F(RingTest, RecordsRenderToTheExactLinesTheChainWriterProduced) {
    make_ring(256 * 1024);
    ensure_open();
    mac::AuditRecord odd = sample(1);
    odd.details.push_back({"label", std::string("with space, tab\t and \xff byte")});
    odd.role = "-";
    odd.time_ms = -5;  // before 1970: zigzag
    ASSERT_TRUE(append(odd));
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(append(sample(static_cast<std::uint64_t>(i))));
    RingReader reader = ring_->reader();
    EXPECT_EQ(read_lines(reader, 0), lines_);
    auto st = reader.status();
    EXPECT_EQ(st.next_seq, 102u);
    EXPECT_EQ(st.records_used(), 101u);
    EXPECT_EQ(st.entries_used(), 102u);
    // A second, cross-process style reader sees the same.
    auto other = RingReader::open(paths_.ring);
    ASSERT_TRUE(other);
    EXPECT_EQ(read_lines(*other, 0), lines_);
}

TEST_F(RingTest, TypicalRecordsAverageUnder84BytesSo200kFitIn16MiB) {
    make_ring(kDefaultRingBytes);
    ensure_open();
    agent::SampleWorkload work(7, 1'795'500'000'000);
    const std::uint64_t before = ring_->used();
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        mac::AuditRecord r;
        work.next(r);
        ASSERT_TRUE(append(r));
    }
    const double per_record = static_cast<double>(ring_->used() - before) / n;
    RecordProperty("bytes_per_record", std::to_string(per_record));
    std::printf("typical record: %.1f bytes in the ring\n", per_record);
    EXPECT_LT(per_record, 84.0);
    EXPECT_GE(static_cast<double>(ring_->capacity() - ring_->reserve()) / per_record, 190000.0);
}

TEST_F(RingTest, WrapsAroundManyTimesWithoutLosingOrTearingEntries) {
    make_ring(64 * 1024, 4096);
    ensure_open();
    RingReader reader = ring_->reader();
    std::uint64_t acked = 0;
    std::size_t checked = 0;
    for (std::uint64_t i = 0; i < 20000; ++i) {
        auto st = append(sample(i));
        if (!st) {
            ASSERT_EQ(st.error().code, errc::log_full);
            // Drain: everything read must equal what was written, in order.
            std::uint64_t last = acked;
            auto got = read_lines(reader, acked, &last);
            ASSERT_FALSE(got.empty());
            for (const auto& l : got) ASSERT_EQ(l, lines_[checked++]);
            ASSERT_TRUE(ring_->ack_through(last));
            acked = last;
            ASSERT_TRUE(append(sample(i)));
        }
    }
    std::uint64_t last = 0;
    for (const auto& l : read_lines(reader, acked, &last)) ASSERT_EQ(l, lines_[checked++]);
    EXPECT_EQ(checked, lines_.size());
    EXPECT_GT(ring_->state().end_pos, 20 * ring_->capacity());  // wrapped about 20 times
}

TEST_F(RingTest, FullRingRefusesAndAckResumes) {
    make_ring(64 * 1024, 4096);
    ensure_open();
    int appended = 0;
    while (append(sample(static_cast<std::uint64_t>(appended)))) ++appended;
    auto st = append(sample(0));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::log_full);
    EXPECT_LT(ring_->free_bytes(), 100u);
    const auto next_seq = ring_->state().head.next_seq;
    // Nothing was written by the refused commits.
    EXPECT_EQ(next_seq, static_cast<std::uint64_t>(appended) + 1);
    ASSERT_TRUE(ring_->ack_through(10));
    EXPECT_TRUE(append(sample(0)));
    EXPECT_EQ(ring_->state().acked_seq, 9u);  // entry 1 is the open; entries 2..10 are records 1..9
    // Acks are idempotent and cannot run ahead of the writer.
    EXPECT_TRUE(ring_->ack_through(5));
    auto bad = ring_->ack_through(ring_->state().next_entry);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    // Reading entries that were acknowledged is an overrun, not garbage.
    RingReader reader = ring_->reader();
    std::vector<EntryView> v;
    auto r = reader.read_after(3, 10, v);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::overrun);
}

TEST_F(RingTest, RecoversAfterCrashWithPartiallyWrittenEntry) {
    make_ring(128 * 1024);
    ensure_open();
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(append(sample(static_cast<std::uint64_t>(i))));
    // A crash in the middle of writing the next entry: half of its bytes at the committed end.
    std::string e;
    mac::AuditRecord r = sample(99);
    r.seq = ring_->state().head.next_seq;
    encode_record_entry(ring_->state().next_entry, r, mac::Mac{}, e);
    ring_->write_uncommitted_for_test(mac::as_bytes(std::string_view(e).substr(0, e.size() / 2)));
    const auto lines = lines_;
    ring_.reset();
    chain_.reset();
    open_ring();
    const auto& rep = ring_->recovery();
    EXPECT_TRUE(rep.discarded_torn) << rep.summary();
    EXPECT_FALSE(rep.discarded_unpublished);
    EXPECT_EQ(rep.records, 50u);
    EXPECT_EQ(rep.opens, 1u);
    RingReader reader = ring_->reader();
    EXPECT_EQ(read_lines(reader, 0), lines);
    // The chain continues where the committed state left it.
    ASSERT_TRUE(append(sample(100)));
    EXPECT_EQ(read_lines(reader, 0), lines_);
}

TEST_F(RingTest, CompleteButUncommittedEntryIsInvisibleAndReported) {
    make_ring(128 * 1024);
    ensure_open();
    ASSERT_TRUE(append(sample(1)));
    std::string e;
    mac::AuditRecord r = sample(2);
    r.seq = ring_->state().head.next_seq;
    encode_record_entry(ring_->state().next_entry, r, mac::Mac{}, e);
    ring_->write_uncommitted_for_test(mac::as_bytes(e));
    RingReader reader = ring_->reader();
    EXPECT_EQ(read_lines(reader, 0).size(), 2u);  // not visible before the commit
    ring_.reset();
    open_ring();
    EXPECT_TRUE(ring_->recovery().discarded_unpublished) << ring_->recovery().summary();
    RingReader reader2 = ring_->reader();
    EXPECT_EQ(read_lines(reader2, 0).size(), 2u);
}

TEST_F(RingTest, TornStateSlotFallsBackToThePreviousCommit) {
    make_ring(128 * 1024);
    ensure_open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(append(sample(static_cast<std::uint64_t>(i))));
    const std::uint64_t gen = ring_->state().gen;
    ring_.reset();
    {
        // Tear the newest slot: flip a byte in its middle.
        std::fstream f(paths_.state, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>((gen % 2) * 2048 + 100));
        f.put('\x5a');
    }
    open_ring();
    const auto& rep = ring_->recovery();
    EXPECT_EQ(rep.slot_gen, gen - 1);
    EXPECT_FALSE(rep.other_slot_valid);
    EXPECT_EQ(rep.records, 4u);
    EXPECT_TRUE(rep.discarded_unpublished) << rep.summary();  // the 5th record's bytes are still there
}

TEST_F(RingTest, CorruptCommittedEntryIsRefusedWithAClearError) {
    make_ring(128 * 1024);
    ensure_open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(append(sample(static_cast<std::uint64_t>(i))));
    ring_.reset();
    {
        std::fstream f(paths_.ring, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(kHeaderBytes + 200));
        f.put('\x00');
    }
    auto w = RingWriter::open(paths_);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, errc::corrupt);
    EXPECT_NE(w.error().message.find("CRC"), std::string::npos) << w.error().message;
}

TEST_F(RingTest, TruncatedRingFileIsRefused) {
    make_ring(128 * 1024);
    ring_.reset();
    fs::resize_file(paths_.ring, 100 * 1024);
    auto w = RingWriter::open(paths_);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, errc::corrupt);
}

TEST_F(RingTest, SyncedCommitsWrapAndReadBackLikeUnsyncedOnes) {
    ASSERT_TRUE(RingWriter::create(paths_, {64 * 1024, 4096}, "150123", mac::genesis_head(keys_->key)));
    open_ring(RingOptions{true});
    ensure_open();
    RingReader reader = ring_->reader();
    std::uint64_t acked = 0;
    std::size_t checked = 0;
    for (std::uint64_t i = 0; i < 1500; ++i) {
        if (!append(sample(i))) {
            std::uint64_t last = acked;
            for (const auto& l : read_lines(reader, acked, &last)) ASSERT_EQ(l, lines_[checked++]);
            ASSERT_TRUE(ring_->ack_through(last));
            acked = last;
            ASSERT_TRUE(append(sample(i)));
        }
    }
    for (const auto& l : read_lines(reader, acked)) ASSERT_EQ(l, lines_[checked++]);
    EXPECT_EQ(checked, lines_.size());
    EXPECT_GT(ring_->state().end_pos, ring_->capacity());
}

TEST_F(RingTest, OnlyOneWriterAtATime) {
    make_ring(128 * 1024);
    auto second = RingWriter::open(paths_);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, errc::invalid_state);
}

TEST(EntryCodec, GarbageNeverParsesAsAnEntry) {
    std::string e;
    mac::AuditRecord r;
    r.seq = 5;
    r.event = "LUNA_SIGN";
    encode_record_entry(9, r, mac::Mac{}, e);
    for (std::size_t i = 0; i < e.size(); ++i) {
        std::string bad = e;
        bad[i] = static_cast<char>(bad[i] ^ 0x10);
        EXPECT_FALSE(parse_entry(mac::as_bytes(bad))) << "flip at " << i;
        EXPECT_FALSE(parse_entry(mac::as_bytes(std::string_view(e).substr(0, i)))) << "truncated at " << i;
    }
    auto ok = parse_entry(mac::as_bytes(e));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->seq, 5u);
    EXPECT_EQ(ok->entry_no, 9u);
}

}  // namespace
}  // namespace hsmaudit::hsmcore::ring
