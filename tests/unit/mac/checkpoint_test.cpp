// Chain-head checkpoints: signed, parsed, and used by the verifier (--anchors) to prove a trail
// was not truncated, rolled back or rewritten.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/verifier.h"

namespace hsmaudit::mac {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-cp-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        keys_.emplace(*generate_chain_keys());
        auto w = ChainWriter::create(keys_->key.chain(), "150123", 1, keys_->signer, genesis_head(keys_->key));
        ASSERT_TRUE(w.has_value());
        // Three segments of 4 records; a checkpoint after every record.
        for (int seg = 0; seg < 3; ++seg) {
            std::string text = *w->open_segment(time_);
            for (int i = 0; i < 4; ++i) {
                AuditRecord rec;
                rec.time_ms = ++time_;
                rec.role = "CO";
                rec.event = "LUNA_SIGN";
                rec.event_class = "usage";
                ASSERT_TRUE(w->append(rec, text).has_value());
                checkpoints_.push_back(*make_checkpoint(keys_->key.chain(), "150123", w->head().epoch, rec.seq, time_,
                                                        w->head().last_mac, keys_->signer));
            }
            if (seg < 2) text += *w->seal(time_);
            files_.push_back((dir_ / segment_file_name("150123", static_cast<std::uint64_t>(seg))).string());
            std::ofstream(files_.back()) << text;
        }
    }
    void TearDown() override { fs::remove_all(dir_); }

    VerifyReport verify(std::vector<Checkpoint> anchors) {
        VerifyOptions opt;
        opt.key.emplace(keys_->key);
        opt.anchors = std::move(anchors);
        auto r = verify_paths({dir_.string()}, opt);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? *r : VerifyReport{};
    }
    static std::size_t count(const VerifyReport& r, FaultKind k) { return r.fault_counts[static_cast<std::size_t>(k)]; }

    fs::path dir_;
    std::optional<NewChainKeys> keys_;
    std::vector<Checkpoint> checkpoints_;
    std::vector<std::string> files_;
    std::int64_t time_ = 1'795'500'000'000;
};

TEST_F(CheckpointTest, LinesRoundTripAndSignaturesBindEveryField) {
    const Checkpoint& c = checkpoints_[5];
    auto parsed = parse_checkpoint_line(c.line());
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->line(), c.line());
    EXPECT_TRUE(parsed->verify(keys_->key.pubkey()));
    Checkpoint forged = c;
    forged.seq += 1;
    EXPECT_FALSE(forged.verify(keys_->key.pubkey()));
    auto other = generate_chain_keys();
    EXPECT_FALSE(c.verify(other->key.pubkey()));
    EXPECT_FALSE(parse_checkpoint_line(c.line() + " extra").has_value());
    EXPECT_FALSE(parse_checkpoint_line("@seal v=1").has_value());
}

TEST_F(CheckpointTest, AnIntactTrailMatchesEveryCheckpoint) {
    const auto r = verify(checkpoints_);
    EXPECT_TRUE(r.verified());
    EXPECT_EQ(r.anchors_checked, 12u);
}

TEST_F(CheckpointTest, ATrailCutAfterTheNewestCheckpointIsReportedTruncated) {
    // Without anchors, dropping the newest segment leaves a trail that looks whole.
    fs::remove(files_[2]);
    EXPECT_TRUE(verify({}).verified());
    // The checkpoints kept off the box prove records 9-12 existed.
    const auto r = verify(checkpoints_);
    EXPECT_FALSE(r.verified());
    EXPECT_EQ(count(r, FaultKind::trail_truncated), 4u);
    EXPECT_EQ(r.anchors_checked, 8u);
}

TEST_F(CheckpointTest, ARewrittenRecordAtACheckpointIsAMismatch) {
    // The attacker rewrites record 10 and recomputes nothing: the MAC fault and the anchor both show it.
    std::ifstream in(files_[2]);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    in.close();
    const auto at = text.find("\n10 ");
    const auto mac_at = text.find(" mac=", at) + 5;
    text[mac_at] = text[mac_at] == 'a' ? 'b' : 'a';
    std::ofstream(files_[2], std::ios::trunc) << text;
    const auto r = verify({checkpoints_[9]});
    EXPECT_EQ(count(r, FaultKind::anchor_mismatch), 1u);
}

TEST_F(CheckpointTest, ForeignOrForgedCheckpointsProveNothing) {
    auto other = generate_chain_keys();
    Checkpoint foreign =
        *make_checkpoint(other->key.chain(), "150123", 0, 3, time_, checkpoints_[2].mac, other->signer);
    Checkpoint forged = checkpoints_[3];
    forged.seq = 400;  // claims more records than there were; the signature no longer matches
    const auto r = verify({foreign, forged});
    // Another chain's checkpoint is ignored and counted; a forged one of this chain is a fault.
    EXPECT_EQ(count(r, FaultKind::anchor_bad_signature), 1u);
    EXPECT_EQ(r.anchors_other_chains, 1u);
    EXPECT_EQ(count(r, FaultKind::trail_truncated), 0u);
}

TEST_F(CheckpointTest, CheckpointsAreReadFromFilesAndFromInsideOtherRecords) {
    const std::string path = (dir_ / "anchors.txt").string();
    std::ofstream(path) << checkpoints_[0].line() << "\n"
                        << "{\"sourcetype\":\"hsmaudit\",\"event\":\"" << checkpoints_[1].line() << "\"}\n"
                        << "unrelated line\n";
    auto cps = read_checkpoints(path);
    ASSERT_TRUE(cps.has_value()) << cps.error().message;
    ASSERT_EQ(cps->checkpoints.size(), 2u);
    EXPECT_EQ(cps->checkpoints[1].line(), checkpoints_[1].line());
    EXPECT_EQ(cps->skipped, 1u);
    // A malformed checkpoint line is skipped and counted like any other line, not an error.
    std::ofstream(path, std::ios::app) << "@checkpoint v=1 chain=zz\n";
    auto more = read_checkpoints(path);
    ASSERT_TRUE(more.has_value());
    EXPECT_EQ(more->checkpoints.size(), 2u);
    EXPECT_EQ(more->skipped, 2u);
    EXPECT_FALSE(read_checkpoints((dir_ / "missing.txt").string()).has_value());
}

}  // namespace
}  // namespace hsmaudit::mac
