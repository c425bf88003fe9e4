// ChainVerifier: the rules of docs/FORMAT.md section 3 applied to one chain, line by line, as
// lines arrive. The offline verifier (verify_paths) feeds it files in chain order; the agent
// feeds it entries as it drains the module; the fleet verifier (through mac::StreamVerifier)
// feeds it the lines of an audit stream, possibly from the middle of a segment (begin_at()): all
// apply exactly the same checks and report the same fault kinds.
//
// Epochs: a verifier with the audit secret derives K_e forward from K_0, one HMAC per epoch, so
// the epochs it accepts are bounded by what the input justifies: the first epoch of a chain (its
// oldest retained segment) within kMaxEpochStep of 0; every later one within kMaxEpochGap of the
// furthest epoch accepted so far, of the chain end resumed from, or of the epoch of a signed
// checkpoint (justify_epoch()). Any other epoch is refused (`epoch_out_of_range`, the segment
// skipped, no key derived): a forged epoch (up to 2^64-1) costs a fault in microseconds, and at
// most kMaxEpochGap HMACs per segment actually read. The bound holds with or without the secret,
// so every key gives the same verdict.
//
// Records: each record line's fields are checked against docs/FORMAT.md 2.1, 2.2 and 2.5
// (`malformed_record`), after its MAC: a validly MAC'd record that breaks the syntax is a fault.
//
// Thread-safety: not thread-safe; one verifier per chain, driven by one thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "mac/crypto.h"
#include "mac/keys.h"
#include "mac/record_scan.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"

namespace hsmaudit::mac {

/// Where the chain stood at the end of the last segment verified.
struct ChainEnd {
    std::uint64_t epoch = 0;
    std::uint64_t next_seq = 1;
    Mac end_mac{};
    std::string file;
};

/// The furthest epoch the first segment of a chain may have: 2^24 (16.7 million segments, more
/// than ten years of a module sealing every 20 s, whose oldest segments were deleted by
/// retention); deriving that far costs 2^24 HMACs, once per verifier.
inline constexpr std::uint64_t kMaxEpochStep = std::uint64_t{1} << 24;
/// The largest step forward in epoch after the first accepted epoch: 2^16 (missing segments,
/// themselves a fault, of about 15 days at one seal every 20 s); about 2^16 HMACs (tens of ms).
inline constexpr std::uint64_t kMaxEpochGap = std::uint64_t{1} << 16;

/// Where a chain stands between two records: what verifying it from the middle of a segment
/// needs (a stream read from a known position, or records delivered without their open line).
struct ChainPosition {
    std::uint64_t epoch = 0;
    std::uint64_t next_seq = 1;
    std::optional<Mac> prev;  // the MAC of record next_seq - 1; nullopt: unknown, the first record is the start
    std::string serial;       // the module serial, "" if not known
};

/// What one segment held, when it is closed.
struct SegmentTotals {
    std::uint64_t records = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;  // first_seq - 1 if empty
    bool sealed = false;
    /// True if the records' bytes were authenticated: by their MACs (audit secret), or by the
    /// digest chain and the seal's signature (sealed). The open tail under a public key only is not.
    bool authenticated = false;
    std::int64_t first_time_ms = 0;
    std::int64_t last_time_ms = 0;
};

class ChainVerifier {
public:
    /// Receives each fault as it is found.
    using FaultSink = std::function<void(Fault&&)>;

    /// `key` checks MACs (and, with its public key, seals); `pub` checks seals. At least one.
    ChainVerifier(const AuditKey* key, const AuditPub* pub, FaultSink sink);
    ~ChainVerifier();
    ChainVerifier(const ChainVerifier&) = delete;
    ChainVerifier& operator=(const ChainVerifier&) = delete;

