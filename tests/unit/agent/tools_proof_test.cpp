// hsmaudit prove / verify-proof (agent/tools/proof.h) on real sample trails: proofs verify with the
// public key only, every changed byte of a proof file is refused, and prove refuses trails that do
// not verify or do not match the tree head it is asked to prove against.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "agent/engine/sample.h"
#include "agent/tools/commands.h"
#include "agent/tools/proof.h"
#include "base/files.h"
#include "mac/keys.h"
#include "mac/note.h"
#include "tools_test_fixture.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ProofTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-proof-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        auto keys = mac::generate_chain_keys();
        ASSERT_TRUE(keys.has_value());
        ASSERT_TRUE(mac::write_key_dir((dir_ / "keys").string(), *keys).has_value());
        SampleOptions opt;
        opt.records = 600;
        opt.segment_records = 150;
        ASSERT_TRUE(write_sample_trail(keys->key, keys->signer, (dir_ / "trail").string(), opt).has_value());
        verifier_.emplace(*mac::tree_verifier(keys->key.pub()));
    }
    void TearDown() override { fs::remove_all(dir_); }

    ProveArgs args(const std::string& out) {
        ProveArgs a;
        a.key_file = (dir_ / "keys/audit.key").string();
        a.sign_key = (dir_ / "keys/audit.sign").string();
        a.out = (dir_ / out).string();
        a.paths = {(dir_ / "trail").string()};
        return a;
    }
    int verify(const std::string& file, std::vector<std::string> checkpoints = {}) {
        VerifyProofArgs v;
        v.pub_file = (dir_ / "keys/audit.pub").string();
        v.proof_file = (dir_ / file).string();
        v.checkpoints = std::move(checkpoints);
        v.quiet = true;
        return run_verify_proof(v);
    }
    // The signed note of the tree of `size` records (from a proof prove signed).
    std::string note_of_size(std::uint64_t size) {
        ProveArgs a = args("head" + std::to_string(size));
        a.seq = 1;
        a.size = size;
        EXPECT_EQ(run_prove(a), kExitOk);
        auto p = parse_proof(slurp(a.out));
        EXPECT_TRUE(p.has_value());
        const fs::path f = dir_ / ("note" + std::to_string(size));
        std::ofstream(f) << (p ? p->checkpoint : "");
        return f.string();
    }

    fs::path dir_;
    std::optional<mac::note::NoteVerifier> verifier_;
};

TEST_F(ProofTest, InclusionProofsVerifyAndEveryChangedByteIsRefused) {
    for (std::uint64_t seq : {1, 2, 150, 151, 377, 599, 600}) {
        ProveArgs a = args("p" + std::to_string(seq));
        a.seq = seq;
        ASSERT_EQ(run_prove(a), kExitOk) << seq;
        ASSERT_EQ(verify("p" + std::to_string(seq)), kExitOk) << seq;
        auto p = parse_proof(slurp(a.out));
        ASSERT_TRUE(p.has_value());
        EXPECT_EQ(p->index, seq - 1);
        EXPECT_EQ(p->size, 600U);
        EXPECT_LE(p->hashes.size(), 10U);  // ceil(log2 600)
        EXPECT_EQ(p->leaf.substr(0, std::to_string(seq).size() + 1), std::to_string(seq) + " ");
    }
    const std::string good = slurp(dir_ / "p377");
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ (1U << (i % 8)));
        auto p = parse_proof(bad);
        if (!p) continue;  // malformed: verify-proof says INVALID (exit 1)
        EXPECT_FALSE(check_proof(*p, *verifier_, {}).valid) << "byte " << i << " of\n" << bad;
    }
    std::ofstream(dir_ / "truncated") << good.substr(0, good.size() - 4);
    EXPECT_EQ(verify("truncated"), kExitFault);
    EXPECT_EQ(verify("missing"), kExitUsage);
}

TEST_F(ProofTest, ConsistencyProofsBetweenCheckpoints) {
    const std::string old_note = note_of_size(200);
    const std::string new_note = note_of_size(555);
    ProveArgs a = args("cons");
    a.sign_key.clear();
    a.old_checkpoint = old_note;
    a.checkpoint = new_note;
    ASSERT_EQ(run_prove(a), kExitOk);
    EXPECT_EQ(verify("cons"), kExitOk);
    auto p = parse_proof(slurp(a.out));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->old_size, 200U);
    EXPECT_EQ(p->size, 555U);
    // Unsigned heads: valid only with signed notes given for them.
    a = args("cons_unsigned");
    a.sign_key.clear();
    a.old_size = 200;
    a.size = 555;
    ASSERT_EQ(run_prove(a), kExitOk);
    EXPECT_EQ(verify("cons_unsigned"), kExitFault);
    EXPECT_EQ(verify("cons_unsigned", {new_note}), kExitFault);
    EXPECT_EQ(verify("cons_unsigned", {old_note, new_note}), kExitOk);
}

