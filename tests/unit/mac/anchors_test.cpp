// Anchors in the real world (mac/anchors.h, docs/FORMAT.md sections 4 and 7): files that travel
// through SIEMs (injected lines, several appliances' checkpoints interleaved), checkpoints that
// point into deleted ranges, and version 2 checkpoints that make deleting the oldest segments show.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "mac/anchors.h"
#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/verifier.h"

namespace hsmaudit::mac {
namespace {

namespace fs = std::filesystem;

/// A trail of three segments of four records (records 1-12) in its own directory, with a v1 and
/// a v2 checkpoint (retained = 1) after every record.
struct Trail {
    fs::path dir;
    NewChainKeys keys;
    std::vector<std::string> files;
    std::vector<Checkpoint> v1;
    std::vector<Checkpoint> v2;
};

Trail make_trail(const fs::path& dir, const std::string& serial, std::int64_t time) {
    Trail t{dir, *generate_chain_keys(), {}, {}, {}};
    fs::create_directories(dir);
    auto w = ChainWriter::create(t.keys.key.chain(), serial, 1, t.keys.signer, genesis_head(t.keys.key));
    EXPECT_TRUE(w.has_value());
    for (int seg = 0; seg < 3; ++seg) {
        std::string text = *w->open_segment(time);
        for (int i = 0; i < 4; ++i) {
            AuditRecord rec;
            rec.time_ms = ++time;
            rec.role = "CO";
            rec.event = "LUNA_SIGN";
            rec.event_class = "usage";
            EXPECT_TRUE(w->append(rec, text).has_value());
            const ChainHead& h = w->head();
            t.v1.push_back(
                *make_checkpoint(t.keys.key.chain(), serial, h.epoch, rec.seq, time, h.last_mac, t.keys.signer));
            t.v2.push_back(
                *make_checkpoint(t.keys.key.chain(), serial, h.epoch, rec.seq, 1, time, h.last_mac, t.keys.signer));
        }
        if (seg < 2) text += *w->seal(time);
        t.files.push_back((dir / segment_file_name(serial, static_cast<std::uint64_t>(seg))).string());
        std::ofstream(t.files.back()) << text;
    }
    return t;
}

class AnchorsTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("hsmaudit-anchors-" + std::to_string(::getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }

    /// Verifies `t` with the anchors of `files` (read as `hsmaudit verify --anchors` reads them).
    static VerifyReport verify(const Trail& t, const std::vector<std::string>& files, bool all_chains = false) {
        VerifyOptions opt;
        opt.key.emplace(t.keys.key);
        opt.all_chains = all_chains;
        auto st = load_anchor_files(files, opt);
        EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().message);
        auto r = verify_paths({t.dir.string()}, opt);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? *r : VerifyReport{};
    }
    static VerifyReport verify(const Trail& t, std::vector<Checkpoint> anchors) {
        VerifyOptions opt;
        opt.key.emplace(t.keys.key);
        opt.anchors = std::move(anchors);
        auto r = verify_paths({t.dir.string()}, opt);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? *r : VerifyReport{};
    }
    static std::uint64_t count(const VerifyReport& r, FaultKind k) {
        return r.fault_counts[static_cast<std::size_t>(k)];
    }
    std::string write(const std::string& name, const std::string& text) {
        std::string path = (root_ / name).string();
        std::ofstream(path) << text;
        return path;
    }

