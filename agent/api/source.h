// The agent's small interface to where audit entries come from (the module's ring, through a
// collector), and the batch in which they travel: kind, position and exact segment line.
//
// Thread-safety: an AuditSource is driven by the agent's drain thread only; EntryBatch is a
// value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/errc.h"
#include "base/result.h"

namespace hsmaudit::agent {

enum class EntryKind : std::uint8_t { record, open, seal };

/// One entry of a batch: where its line sits in EntryBatch::text.
struct EntryRef {
    EntryKind kind = EntryKind::record;
    std::uint64_t entry_no = 0;  // the module's position: counts every entry (records, opens, seals), 1-based
    std::uint64_t seq = 0;       // record: its sequence number; open: first seq; seal: last seq
    std::uint32_t offset = 0;
    std::uint32_t length = 0;  // the line with its LF
};

/// Entries rendered back to back, so a batch is written with one write.
struct EntryBatch {
    std::string text;
    std::vector<EntryRef> entries;

    void clear() {
        text.clear();
        entries.clear();
    }
    [[nodiscard]] bool empty() const { return entries.empty(); }
    [[nodiscard]] std::string_view line(const EntryRef& e) const {
        return std::string_view(text).substr(e.offset, e.length);
    }
    /// Appends an entry whose line (with LF) the caller appends to `text` right after.
    void add(EntryKind kind, std::uint64_t entry_no, std::uint64_t seq, std::string_view line_with_lf) {
        entries.push_back(EntryRef{kind, entry_no, seq, static_cast<std::uint32_t>(text.size()),
                                   static_cast<std::uint32_t>(line_with_lf.size())});
        text += line_with_lf;
    }
};

/// What the module says about itself.
struct SourceStatus {
    std::string serial;
    std::uint32_t boot = 0;
    std::uint64_t capacity_bytes = 0;
    std::uint64_t reserve_bytes = 0;  // the module blocks when less than this is free (0: unknown)
    std::uint64_t used_bytes = 0;
    std::uint64_t used_entries = 0;
    std::uint64_t newest_entry_no = 0;
    std::uint64_t acked_entry_no = 0;
    std::uint64_t next_seq = 0;
    std::uint64_t epoch = 0;
    bool blocked = false;
};

/// Where audit entries come from. Entries stay in the source until acknowledged.
class AuditSource {
public:
    virtual ~AuditSource() = default;
    /// Appends up to `max` entries that follow `after_entry_no` to `out`; waits up to `wait`
    /// when there is none. Returns how many were added.
    virtual Result<std::size_t> read(std::uint64_t after_entry_no, std::size_t max, std::chrono::milliseconds wait,
                                     EntryBatch& out) = 0;
    /// Everything through `entry_no` is durable on the host: the source may free it.
    virtual Status acknowledge(std::uint64_t entry_no) = 0;
    /// Asks the module to seal the current epoch (a seal entry, then the next open entry).
    virtual Status request_seal() = 0;
    virtual Result<SourceStatus> status() = 0;
    /// The module's signed chain-head checkpoint line (mac/checkpoint.h), without LF. `retained`:
    /// the first sequence number the store still holds (1 .. head + 1), stated in a version 2
    /// checkpoint; 0: unknown (a version 1 checkpoint).
    virtual Result<std::string> checkpoint(std::uint64_t retained) = 0;
    /// The module's signed tree head: a C2SP tlog-checkpoint signed note (mac/note.h) over the
    /// RFC 6962 tree of the chain's records 1..n (n: the newest record), several lines each ending
    /// in LF. A source without one says so (the default).
    virtual Result<std::string> tree_head() {
        return make_error(errc::internal, "this audit source gives no signed tree heads");
    }
};

}  // namespace hsmaudit::agent