// The agent's checkpoints file holds tree heads as `@treehead <base64 note> time=...` lines among
// chain-head checkpoints (FORMAT.md 10.5), and a SIEM export wraps them in other records: prove
// and verify-proof take such a file as it is (prove: the newest head in it).
TEST_F(ProofTest, TreeHeadLinesOfTheCheckpointsFileAreCheckpoints) {
    const std::string n200 = slurp(note_of_size(200));
    const std::string n555 = slurp(note_of_size(555));
    const std::string n300 = slurp(note_of_size(300));
    auto line = [](const std::string& note) {
        return "@treehead " + mac::base64_encode(mac::as_bytes(note)) + " time=2026-12-04T05:00:00.000Z";
    };
    std::ofstream(dir_ / "checkpoints.log") << "@checkpoint v=1 chain=00 (not a tree head)\n"
                                            << line(n200) << "\n"
                                            << "{\"event\": \"" << line(n555) << "\"}\n"
                                            << "@treehead not-base64! time=x\n"
                                            << line(n300) << "\n";
    ProveArgs a = args("from_log");
    a.sign_key.clear();
    a.seq = 42;
    a.checkpoint = (dir_ / "checkpoints.log").string();
    ASSERT_EQ(run_prove(a), kExitOk);
    auto p = parse_proof(slurp(a.out));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->size, 555U);  // the newest head in the file
    EXPECT_EQ(verify("from_log"), kExitOk);

    // An unsigned head of size 300, authenticated by the checkpoints file given to verify-proof.
    a = args("unsigned300");
    a.sign_key.clear();
    a.seq = 7;
    a.size = 300;
    ASSERT_EQ(run_prove(a), kExitOk);
    EXPECT_EQ(verify("unsigned300"), kExitFault);
    EXPECT_EQ(verify("unsigned300", {(dir_ / "checkpoints.log").string()}), kExitOk);

    std::ofstream(dir_ / "no_heads.log") << "@treehead AAAA time=x\nnothing\n";
    a = args("none");
    a.sign_key.clear();
    a.seq = 1;
    a.checkpoint = (dir_ / "no_heads.log").string();
    EXPECT_EQ(run_prove(a), kExitFault);
}

TEST_F(ProofTest, ProveRefusesTrailsThatDoNotMatch) {
    // A checkpoint of the right size whose root is not the trail's: the trail was rewritten.
    auto signer = mac::load_signing_key((dir_ / "keys/audit.sign").string());
    ASSERT_TRUE(signer.has_value());
    mac::TreeHead forged{verifier_->name, 300, mac::tlog::leaf_hash("not the trail"), {}};
    std::ofstream(dir_ / "forged") << *mac::sign_checkpoint(forged, *signer);
    ProveArgs a = args("x");
    a.seq = 10;
    a.checkpoint = (dir_ / "forged").string();
    EXPECT_EQ(run_prove(a), kExitFault);
    // A checkpoint beyond the trail's end: truncated.
    forged.size = 601;
    std::ofstream(dir_ / "beyond") << *mac::sign_checkpoint(forged, *signer);
    a.checkpoint = (dir_ / "beyond").string();
    EXPECT_EQ(run_prove(a), kExitFault);
    // A checkpoint signed by another key.
    auto other = mac::Ed25519PrivateKey::generate();
    forged.size = 300;
    std::ofstream(dir_ / "other") << *mac::sign_checkpoint(forged, *other);
    a.checkpoint = (dir_ / "other").string();
    EXPECT_EQ(run_prove(a), kExitFault);
    // Event ids: the right one proves; another boot counter does not.
    a = args("byid");
    a.event_id = "150123-1-42";
    ASSERT_EQ(run_prove(a), kExitOk);
    EXPECT_EQ(verify("byid"), kExitOk);
    a.event_id = "150123-9-42";
    EXPECT_EQ(run_prove(a), kExitFault);
    a.event_id = "42";
    EXPECT_EQ(run_prove(a), kExitUsage);
    // A trail with one record changed does not verify: no proof from it.
    fs::path seg;
    for (const auto& e : fs::directory_iterator(dir_ / "trail")) seg = e.path() > seg ? e.path() : seg;
    std::string text = slurp(seg);
    const auto pos = text.find("event=");
    ASSERT_NE(pos, std::string::npos);
    text[pos + 6] = text[pos + 6] == 'X' ? 'Y' : 'X';
    std::ofstream(seg, std::ios::binary | std::ios::trunc) << text;
    a = args("tampered");
    a.seq = 1;
    EXPECT_EQ(run_prove(a), kExitFault);
    EXPECT_FALSE(fs::exists(dir_ / "tampered"));
}

// The agent's own store, encrypted at rest: prove reads it as verify does, decrypting with --key.
TEST(ProofStoreTest, ProvesFromTheAgentsEncryptedStore) {
    testing::StoreFixture f(true);
    f.produce(50);
    f.rotate();
    f.produce(30);
    f.close();
    const std::string key_file = f.state_dir() + "/audit.key";
    ASSERT_TRUE(base::write_file_atomic(key_file, f.key().serialize(), 0600, false).has_value());
    ProveArgs a;
    a.key_file = key_file;
    a.seq = 42;
    a.out = f.state_dir() + "/p";
    a.paths = {f.audit_dir()};
    ASSERT_EQ(run_prove(a), kExitOk);
    auto p = parse_proof(testing::StoreFixture::slurp(a.out));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->size, 80U);
    EXPECT_EQ(p->leaf.substr(0, 3), "42 ");
    EXPECT_TRUE(mac::tlog::verify_inclusion(p->index, p->size, mac::tlog::leaf_hash(p->leaf), p->hashes, p->root));
    EXPECT_TRUE(p->checkpoint.empty());  // no signing key given: the head is unsigned
    auto v = mac::tree_verifier(f.key().pub());
    ASSERT_TRUE(v.has_value());
    EXPECT_FALSE(check_proof(*p, *v, {}).valid);
}

}  // namespace
}  // namespace hsmaudit::agent::tools
