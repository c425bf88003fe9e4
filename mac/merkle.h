// RFC 6962 / RFC 9162 Merkle trees over a chain's records: leaf and node hashes, the compact
// right frontier a writer keeps (O(log n) hashes), and inclusion and consistency proofs with
// their verification. The hashes and the proof order are those of RFC 9162 section 2.1, which
// Go's golang.org/x/mod/sumdb/tlog (RecordHash, NodeHash, CheckRecord, CheckTree) also uses;
// docs/FORMAT.md section 10 says what the leaves of an hsmaudit chain are.
//
// Thread-safety: the free functions are reentrant (each thread keeps its own SHA-256 context);
// a CompactTree or a MemoryTree is used by one thread at a time, or shared read-only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hsmaudit::mac::tlog {

using Hash = std::array<std::uint8_t, 32>;

/// SHA-256(0x00 || leaf): the hash of one leaf (RFC 6962 2.1; Go's tlog.RecordHash).
Hash leaf_hash(std::string_view leaf);
/// SHA-256(0x01 || left || right): an interior node (Go's tlog.NodeHash).
Hash node_hash(const Hash& left, const Hash& right);
/// SHA-256 of the empty string: the root of the tree of size 0.
Hash empty_root();

/// The largest power of two strictly less than n (n >= 2): where RFC 6962 splits a tree of n leaves.
std::uint64_t split_point(std::uint64_t n);

/// The right frontier of a tree: one hash per set bit of size (the perfect subtrees, largest
/// first). Appending costs one leaf-independent node hash per trailing one bit of the old size
/// (amortised one), so a writer can keep the root of its whole chain in O(log n) memory.
/// Thread-safety: one thread at a time; copies are independent.
class CompactTree {
public:
    /// Appends the hash of the next leaf (leaf index = size() before the call).
    void append(const Hash& leaf);
    [[nodiscard]] std::uint64_t size() const { return size_; }
    /// The root hash of the tree of size() leaves (empty_root() when empty).
    [[nodiscard]] Hash root() const;
    /// The frontier, largest subtree first (exactly popcount(size()) hashes).
    [[nodiscard]] const std::vector<Hash>& frontier() const { return frontier_; }

    /// Persistent text form: "<size>" then " <hex hash>" per frontier hash; decode() is strict
    /// (decimal without leading zeros, lowercase hex, exactly popcount(size) hashes).
    [[nodiscard]] std::string encode() const;
    static Result<CompactTree> decode(std::string_view text);

    friend bool operator==(const CompactTree&, const CompactTree&) = default;

private:
    std::uint64_t size_ = 0;
    std::vector<Hash> frontier_;
};

/// A source of leaf hashes by index, for building proofs. The default perfect() folds the
/// leaves (O(2^level) hashes); a source that stores interior nodes overrides it.
/// Thread-safety: as the implementation states; proofs call it from the caller's thread only.
class LeafHashes {
public:
    virtual ~LeafHashes() = default;
    LeafHashes() = default;
    LeafHashes(const LeafHashes&) = default;
    LeafHashes& operator=(const LeafHashes&) = default;
    LeafHashes(LeafHashes&&) = default;
    LeafHashes& operator=(LeafHashes&&) = default;

    /// The number of leaves available (proofs may ask for any index below it).
    [[nodiscard]] virtual std::uint64_t available() const = 0;
    /// The hash of leaf `index` (< available()).
    [[nodiscard]] virtual Result<Hash> leaf(std::uint64_t index) const = 0;
    /// The root of the perfect subtree of 2^level leaves starting at `first` (a multiple of 2^level).
    [[nodiscard]] virtual Result<Hash> perfect(std::uint64_t first, unsigned level) const;
};

/// Leaf hashes held in a vector (what `hsmaudit prove` builds while it reads a trail).
class VectorLeafHashes final : public LeafHashes {
public:
    explicit VectorLeafHashes(std::vector<Hash> leaves) : leaves_(std::move(leaves)) {}
    [[nodiscard]] std::uint64_t available() const override { return leaves_.size(); }
    [[nodiscard]] Result<Hash> leaf(std::uint64_t index) const override;

private:
    std::vector<Hash> leaves_;
};

/// Every level of a tree kept in memory (about 2n hashes): perfect() is O(1), so a proof costs
/// O(log n). For benchmarks and for callers that prove many events of one trail.
class MemoryTree final : public LeafHashes {
public:
    explicit MemoryTree(std::vector<Hash> leaves);
    [[nodiscard]] std::uint64_t available() const override { return levels_.empty() ? 0 : levels_[0].size(); }
    [[nodiscard]] Result<Hash> leaf(std::uint64_t index) const override;
    [[nodiscard]] Result<Hash> perfect(std::uint64_t first, unsigned level) const override;

private:
    std::vector<std::vector<Hash>> levels_;  // levels_[l][i] = root of leaves [i*2^l, (i+1)*2^l)
};

/// The root of the tree of the first `size` leaves of `src` (size <= src.available()).
Result<Hash> tree_root(std::uint64_t size, const LeafHashes& src);

/// The RFC 9162 inclusion proof (audit path, bottom-up) of leaf `index` in the tree of `size`
/// leaves: exactly as many hashes as the leaf's depth (ceil(log2(size)) at most).
Result<std::vector<Hash>> inclusion_proof(std::uint64_t index, std::uint64_t size, const LeafHashes& src);

/// The RFC 9162 consistency proof between the trees of `old_size` and `new_size` leaves
/// (1 <= old_size <= new_size; empty when they are equal).
Result<std::vector<Hash>> consistency_proof(std::uint64_t old_size, std::uint64_t new_size, const LeafHashes& src);

/// RFC 9162 2.1.3.2: does `proof` show leaf `index` (hash `leaf`) in the tree `size`/`root`?
[[nodiscard]] bool verify_inclusion(std::uint64_t index, std::uint64_t size, const Hash& leaf,
                                    const std::vector<Hash>& proof, const Hash& root);

/// RFC 9162 2.1.4.2: does `proof` show the tree `old_size`/`old_root` is a prefix of the tree
/// `new_size`/`new_root`? (old_size 0 is rejected, as Go's tlog.CheckTree rejects it.)
[[nodiscard]] bool verify_consistency(std::uint64_t old_size, std::uint64_t new_size, const Hash& old_root,
                                      const Hash& new_root, const std::vector<Hash>& proof);

}  // namespace hsmaudit::mac::tlog
