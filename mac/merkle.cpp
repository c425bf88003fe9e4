#include "mac/merkle.h"

#include <bit>
#include <charconv>
#include <cstring>
#include <optional>

#include "mac/crypto.h"
#include "mac/errc.h"

namespace hsmaudit::mac::tlog {
namespace {

// One SHA-256 context per thread: creating one fetches the algorithm (slow), hashing is the hot path.
// If OpenSSL cannot provide SHA-256 at all every hash is all zeros and no proof verifies (fails closed).
Hash sha256(ByteView a, ByteView b) {
    thread_local std::optional<Sha256> ctx;
    if (!ctx) {
        auto c = Sha256::create();
        if (!c) return Hash{};
        ctx.emplace(std::move(c).value());
    }
    return ctx->compute(a, b);
}

bool is_pow2(std::uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0;
}

Error bad_argument(std::string message) {
    return make_error(errc::invalid_argument, std::move(message));
}

// MTH(D[lo:hi]) for a range the RFC 6962 recursion produces (lo is a multiple of the largest
// power of two not above hi - lo): perfect subtrees come from the source, others are split.
Result<Hash> subtree(std::uint64_t lo, std::uint64_t hi, const LeafHashes& src) {
    const std::uint64_t n = hi - lo;
    if (n == 0) return empty_root();  // never asked for by the recursion; keeps the arithmetic total
    if (is_pow2(n) && lo % n == 0) return src.perfect(lo, static_cast<unsigned>(std::countr_zero(n)));
    const std::uint64_t k = split_point(n);
    auto left = subtree(lo, lo + k, src);
    if (!left) return left;
    auto right = subtree(lo + k, hi, src);
    if (!right) return right;
    return node_hash(*left, *right);
}

// PATH(m, D[lo:hi]) of RFC 6962 2.1.1, appended bottom-up.
Status path(std::uint64_t m, std::uint64_t lo, std::uint64_t hi, const LeafHashes& src, std::vector<Hash>& out) {
    if (hi - lo == 1) return {};
    const std::uint64_t k = split_point(hi - lo);
    if (m < lo + k) {
        HSMAUDIT_TRY(path(m, lo, lo + k, src, out));
        auto h = subtree(lo + k, hi, src);
        if (!h) return std::move(h).error();
        out.push_back(*h);
    } else {
        HSMAUDIT_TRY(path(m, lo + k, hi, src, out));
        auto h = subtree(lo, lo + k, src);
        if (!h) return std::move(h).error();
        out.push_back(*h);
    }
    return {};
}

// SUBPROOF(m, D[lo:hi], b) of RFC 6962 2.1.2.
Status subproof(std::uint64_t m, std::uint64_t lo, std::uint64_t hi, bool whole, const LeafHashes& src,
                std::vector<Hash>& out) {
    if (m == hi) {
        if (whole) return {};
        auto h = subtree(lo, hi, src);
        if (!h) return std::move(h).error();
        out.push_back(*h);
        return {};
    }
    const std::uint64_t k = split_point(hi - lo);
    if (m <= lo + k) {
        HSMAUDIT_TRY(subproof(m, lo, lo + k, whole, src, out));
        auto h = subtree(lo + k, hi, src);
        if (!h) return std::move(h).error();
        out.push_back(*h);
    } else {
        HSMAUDIT_TRY(subproof(m, lo + k, hi, false, src, out));
        auto h = subtree(lo, lo + k, src);
        if (!h) return std::move(h).error();
        out.push_back(*h);
    }
    return {};
}

}  // namespace

Hash leaf_hash(std::string_view leaf) {
    static constexpr std::uint8_t kPrefix[1] = {0x00};
    return sha256(ByteView(kPrefix, 1), as_bytes(leaf));
}

Hash node_hash(const Hash& left, const Hash& right) {
    std::array<std::uint8_t, 65> buf{};
    buf[0] = 0x01;
    std::memcpy(buf.data() + 1, left.data(), 32);
    std::memcpy(buf.data() + 33, right.data(), 32);
    return sha256(ByteView(buf.data(), buf.size()), {});
}

Hash empty_root() {
    return sha256({}, {});
}

std::uint64_t split_point(std::uint64_t n) {
    if (n < 2) return 0;
    return std::bit_floor(n - 1);
}

// ---- CompactTree ----

void CompactTree::append(const Hash& leaf) {
    Hash h = leaf;
    // Each trailing one bit of the old size is a perfect subtree of the same height: merge it.
    for (std::uint64_t s = size_; (s & 1U) != 0; s >>= 1) {
        h = node_hash(frontier_.back(), h);
        frontier_.pop_back();
    }
    frontier_.push_back(h);
    ++size_;
}

Hash CompactTree::root() const {
    if (frontier_.empty()) return empty_root();
    Hash h = frontier_.back();
    for (std::size_t i = frontier_.size() - 1; i-- > 0;) h = node_hash(frontier_[i], h);
    return h;
}

std::string CompactTree::encode() const {
    std::string out = std::to_string(size_);
    for (const Hash& h : frontier_) {
        out += ' ';
        hex_append(ByteView(h.data(), h.size()), out);
    }
    return out;
}

Result<CompactTree> CompactTree::decode(std::string_view text) {
    const auto sp = text.find(' ');
    const std::string_view num = text.substr(0, sp);
    std::uint64_t size = 0;
    const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), size);
    if (num.empty() || ec != std::errc{} || ptr != num.data() + num.size() || (num.size() > 1 && num[0] == '0')) {
        return make_error(errc::bad_format, "compact tree: bad size");
    }
    CompactTree t;
    t.size_ = size;
    std::string_view rest = sp == std::string_view::npos ? std::string_view{} : text.substr(sp);
    const auto want = static_cast<std::size_t>(std::popcount(size));
    while (!rest.empty()) {
        if (rest.size() < 65 || rest[0] != ' ') return make_error(errc::bad_format, "compact tree: bad hash list");
        Hash h{};
        if (!hex_decode(rest.substr(1, 64), h)) return make_error(errc::bad_format, "compact tree: bad hash");
        t.frontier_.push_back(h);
        if (t.frontier_.size() > want) break;
        rest.remove_prefix(65);
    }
    if (t.frontier_.size() != want) {
        return make_error(errc::bad_format, "compact tree: " + std::to_string(want) + " hashes expected");
    }
    return t;
}

