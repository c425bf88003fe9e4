// RFC 6962 trees: hashes against known answers, the compact frontier and the proofs against a
// direct implementation of the RFC's recursive definitions, and every 1-bit change rejected.
#include "mac/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mac/crypto.h"

namespace hsmaudit::mac::tlog {
namespace {

std::string hex(const Hash& h) {
    return hex_encode(ByteView(h.data(), h.size()));
}

std::vector<Hash> leaves(std::uint64_t n) {
    std::vector<Hash> out;
    for (std::uint64_t i = 0; i < n; ++i) out.push_back(leaf_hash("record " + std::to_string(i)));
    return out;
}

// MTH(D[lo:hi]) straight from RFC 6962 2.1.
Hash reference_root(const std::vector<Hash>& l, std::size_t lo, std::size_t hi) {
    if (hi == lo) return empty_root();
    if (hi - lo == 1) return l[lo];
    std::size_t k = 1;
    while (k * 2 < hi - lo) k *= 2;
    return node_hash(reference_root(l, lo, lo + k), reference_root(l, lo + k, hi));
}

TEST(Merkle, KnownAnswers) {
    EXPECT_EQ(hex(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // RFC 6962 leaf hash of the empty leaf: SHA-256(0x00).
    EXPECT_EQ(hex(leaf_hash("")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    EXPECT_EQ(split_point(2), 1U);
    EXPECT_EQ(split_point(3), 2U);
    EXPECT_EQ(split_point(4), 2U);
    EXPECT_EQ(split_point(5), 4U);
    // Certificate Transparency's test vectors (ct merkle_tree_test): leaves 0x00 ... and their roots.
    const std::vector<std::string> ct_leaves = {
        "",
        std::string("\x00", 1),
        std::string("\x10", 1),
        std::string("\x20\x21", 2),
        std::string("\x30\x31", 2),
        std::string("\x40\x41\x42\x43", 4),
        std::string("\x50\x51\x52\x53\x54\x55\x56\x57", 8),
        std::string("\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16)};
    CompactTree t;
    for (const auto& leaf : ct_leaves) t.append(leaf_hash(leaf));
    EXPECT_EQ(hex(t.root()), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
}

TEST(Merkle, CompactTreeMatchesReference) {
    const auto l = leaves(70);
    CompactTree t;
    EXPECT_EQ(t.root(), empty_root());
    for (std::size_t n = 1; n <= l.size(); ++n) {
        t.append(l[n - 1]);
        ASSERT_EQ(t.size(), n);
        ASSERT_EQ(t.root(), reference_root(l, 0, n)) << n;
        VectorLeafHashes src(l);
        ASSERT_EQ(*tree_root(n, src), t.root());
        auto back = CompactTree::decode(t.encode());
        ASSERT_TRUE(back.has_value()) << back.error().message;
        ASSERT_EQ(*back, t);
    }
}

TEST(Merkle, CompactTreeDecodeIsStrict) {
    CompactTree t;
    for (const auto& h : leaves(5)) t.append(h);
    const std::string good = t.encode();
    EXPECT_TRUE(CompactTree::decode(good).has_value());
    EXPECT_TRUE(CompactTree::decode("0").has_value());
    for (const std::string& bad :
         {std::string(""), std::string("05") + good.substr(1), good + " ", good.substr(0, good.size() - 1),
          std::string("7") + good.substr(1), std::string("-1"), std::string("0 ") + std::string(64, 'a'),
          good.substr(0, good.size() - 64) + std::string(64, 'A')}) {
        EXPECT_FALSE(CompactTree::decode(bad).has_value()) << bad;
    }
}

TEST(Merkle, InclusionProofsVerifyAndNothingElseDoes) {
    const auto l = leaves(40);
    const VectorLeafHashes vec(l);
    const MemoryTree mem(l);
    for (std::uint64_t n = 1; n <= l.size(); ++n) {
        const Hash root = reference_root(l, 0, n);
        for (std::uint64_t i = 0; i < n; ++i) {
            auto p = inclusion_proof(i, n, vec);
            ASSERT_TRUE(p.has_value());
            ASSERT_EQ(*p, *inclusion_proof(i, n, mem));
            ASSERT_TRUE(verify_inclusion(i, n, l[i], *p, root)) << i << "/" << n;
            std::size_t depth = 0;
            while ((std::uint64_t{1} << depth) < n) ++depth;
            ASSERT_LE(p->size(), depth);
            EXPECT_FALSE(verify_inclusion(i, n, l[(i + 1) % l.size()], *p, root));
            EXPECT_FALSE(verify_inclusion(i + 1, n, l[i], *p, root));
            // (A proof may also fit another size with the same path shape: the signed tree head binds the size.)
            for (std::size_t h = 0; h < p->size(); ++h) {
                auto q = *p;
                q[h][h % 32] ^= 1U;
                EXPECT_FALSE(verify_inclusion(i, n, l[i], q, root));
            }
            auto longer = *p;
            longer.push_back(root);
            EXPECT_FALSE(verify_inclusion(i, n, l[i], longer, root));
            if (!p->empty()) {
                auto shorter = *p;
                shorter.pop_back();
                EXPECT_FALSE(verify_inclusion(i, n, l[i], shorter, root));
            }
        }
    }
    EXPECT_FALSE(inclusion_proof(3, 3, vec).has_value());
    EXPECT_FALSE(inclusion_proof(0, 41, vec).has_value());
}

TEST(Merkle, ConsistencyProofsVerifyAndNothingElseDoes) {
    const auto l = leaves(40);
    const VectorLeafHashes vec(l);
    const MemoryTree mem(l);
    for (std::uint64_t n = 1; n <= l.size(); ++n) {
        const Hash new_root = reference_root(l, 0, n);
        for (std::uint64_t m = 1; m <= n; ++m) {
            const Hash old_root = reference_root(l, 0, m);
            auto p = consistency_proof(m, n, vec);
            ASSERT_TRUE(p.has_value());
            ASSERT_EQ(*p, *consistency_proof(m, n, mem));
            ASSERT_TRUE(verify_consistency(m, n, old_root, new_root, *p)) << m << "->" << n;
            Hash bad_old = old_root;
            bad_old[0] ^= 0x80U;
            EXPECT_FALSE(verify_consistency(m, n, bad_old, new_root, *p));
            Hash bad_new = new_root;
            bad_new[31] ^= 1U;
            EXPECT_FALSE(verify_consistency(m, n, old_root, bad_new, *p));
            for (std::size_t h = 0; h < p->size(); ++h) {
                auto q = *p;
                q[h][7] ^= 4U;
                EXPECT_FALSE(verify_consistency(m, n, old_root, new_root, q)) << m << "->" << n << " #" << h;
            }
            if (m < n) {
                auto longer = *p;
                longer.push_back(new_root);
                EXPECT_FALSE(verify_consistency(m, n, old_root, new_root, longer));
            }
        }
    }
    EXPECT_FALSE(verify_consistency(0, 5, empty_root(), reference_root(l, 0, 5), {}));
    EXPECT_FALSE(consistency_proof(0, 5, vec).has_value());
    EXPECT_FALSE(consistency_proof(6, 5, vec).has_value());
}

}  // namespace
}  // namespace hsmaudit::mac::tlog
