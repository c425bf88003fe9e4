// ChainVerifier: the rules of docs/FORMAT.md section 3 applied to one chain, line by line, as
// lines arrive. The offline verifier (verify_paths) feeds it files in chain order; the agent
// feeds it entries as it drains the module, so both apply exactly the same checks.
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
    /// previous segment. Returns false if the segment must be skipped (its epoch was already
    /// seen: a duplicated or replayed segment).
    bool begin_segment(const OpenLine& open, std::string_view open_text, std::string_view file);
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

private:
    void fault(FaultKind kind, std::uint64_t line, std::uint64_t seq, std::string message);
    void record_line(std::string_view text, std::uint64_t line_no);
    void seal_line(std::string_view text, std::uint64_t line_no);

    const AuditKey* key_;
    std::optional<AuditPub> pub_;
    FaultSink sink_;
    RecordObserver observer_;
    std::optional<EpochKeyDeriver> deriver_;
    std::optional<HmacSha256> hmac_;
    std::optional<Sha256> sha_;
    std::optional<ChainEnd> end_;
    std::string serial_;
    bool macs_enabled_ = true;
    bool wrong_key_checked_ = false;

    // The open segment.
    bool in_segment_ = false;
    OpenLine open_;
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