// ---- sources ----

Result<Hash> LeafHashes::perfect(std::uint64_t first, unsigned level) const {
    if (level >= 64) return bad_argument("perfect subtree too high");
    const std::uint64_t count = std::uint64_t{1} << level;
    if (first > available() || count > available() - first) return bad_argument("leaf index out of range");
    CompactTree t;
    for (std::uint64_t i = 0; i < count; ++i) {
        auto h = leaf(first + i);
        if (!h) return h;
        t.append(*h);
    }
    return t.frontier().front();
}

Result<Hash> VectorLeafHashes::leaf(std::uint64_t index) const {
    if (index >= leaves_.size()) return bad_argument("leaf index out of range");
    return leaves_[index];
}

MemoryTree::MemoryTree(std::vector<Hash> leaves) {
    levels_.push_back(std::move(leaves));
    while (levels_.back().size() >= 2) {
        const std::vector<Hash>& below = levels_.back();
        std::vector<Hash> up;
        up.reserve(below.size() / 2);
        for (std::size_t i = 0; i + 1 < below.size(); i += 2) up.push_back(node_hash(below[i], below[i + 1]));
        levels_.push_back(std::move(up));
    }
}

Result<Hash> MemoryTree::leaf(std::uint64_t index) const {
    return perfect(index, 0);
}

Result<Hash> MemoryTree::perfect(std::uint64_t first, unsigned level) const {
    if (level >= levels_.size() || level >= 64 || (first & ((std::uint64_t{1} << level) - 1)) != 0) {
        return bad_argument("no such perfect subtree");
    }
    const std::uint64_t i = first >> level;
    if (i >= levels_[level].size()) return bad_argument("leaf index out of range");
    return levels_[level][i];
}

// ---- proofs ----

Result<Hash> tree_root(std::uint64_t size, const LeafHashes& src) {
    if (size > src.available()) return bad_argument("tree larger than the leaves available");
    if (size == 0) return empty_root();
    return subtree(0, size, src);
}

Result<std::vector<Hash>> inclusion_proof(std::uint64_t index, std::uint64_t size, const LeafHashes& src) {
    if (index >= size) return bad_argument("leaf index not below the tree size");
    if (size > src.available()) return bad_argument("tree larger than the leaves available");
    std::vector<Hash> out;
    HSMAUDIT_TRY(path(index, 0, size, src, out));
    return out;
}

Result<std::vector<Hash>> consistency_proof(std::uint64_t old_size, std::uint64_t new_size, const LeafHashes& src) {
    if (old_size == 0 || old_size > new_size) return bad_argument("consistency needs 1 <= old size <= new size");
    if (new_size > src.available()) return bad_argument("tree larger than the leaves available");
    std::vector<Hash> out;
    if (old_size == new_size) return out;
    HSMAUDIT_TRY(subproof(old_size, 0, new_size, true, src, out));
    return out;
}

bool verify_inclusion(std::uint64_t index, std::uint64_t size, const Hash& leaf, const std::vector<Hash>& proof,
                      const Hash& root) {
    if (index >= size) return false;
    std::uint64_t fn = index;
    std::uint64_t sn = size - 1;
    Hash r = leaf;
    for (const Hash& p : proof) {
        if (sn == 0) return false;
        if ((fn & 1U) != 0 || fn == sn) {
            r = node_hash(p, r);
            while ((fn & 1U) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(r, p);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && equal_ct(ByteView(r.data(), r.size()), ByteView(root.data(), root.size()));
}

bool verify_consistency(std::uint64_t old_size, std::uint64_t new_size, const Hash& old_root, const Hash& new_root,
                        const std::vector<Hash>& proof) {
    if (old_size == 0 || old_size > new_size) return false;
    if (old_size == new_size) return proof.empty() && old_root == new_root;
    if (proof.empty()) return false;
    std::size_t next = 0;
    Hash fr{};
    if (is_pow2(old_size)) {
        fr = old_root;  // the old tree is a perfect subtree of the new: its root starts the path
    } else {
        fr = proof[next++];
    }
    Hash sr = fr;
    std::uint64_t fn = old_size - 1;
    std::uint64_t sn = new_size - 1;
    while ((fn & 1U) != 0) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; next < proof.size(); ++next) {
        const Hash& c = proof[next];
        if (sn == 0) return false;
        if ((fn & 1U) != 0 || fn == sn) {
            fr = node_hash(c, fr);
            sr = node_hash(c, sr);
            while ((fn & 1U) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(sr, c);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && fr == old_root && sr == new_root;
}

}  // namespace hsmaudit::mac::tlog