    fs::path root_;
    std::int64_t time_ = 1'795'500'000'000;
};

TEST_F(AnchorsTest, AnInjectedLineIsSkippedAndCountedNotAUsageError) {
    const Trail t = make_trail(root_ / "a", "150123", time_);
    const std::string file = write("anchors.txt", t.v1[3].line() + "\n" + "login failed for user @checkpoint hello\n" +
                                                      "@checkpoint v=1 chain=zz sig=" + std::string(128, '0') + "\n" +
                                                      "<13>1 host app - - - " + t.v1[11].line() + " trailing\n\n");
    const auto r = verify(t, {file});
    EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults[0].message);
    EXPECT_EQ(r.anchors_checked, 2u);
    EXPECT_EQ(r.anchors_skipped, 2u);  // the two lines that hold no checkpoint; the empty line is not counted
    // One line holding an injected tag before a real checkpoint: the real one is found.
    const std::string mixed = write("mixed.txt", "x @checkpoint hello " + t.v1[5].line() + "\n");
    const auto m = verify(t, {mixed});
    EXPECT_TRUE(m.verified());
    EXPECT_EQ(m.anchors_checked, 1u);
    // A file without a single checkpoint is a usage error (the wrong file), as before.
    VerifyOptions opt;
    EXPECT_FALSE(load_anchor_files({write("none.txt", "login failed for user @checkpoint hello\n")}, opt).has_value());
}

TEST_F(AnchorsTest, AFileOfSeveralAppliancesVerifiesEachTrail) {
    const Trail a = make_trail(root_ / "a", "150123", time_);
    const Trail b = make_trail(root_ / "b", "150999", time_ + 7);
    std::string text;
    for (std::size_t i = 0; i < a.v1.size(); ++i)
        text += "{\"host\":\"a\",\"event\":\"" + a.v2[i].line() + "\"}\n" + b.v1[i].line() + "\n";
    const std::string file = write("fleet.txt", text);
    for (const Trail* t : {&a, &b}) {
        const auto r = verify(*t, {file});
        EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults[0].message);
        EXPECT_EQ(r.anchors_checked, 12u);
        EXPECT_EQ(r.anchors_other_chains, 12u);
        EXPECT_TRUE(r.anchor_chains.empty());
    }
    const auto listed = verify(a, {file}, true);
    ASSERT_EQ(listed.anchor_chains.size(), 1u);
    EXPECT_EQ(listed.anchor_chains[0].chain_hex, hex_encode(b.keys.key.chain()));
    EXPECT_EQ(listed.anchor_chains[0].serial, "150999");
    EXPECT_EQ(listed.anchor_chains[0].checkpoints, 12u);
    EXPECT_EQ(listed.anchor_chains[0].newest_seq, 12u);
    // Their serials are not authenticated: listed escaped, never as raw control bytes.
    auto c = make_checkpoint(b.keys.key.chain(), "x\x1b[2J y", 0, 13, time_ + 99, b.v1[11].mac, b.keys.signer);
    ASSERT_TRUE(c.has_value());
    const auto esc = verify(a, {write("esc.txt", text + c->line() + "\n")}, true);
    ASSERT_EQ(esc.anchor_chains.size(), 1u);
    EXPECT_EQ(esc.anchor_chains[0].serial, "x\\x1b[2J\\sy");
    // A checkpoint naming chain a whose signature fails is a fault for a only.
    Checkpoint forged = a.v1[4];
    forged.seq = 40;
    const std::string bad = write("bad.txt", text + forged.line() + "\n");
    EXPECT_EQ(count(verify(a, {bad}), FaultKind::anchor_bad_signature), 1u);
    EXPECT_TRUE(verify(b, {bad}).verified());
}

TEST_F(AnchorsTest, ACheckpointIntoADeletedRangeIsAFault) {
    const Trail t = make_trail(root_ / "a", "150123", time_);
    fs::remove(t.files[1]);  // records 5-8
    const auto r = verify(t, {t.v1[5]});
    EXPECT_EQ(count(r, FaultKind::anchor_record_missing), 1u);
    EXPECT_EQ(count(r, FaultKind::trail_truncated), 0u);
    // Records deleted inside a segment (a sequence gap) too.
    const Trail u = make_trail(root_ / "b", "150123", time_);
    std::ifstream in(u.files[2]);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    in.close();
    const auto at = text.find("\n10 ");
    text.erase(at + 1, text.find('\n', at + 1) - at);
    std::ofstream(u.files[2], std::ios::trunc) << text;
    const auto g = verify(u, {u.v1[9], u.v1[11]});
    EXPECT_EQ(count(g, FaultKind::anchor_record_missing), 1u);
    EXPECT_EQ(g.anchors_checked, 1u);
}