    /// Starts a segment from its open line (without LF; parse it first). Checks it against the
    /// previous segment. Returns false if the segment must be skipped: its epoch already seen (a
    /// duplicated or replayed segment) or out of range. Segments of another chain are the
    /// caller's to set apart (foreign_chain), as verify_paths() and StreamVerifier do.
    /// `line_no` locates faults about the open line (1 in a file; a stream passes its offset).
    bool begin_segment(const OpenLine& open, std::string_view open_text, std::string_view file,
                       std::uint64_t line_no = 1);
    /// Starts verifying a segment from the middle, at `at`, without its open line: the next lines
    /// are its records (and its seal), checked as in begin_segment()'s segments except what only
    /// the open line gives: the open MAC, the digest, the wrong-key verdict and the seal's count
    /// and first record. Returns false (and reports `epoch_out_of_range`) for an epoch beyond
    /// the bound. `line_no` locates that fault.
    bool begin_at(const ChainPosition& at, std::string_view file, std::uint64_t line_no = 0);
    /// Feeds the next line of the open segment (without LF; `terminated` false for a torn line,
    /// `too_long` for a line over the limit).
    void line(std::string_view text, std::uint64_t line_no, bool terminated = true, bool too_long = false);
    /// Ends the segment. `newest_unsealed_ok`: a missing seal is the open tail, not a fault.
    /// Without an open segment (begin_segment() returned false) it changes nothing.
    SegmentTotals end_segment(bool newest_unsealed_ok);

    /// Called for each well-formed record line with its sequence number, its MAC as written and
    /// its line number (the offline verifier matches checkpoints with it).
    using RecordObserver = std::function<void(std::uint64_t seq, const Mac& mac, std::uint64_t line)>;
    void set_record_observer(RecordObserver observer) { observer_ = std::move(observer); }

    /// Continues a chain verified earlier (e.g. before a restart) from where it ended; its epoch
    /// counts as accepted for the epoch bound.
    void resume(const ChainEnd& end) {
        end_ = end;
        note_reach(end.epoch);
    }
    /// Pins the module serial every segment must name (foreign_module otherwise); without it
    /// the first segment's serial is the chain's.
    void expect_serial(std::string serial) { serial_ = std::move(serial); }
    /// Lets epochs up to kMaxEpochGap beyond `epoch` be accepted: a checkpoint signed by the
    /// chain's key names it (the caller checks the signature).
    void justify_epoch(std::uint64_t epoch) { justified_ = std::max(justified_.value_or(0), epoch); }
    /// For a verifier of one segment of a chain verified in parallel (verify_paths() with jobs > 1):
    /// K_epoch as the chain's own deriver derived it, so this verifier need not walk from K_0.
    void seed_epoch_key(std::uint64_t epoch, const Bytes32& key_epoch) { seeded_.emplace(epoch, key_epoch); }
    /// For a verifier of one segment of a chain verified in parallel: the chain's wrong-key verdict
    /// (the first record of the chain read) belongs to an earlier segment; this one checks MACs only.
    void assume_key_checked() { wrong_key_checked_ = true; }

