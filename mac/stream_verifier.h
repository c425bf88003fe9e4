// StreamVerifier: one chain verified entry by entry as a stream delivers it (the fleet verifier
// reads it from the audit topic; exporters/kafka/fleet_verify.h): open, record and seal lines in
// chain order, possibly starting in the middle of the chain at a known position, possibly without
// the open and seal lines, possibly delivered more than once.
//
// Every chain rule is mac::ChainVerifier's (docs/FORMAT.md section 3), with its fault kinds and
// messages: this class only maps stream entries onto it.
//   - an open line starts a segment (begin_segment), a seal ends it (a segment still open when
//     the next open line arrives lost its seal: seal_missing, as for files); a segment of another
//     chain (foreign_chain, set apart as verify_paths() sets its file apart) or one the chain
//     skips (a replayed epoch, an epoch out of range) is skipped up to the next open line;
//   - records without their segment's open line (the stream started mid-segment, or carries no
//     open lines) are verified from the position the stream stands at (begin_at): record MACs
//     under K_epoch, gaps, duplicates, reorders. The record's epoch is the one the stream gives
//     (the exporter's `epoch` header); lacking it, the current epoch or one of the next few whose
//     key verifies the record. A new epoch ends the segment begun mid-way (not a fault: the
//     stream may carry no seals) and begins the next at the new epoch;
//   - epochs are bounded as ChainVerifier bounds them (`epoch_out_of_range`): such a record is
//     not verified, and the chain continues after it from its MAC as written;
//   - redeliveries (at-least-once export): a record already verified arriving again with the same
//     bytes is counted, not a fault; an open or seal line identical to the last one too. Any other
//     copy goes to the chain like any line (sequence_duplicate or sequence_reordered, as in a
//     file). This is the one place a stream's verdict differs from a file's: in a file, a record
//     written twice, byte for byte, is sequence_duplicate;
//   - signed chain-head checkpoints (mac/checkpoint.h, versions 1 and 2): their signature
//     (anchor_bad_signature) and the MAC of the record at their sequence number (anchor_mismatch),
//     when the stream reaches it. A checkpoint of another chain (the same serial re-initialised) is
//     ignored and counted, as the offline verifier does (mac/anchors.h).
// Checks of the stream itself beyond the chain (the boot counter, staleness, which key) are the
// caller's: record() returns the fields of each new record for them.
//
// Faults carry the `where` given with the entry as file and the entry's `line_no` (an offset).
//
// Thread-safety: not thread-safe; one verifier per chain, driven by one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mac/chain_verifier.h"
#include "mac/crypto.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

/// Where a stream's chain stands: what resuming it needs.
struct StreamPosition {
    std::uint64_t epoch = 0;
    bool epoch_known = false;
    std::uint64_t next_seq = 1;
    std::optional<Mac> last_mac;  // nullopt: the first record seen is taken as the start
};

/// What a stream showed.
struct StreamCounts {
    std::uint64_t records = 0;      // records verified (not redeliveries)
    std::uint64_t redelivered = 0;  // records and open/seal lines recognised as delivered again
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::uint64_t segments = 0;              // open lines verified
    std::uint64_t seals = 0;                 // seal lines verified
    std::uint64_t macs_checked = 0;          // record MACs checked against their predecessor
    std::uint64_t checkpoints = 0;           // checkpoints whose signature verified
    std::uint64_t anchors_matched = 0;       // ... and whose record was seen with the same MAC
    std::uint64_t anchors_unreached = 0;     // ... whose record the stream has not reached (after finish())
    std::uint64_t anchors_other_chains = 0;  // checkpoints of another chain (a re-initialised module): ignored
};

/// The fields of a new record the caller checks beyond the chain.
struct StreamRecord {
    std::uint64_t seq = 0;
    std::uint32_t boot = 0;
    std::int64_t time_ms = 0;
};

class StreamVerifier {
public:
    /// `serial`: the module the stream is of (records and open lines naming another are
    /// foreign_module). `key` and/or `pub` as for ChainVerifier (at least one).
    StreamVerifier(std::string serial, std::optional<AuditKey> key, std::optional<AuditPub> pub,
                   ChainVerifier::FaultSink sink);
    ~StreamVerifier();
    StreamVerifier(const StreamVerifier&) = delete;
    StreamVerifier& operator=(const StreamVerifier&) = delete;

    /// Continues from where an earlier run stood (before the first entry).
    void resume(const StreamPosition& at);

    void open(std::string_view line, std::string_view where, std::uint64_t line_no);
    /// `epoch`: the record's epoch as the stream gives it (nullopt: not given). Returns the
    /// record's fields if it is a new record of this chain (not a redelivery, not rejected).
    std::optional<StreamRecord> record(std::string_view line, std::optional<std::uint64_t> epoch,
                                       std::string_view where, std::uint64_t line_no);
    void seal(std::string_view line, std::string_view where, std::uint64_t line_no);
    /// A signed `@checkpoint` line (without the public key, ignored).
    void checkpoint(std::string_view line, std::string_view where, std::uint64_t line_no);
    /// Ends the run: a segment still open stays open (the stream's tail, not a fault).
    void finish();

    [[nodiscard]] const StreamPosition& position() const { return pos_; }
    [[nodiscard]] const StreamCounts& counts() const { return counts_; }

    /// Records remembered to recognise redeliveries and match checkpoints.
    static constexpr std::size_t kRecent = 4096;
    /// Epochs tried after the current one for a record without an epoch...
    static constexpr std::uint64_t kEpochLookahead = 16;
    /// ... and from epoch 0 while the stream's epoch is not known.
    static constexpr std::uint64_t kEpochSearchUnknown = 4096;

private:
    struct Seen {
        std::uint64_t seq;
        Mac mac;
        Bytes32 digest;  // SHA-256 of the line: a redelivery is the same bytes
    };
    void fault(FaultKind kind, std::string_view where, std::uint64_t line_no, std::uint64_t seq, std::string message);
    struct Epoch {
        std::uint64_t epoch;
        bool known;
    };
    Epoch record_epoch(std::string_view line, std::uint64_t seq, std::optional<std::uint64_t> given);
    void observed(std::uint64_t seq, const Mac& mac);
    [[nodiscard]] const Seen* seen(std::uint64_t seq) const;
    void remember(std::uint64_t seq, const Mac& mac);

    std::string serial_;
    std::optional<AuditKey> key_;
    std::optional<AuditPub> pub_;  // the key's, or the one given
    ChainVerifier::FaultSink sink_;
    std::unique_ptr<ChainVerifier> chain_;
    StreamPosition pos_;
    StreamCounts counts_;
    bool skipping_ = false;          // the chain skipped the last open line's segment
    bool chain_lines_seen_ = false;  // open or seal lines came: a segment ended by an open without seal lost it
    std::optional<Sha256> sha_;      // nullopt (no digest): no redelivery is recognised
    std::deque<Seen> recent_;        // the last kRecent records verified, contiguous
    Bytes32 line_digest_{};          // of the record line being fed
    std::string last_open_;
    std::string last_seal_;
    std::map<std::uint64_t, Mac> pending_anchors_;  // checkpoints ahead of the stream
    // Where the entry being fed is (the chain's observer needs it).
    std::string_view where_;
    std::uint64_t line_no_ = 0;
};

}  // namespace hsmaudit::mac