TEST_F(AnchorsTest, DeletedOldestSegmentsAreDetectedWithVersion2Checkpoints) {
    const Trail t = make_trail(root_ / "a", "150123", time_);
    fs::remove(t.files[0]);  // records 1-4: the trail now starts at 5
    // Version 1 checkpoints cannot tell this from retention: the ones before the trail are unchecked.
    const auto v1 = verify(t, t.v1);
    EXPECT_TRUE(v1.verified());
    EXPECT_EQ(v1.anchors_unchecked, 4u);
    // Version 2 checkpoints state the store held records from 1.
    const auto v2 = verify(t, t.v2);
    EXPECT_FALSE(v2.verified());
    EXPECT_EQ(count(v2, FaultKind::trail_head_missing), 1u);
    EXPECT_EQ(v2.retained_seq, 1u);
    // Only the newest checkpoint's retained counts: after retention deleted records 1-4 legitimately
    // (a later checkpoint says retained=5), the same trail verifies.
    const Trail& same = t;
    auto later =
        *make_checkpoint(same.keys.key.chain(), "150123", 2, 12, 5, time_ + 100, same.v1[11].mac, same.keys.signer);
    std::vector<Checkpoint> anchors = same.v2;
    anchors.push_back(later);
    const auto ok = verify(t, anchors);
    EXPECT_TRUE(ok.verified()) << (ok.faults.empty() ? "" : ok.faults[0].message);
    EXPECT_EQ(ok.retained_seq, 5u);
}

TEST_F(AnchorsTest, Version1And2LinesParseAndRetainedIsBounded) {
    const Trail t = make_trail(root_ / "a", "150123", time_);
    const Checkpoint c2 =
        *make_checkpoint(t.keys.key.chain(), "150123", 1, 8, 3, time_ + 8, t.v1[7].mac, t.keys.signer);
    EXPECT_NE(c2.line().find(" seq=8 retained=3 time="), std::string::npos) << c2.line();
    auto p2 = parse_checkpoint_line(c2.line());
    ASSERT_TRUE(p2.has_value()) << p2.error().message;
    EXPECT_EQ(p2->version, 2u);
    EXPECT_EQ(p2->retained, 3u);
    EXPECT_TRUE(p2->verify(t.keys.key.pubkey()));
    Checkpoint forged = *p2;
    forged.retained = 9;  // retained is signed
    EXPECT_FALSE(forged.verify(t.keys.key.pubkey()));
    auto p1 = parse_checkpoint_line(t.v1[7].line());
    ASSERT_TRUE(p1.has_value());
    EXPECT_EQ(p1->version, 1u);
    EXPECT_EQ(p1->line(), t.v1[7].line());
    // retained must be 1 .. seq + 1.
    const Mac mac = c2.mac;
    EXPECT_FALSE(make_checkpoint(t.keys.key.chain(), "s", 0, 8, 0, time_, mac, t.keys.signer).has_value());
    EXPECT_FALSE(make_checkpoint(t.keys.key.chain(), "s", 0, 8, 10, time_, mac, t.keys.signer).has_value());
    EXPECT_TRUE(make_checkpoint(t.keys.key.chain(), "s", 0, 8, 9, time_, mac, t.keys.signer).has_value());
    std::string bad = c2.line();
    bad.replace(bad.find("retained=3"), 10, "retained=0");
    EXPECT_FALSE(parse_checkpoint_line(bad).has_value());
    EXPECT_FALSE(parse_checkpoint_line("@checkpoint v=3" + c2.line().substr(15)).has_value());
    // A version 1 file still verifies.
    const auto r = verify(t, {write("v1.txt", t.v1[2].line() + "\n" + t.v1[11].line() + "\n")});
    EXPECT_TRUE(r.verified());
    EXPECT_EQ(r.anchors_checked, 2u);
    EXPECT_EQ(r.retained_seq, 0u);
}

}  // namespace
}  // namespace hsmaudit::mac
