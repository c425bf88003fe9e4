// ChainVerifier: the rules of docs/FORMAT.md section 3 applied to one chain, line by line, as
// lines arrive. The offline verifier (verify_paths) feeds it files in chain order; the agent
// feeds it entries as it drains the module; the fleet verifier (through mac::StreamVerifier)
// feeds it the lines of an audit stream, possibly from the middle of a segment (begin_at()): all
// apply exactly the same checks and report the same fault kinds.
//
// Epochs: a verifier with the audit secret derives K_e forward from K_0, one HMAC per epoch, so
// an epoch is refused (`epoch_out_of_range`, the segment skipped, no key derived) when it lies more
// than kMaxEpochStep beyond the furthest epoch this verifier has accepted (0 at its start): a
// forged or corrupted epoch (up to 2^64-1) costs a fault, not hours of key derivation. The bound
// holds with or without the secret, so every key gives the same verdict.
//
// Thread-safety: not thread-safe; one verifier per chain, driven by one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "mac/crypto.h"
#include "mac/keys.h"
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

/// The largest step forward in epoch a verifier accepts: 2^24 (16.7 million segments, more than
/// ten years of a module sealing every 20 s); deriving that far costs about 2^24 HMACs.
inline constexpr std::uint64_t kMaxEpochStep = std::uint64_t{1} << 24;

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

    /// Continues a chain verified earlier (e.g. before a restart) from where it ended.
    void resume(const ChainEnd& end) { end_ = end; }

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
    /// True if `epoch` is within kMaxEpochStep of the furthest epoch accepted.
    [[nodiscard]] bool epoch_in_range(std::uint64_t epoch) const {
        return epoch <= reach_ || epoch - reach_ <= kMaxEpochStep;
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

    const AuditKey* key_;
    std::optional<AuditPub> pub_;
    FaultSink sink_;
    RecordObserver observer_;
    std::optional<EpochKeyDeriver> deriver_;
    std::optional<HmacSha256> hmac_;
    std::optional<HmacSha256> probe_;  // record_verifies(): keyed apart from the open segment's hmac_
    std::optional<Sha256> sha_;
    std::optional<ChainEnd> end_;
    std::string serial_;
    bool macs_enabled_ = true;
    bool wrong_key_checked_ = false;
    std::uint64_t reach_ = 0;  // the furthest epoch accepted

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
    SegmentTotals totals_;
    std::string scratch_;
};

}  // namespace hsmaudit::mac