    /// The chain's end after the last segment (nullopt before the first).
    [[nodiscard]] const std::optional<ChainEnd>& chain_end() const { return end_; }
    [[nodiscard]] bool in_segment() const { return in_segment_; }
    /// True once a wrong-key verdict stopped MAC checks.
    [[nodiscard]] bool wrong_key() const { return !macs_enabled_; }
    /// The sequence number the next record of the open segment should have.
    [[nodiscard]] std::uint64_t expected_seq() const { return expected_; }
    /// The open segment's epoch.
    [[nodiscard]] std::uint64_t epoch() const { return open_.epoch; }
    /// True while the open segment was started by begin_at() (without its open line).
    [[nodiscard]] bool mid_segment() const { return in_segment_ && mid_segment_; }
    /// True if the open segment's record MACs are being checked (the audit secret, not wrong).
    [[nodiscard]] bool checks_macs() const { return in_segment_ && check_macs_; }
    /// The record line last fed to line(), as its one pass read it (views into that line: valid
    /// while the caller keeps the line); nullptr if that line was not a record line that splits
    /// (or was not checked: no open segment, after a seal or a torn line). A caller that needs the
    /// record's time or boot counter takes them from here (when syntax_ok()) instead of scanning
    /// the line again.
    [[nodiscard]] const RecordScan* last_record() const { return last_record_ ? &scan_ : nullptr; }
    /// True if `epoch` may be accepted: within kMaxEpochStep of 0 before any epoch was accepted,
    /// then within kMaxEpochGap of the furthest accepted (or justified) epoch.
    [[nodiscard]] bool epoch_in_range(std::uint64_t epoch) const {
        auto within = [epoch](std::uint64_t base, std::uint64_t step) { return epoch <= base || epoch - base <= step; };
        if (justified_ && within(*justified_, kMaxEpochGap)) return true;
        return reached_ ? within(reach_, kMaxEpochGap) : within(0, kMaxEpochStep);
    }
    /// True if the record line's MAC verifies under K_epoch after `prev` (false without the audit
    /// secret, after a wrong-key verdict, or for an epoch out of range). Changes no state of the
    /// chain: the stream verifier asks it which epoch a record without an epoch belongs to, and
    /// whether a redelivered copy is the record it verified.
    [[nodiscard]] bool record_verifies(std::string_view line, std::uint64_t epoch, const Mac& prev);

private:
    void fault(FaultKind kind, std::uint64_t line, std::uint64_t seq, std::string message);
    void record_line(std::string_view text, std::uint64_t line_no);
    void seal_line(std::string_view text, std::uint64_t line_no);
    bool accept_epoch(std::uint64_t epoch, std::uint64_t line_no, std::uint64_t seq);
    void note_reach(std::uint64_t epoch) {
        reach_ = reached_ ? std::max(reach_, epoch) : epoch;
        reached_ = true;
    }

    const AuditKey* key_;
    std::optional<AuditPub> pub_;
    FaultSink sink_;
    RecordObserver observer_;
    std::optional<EpochKeyDeriver> deriver_;
    /// K_epoch given by seed_epoch_key() (wiped at destruction); other epochs come from deriver_.
    struct SeededKey {
        SeededKey(std::uint64_t e, const Bytes32& k) : epoch(e), key(k) {}
        SeededKey(const SeededKey&) = delete;
        SeededKey& operator=(const SeededKey&) = delete;
        ~SeededKey() { secure_zero(key.data(), key.size()); }
        std::uint64_t epoch;
        Bytes32 key;
    };
    std::optional<SeededKey> seeded_;
    const Bytes32& key_for(std::uint64_t epoch) {
        return seeded_ && seeded_->epoch == epoch ? seeded_->key : deriver_->key_for(epoch);
    }
    std::optional<HmacSha256> hmac_;
    std::optional<HmacSha256> probe_;  // record_verifies(): keyed apart from the open segment's hmac_
    std::optional<Sha256> sha_;
    std::optional<ChainEnd> end_;
    std::string serial_;
    bool macs_enabled_ = true;
    bool wrong_key_checked_ = false;
    std::uint64_t reach_ = 0;  // the furthest epoch accepted (if reached_)
    bool reached_ = false;
    std::optional<std::uint64_t> justified_;  // the furthest epoch a signed checkpoint names

    // The open segment.
    bool in_segment_ = false;
    bool mid_segment_ = false;    // begun by begin_at()
    bool start_unknown_ = false;  // begin_at() without a MAC: the first record is the start
    OpenLine open_;
    std::uint64_t open_line_ = 1;  // where the open line's faults point
    std::string file_;
    bool check_macs_ = false;
    bool open_mac_ok_ = true;
    bool first_record_ = true;
    bool compute_digest_ = false;  // without MAC checks, the digest chain is the check of record bytes
    Bytes32 digest_{};
    bool digest_valid_ = true;
    std::uint64_t expected_ = 1;
    std::uint64_t last_seq_ = 0;
    Mac prev_mac_{};
    bool sealed_ = false;
    bool after_seal_reported_ = false;
    bool torn_ = false;
    bool last_record_ = false;  // scan_ holds the last line fed (a record line that split)
    SegmentTotals totals_;
    std::string scratch_;
    RecordScan scan_;  // the record line being checked (views into it; reused, nothing allocated)
};

}  // namespace hsmaudit::mac
