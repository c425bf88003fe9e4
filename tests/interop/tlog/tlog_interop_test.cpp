// Interoperability of hsmaudit's transparency-log proofs with an independent implementation:
// Go's golang.org/x/mod/sumdb/note and sumdb/tlog (Debian's golang-golang-x-mod-dev, offline)
// verify our signed tree heads and our inclusion and consistency proofs for trees of
// 1 .. 1,000,000 leaves, and reject every one-bit change (checker.go -mutate); one end-to-end
// case proves records of a real trail (written by the chain writer) with `hsmaudit prove`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "agent/tools/proof.h"
#include "mac/merkle.h"
#include "mac/note.h"
#include "tests/integration/common/process.h"

namespace hsmaudit {
namespace {

namespace fs = std::filesystem;
using mac::tlog::Hash;

const std::string kHsmaudit = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";
const std::string kChecker = std::string(HSMAUDIT_SOURCE_DIR) + "/tests/interop/tlog/checker.go";
constexpr char kGoSources[] = "/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go";

std::uint64_t splitmix(std::uint64_t& s) {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

// A leaf shaped like a record line (sequence number first, MAC last), as check_proof expects.
std::string leaf_text(std::uint64_t index) {
    return std::to_string(index + 1) + " generated-leaf mac=" + std::string(64, static_cast<char>('0' + index % 10));
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class TlogInterop : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access("/usr/bin/go", X_OK) != 0 || !fs::exists(kGoSources))
            GTEST_SKIP() << "SKIPPED: Go or golang.org/x/mod is not installed (apt-get install golang-go "
                            "golang-golang-x-mod-dev; scripts/setup does): the Go interop checker cannot run";
        dir_ = fs::temp_directory_path() / ("hsmaudit-tlog-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "gocache");
        checker_ = (dir_ / "checker").string();
        // Offline, as a GOPATH program against Debian's sources; a private build cache.
        auto [code, out] = testing::run({"/usr/bin/env", "GO111MODULE=off", "GOPATH=/usr/share/gocode",
                                         "GOFLAGS=", "GOPROXY=off", "GOCACHE=" + (dir_ / "gocache").string(),
                                         "HOME=" + dir_.string(), "/usr/bin/go", "build", "-o", checker_, kChecker},
                                        (dir_ / "gobuild").string());
        ASSERT_EQ(code, 0) << out;
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    std::pair<int, std::string> run(const std::vector<std::string>& argv) {
        return testing::run(argv, (dir_ / ("run" + std::to_string(runs_++))).string());
    }

    fs::path dir_;
    std::string checker_;
    int runs_ = 0;
};

TEST_F(TlogInterop, GoVerifiesOurProofsForOneToAMillionLeavesAndRejectsOneBitChanges) {
    constexpr std::uint64_t kMax = 1000000;
    const std::vector<std::uint64_t> sizes = {
        1,     2,     3,     4,     5,      7,      8,      9,      15,     16,     17,     31,   32,
        33,    100,   127,   128,   129,    255,    256,    257,    1000,   1023,   1024,   1025, 4097,
        65535, 65536, 65537, 99999, 131071, 131072, 131073, 524287, 524288, 524289, 999999, kMax};
    auto key = mac::Ed25519PrivateKey::generate();
    ASSERT_TRUE(key.has_value());
    const std::string origin = "hsmaudit/0123456789abcdef0123456789abcdef";
    auto vkey = mac::note::verifier_key(origin, key->public_key());
    ASSERT_TRUE(vkey.has_value());
    auto verifier = mac::note::parse_verifier_key(*vkey);
    ASSERT_TRUE(verifier.has_value());
    std::ofstream(dir_ / "vkey") << *vkey << "\n";

    std::vector<Hash> leaves;
    leaves.reserve(kMax);
    for (std::uint64_t i = 0; i < kMax; ++i) leaves.push_back(mac::tlog::leaf_hash(leaf_text(i)));
    const mac::tlog::MemoryTree tree(std::move(leaves));
    auto signed_head = [&](std::uint64_t n, Hash& root) {
        root = *mac::tlog::tree_root(n, tree);
        return *mac::sign_checkpoint(mac::TreeHead{origin, n, root, {}}, *key);
    };
    std::uint64_t seed = 42;
    std::uint64_t prev = 0;
    std::vector<std::string> files = {checker_, "-mutate", (dir_ / "vkey").string()};
    for (const std::uint64_t n : sizes) {
        agent::tools::Proof head;
        head.origin = origin;
        head.size = n;
        head.checkpoint = signed_head(n, head.root);
        std::vector<agent::tools::Proof> proofs;
        for (const std::uint64_t index : {std::uint64_t{0}, n - 1, n / 2, splitmix(seed) % n}) {
            agent::tools::Proof p = head;
            p.index = index;
            p.leaf = leaf_text(index);
            p.hashes = *mac::tlog::inclusion_proof(index, n, tree);
            std::uint64_t depth = 0;
            while ((std::uint64_t{1} << depth) < n) ++depth;
            ASSERT_LE(p.hashes.size(), depth);
            proofs.push_back(std::move(p));
        }
        for (const std::uint64_t old : {std::uint64_t{1}, n / 2, n - 1, prev, 1 + splitmix(seed) % n}) {
            if (old == 0 || old > n) continue;
            agent::tools::Proof p = head;
            p.kind = agent::tools::ProofKind::consistency;
            p.old_size = old;
            p.old_checkpoint = signed_head(old, p.old_root);
            p.hashes = *mac::tlog::consistency_proof(old, n, tree);
            proofs.push_back(std::move(p));
        }
        prev = n;
        for (const auto& p : proofs) {
            const std::string text = agent::tools::render_proof(p);
            auto back = agent::tools::parse_proof(text);
            ASSERT_TRUE(back.has_value()) << back.error().message;
            ASSERT_EQ(*back, p);
            const auto check = agent::tools::check_proof(*back, *verifier, {});
            ASSERT_TRUE(check.valid) << n << ": " << check.message;
            files.push_back((dir_ / (std::to_string(files.size()) + ".proof")).string());
            std::ofstream(files.back()) << text;
        }
    }
    auto [code, out] = run(files);
    std::cout << out;  // the checker's summary: proofs checked, one-bit changes rejected
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find(" 0 failures"), std::string::npos) << out;
    EXPECT_EQ(out.find("; 0 one-bit changes"), std::string::npos) << out;  // the mutations ran

    // The checker is not a rubber stamp: a proof signed by another key, and a changed proof file.
    auto other = mac::Ed25519PrivateKey::generate();
    agent::tools::Proof p = *agent::tools::parse_proof(slurp(files.back()));
    p.checkpoint = *mac::sign_checkpoint(mac::TreeHead{origin, p.size, p.root, {}}, *other);
    std::ofstream(dir_ / "other.proof") << agent::tools::render_proof(p);
    auto [code2, out2] = run({checker_, (dir_ / "vkey").string(), (dir_ / "other.proof").string()});
    EXPECT_EQ(code2, 1) << out2;
}

TEST_F(TlogInterop, GoVerifiesProofsOfARealTrailMadeByHsmauditProve) {
    const std::string keys = (dir_ / "keys").string();
    const std::string trail = (dir_ / "trail").string();
    ASSERT_EQ(run({kHsmaudit, "secret", "init", "--dir", keys}).first, 0);
    auto [sc, so] =
        run({kHsmaudit, "sample", "--dir", keys, "--records", "3000", "--segment-records", "700", "--out", trail});
    ASSERT_EQ(sc, 0) << so;
    const std::string sign = keys + "/audit.sign";
    const std::string pub = keys + "/audit.pub";
    std::vector<std::string> proofs;
    for (const std::string seq : {"1", "777", "2999", "3000"}) {
        proofs.push_back((dir_ / ("inc" + seq)).string());
        auto [c, o] = run({kHsmaudit, "prove", "--key", keys + "/audit.key", "--seq", seq, "--sign-key", sign, "-o",
                           proofs.back(), trail});
        ASSERT_EQ(c, 0) << o;
    }
    proofs.push_back((dir_ / "cons").string());
    auto [cc, co] = run({kHsmaudit, "prove", "--key", keys + "/audit.key", "--old-size", "1234", "--sign-key", sign,
                         "-o", proofs.back(), trail});
    ASSERT_EQ(cc, 0) << co;
    for (const auto& f : proofs) {
        auto [vc, vo] = run({kHsmaudit, "verify-proof", "--pubkey", pub, f});
        EXPECT_EQ(vc, 0) << vo;
    }
    // The Go side gets the chain's verifier key as the note package prints it.
    auto audit_pub = mac::load_audit_pub(pub);
    ASSERT_TRUE(audit_pub.has_value());
    std::ofstream(dir_ / "vkey") << *mac::note::verifier_key(mac::tree_origin(audit_pub->chain), audit_pub->pubkey)
                                 << "\n";
    std::vector<std::string> argv = {checker_, "-mutate", (dir_ / "vkey").string()};
    argv.insert(argv.end(), proofs.begin(), proofs.end());
    auto [gc, go] = run(argv);
    EXPECT_EQ(gc, 0) << go;
    EXPECT_NE(go.find("checked 5 proofs"), std::string::npos) << go;
}

}  // namespace
}  // namespace hsmaudit
