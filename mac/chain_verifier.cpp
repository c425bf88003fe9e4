#include "mac/chain_verifier.h"

#include <algorithm>

#include "mac/record.h"
#include "mac/record_scan.h"

namespace hsmaudit::mac {
namespace {

std::string range_text(std::uint64_t from, std::uint64_t to, std::string_view noun) {
    if (from == to) return std::string(noun) + " " + std::to_string(from);
    return std::string(noun) + "s " + std::to_string(from) + " to " + std::to_string(to);
}

}  // namespace

ChainVerifier::ChainVerifier(const AuditKey* key, const AuditPub* pub, FaultSink sink)
    : key_(key), sink_(std::move(sink)) {
    if (key_ != nullptr) {
        deriver_.emplace(*key_);
        pub_.emplace(key_->pub());
    }
    if (pub != nullptr) pub_ = *pub;
    if (auto h = HmacSha256::create(Bytes32{})) hmac_.emplace(std::move(*h));
    if (auto s = Sha256::create()) sha_.emplace(std::move(*s));
    // Without working primitives nothing can be proven: refuse MACs and digests below (fail safe).
    if (!hmac_ || !sha_) macs_enabled_ = false;
}

ChainVerifier::~ChainVerifier() = default;

void ChainVerifier::fault(FaultKind kind, std::uint64_t line, std::uint64_t seq, std::string message) {
    sink_(Fault{kind, file_, line, seq, std::move(message)});
}

bool ChainVerifier::accept_epoch(std::uint64_t epoch, std::uint64_t line_no, std::uint64_t seq) {
    if (!epoch_in_range(epoch)) {
        const std::string beyond =
            reached_ ? "more than " + std::to_string(kMaxEpochGap) + " epochs beyond epoch " + std::to_string(reach_) +
                           ", the furthest reached by the segments read"
                     : "more than " + std::to_string(kMaxEpochStep) + " epochs beyond the chain's start";
        fault(FaultKind::epoch_out_of_range, line_no, seq,
              "epoch " + std::to_string(epoch) + " is " + beyond +
                  " (and no signed checkpoint names an epoch near it): a forged or corrupted epoch; not verified");
        return false;
    }
    note_reach(epoch);
    return true;
}

bool ChainVerifier::begin_segment(const OpenLine& open, std::string_view open_text, std::string_view file,
                                  std::uint64_t line_no) {
    file_ = std::string(file);
    if (end_ && open.epoch <= end_->epoch) {
        if (open.epoch == end_->epoch) {
            fault(FaultKind::segment_duplicate, line_no, 0,
                  "epoch " + std::to_string(open.epoch) + " appears again (also in " + end_->file +
                      "): duplicated or replayed segment");
        } else {
            fault(FaultKind::segment_duplicate, line_no, 0,
                  "epoch " + std::to_string(open.epoch) + " comes after epoch " + std::to_string(end_->epoch) +
                      ": replayed segment");
        }
        return false;
    }
    if (!accept_epoch(open.epoch, line_no, open.first_seq)) return false;
    if (serial_.empty()) serial_ = open.serial;
    if (end_ && open.epoch > end_->epoch + 1) {
        fault(FaultKind::segment_missing, line_no, open.first_seq,
              range_text(end_->epoch + 1, open.epoch - 1, "segment of epoch") + " missing (" +
                  (open.first_seq > end_->next_seq ? range_text(end_->next_seq, open.first_seq - 1, "record")
                                                   : std::string("no records")) +
                  ")");
    } else if (end_) {
        if (open.prev != end_->end_mac)
            fault(FaultKind::chain_link_broken, line_no, open.first_seq,
                  "does not continue " + end_->file + ": its 'prev' is not that segment's last MAC");
        if (open.first_seq > end_->next_seq)
            fault(FaultKind::sequence_gap, line_no, end_->next_seq,
                  range_text(end_->next_seq, open.first_seq - 1, "record") + " missing between " + end_->file +
                      " and this segment");
        else if (open.first_seq < end_->next_seq)
            fault(FaultKind::sequence_duplicate, line_no, open.first_seq,
                  "starts at record " + std::to_string(open.first_seq) + " but " + end_->file + " already reached " +
                      std::to_string(end_->next_seq - 1));
    }
    if (open.serial != serial_)
        fault(FaultKind::foreign_module, line_no, 0,
              "module serial " + open.serial + " differs from the chain's serial " + serial_);

    in_segment_ = true;
    mid_segment_ = false;
    start_unknown_ = false;
    open_ = open;
    open_line_ = line_no;
    check_macs_ = deriver_.has_value() && macs_enabled_;
    open_mac_ok_ = true;
    if (check_macs_) {
        if (!hmac_->rekey(key_for(open.epoch))) {
            check_macs_ = false;
        } else {
            const std::string_view body = open_text.substr(0, open_text.size() - 69);  // " mac=" + 64
            open_mac_ok_ = equal_ct(hmac_->compute(as_bytes(body), open.prev), open.mac);
        }
    }
    first_record_ = true;
    // With the audit secret every byte is covered by a MAC (open line, records, seal) and the seal
    // body by the signature too: the digest chain, which exists for public-key holders, adds no
    // coverage, and skipping it halves the work per record (docs/FORMAT.md section 3).
    compute_digest_ = pub_.has_value() && !check_macs_;
    digest_valid_ = compute_digest_;
    if (compute_digest_) {
        scratch_.assign(open_text);
        scratch_ += '\n';
        digest_ = digest_start(*sha_, scratch_);
    }
    expected_ = open.first_seq;
    last_seq_ = 0;
    prev_mac_ = open.prev;
    sealed_ = false;
    after_seal_reported_ = false;
    torn_ = false;
    totals_ = SegmentTotals{};
    totals_.first_seq = open.first_seq;
    return true;
}

bool ChainVerifier::begin_at(const ChainPosition& at, std::string_view file, std::uint64_t line_no) {
    file_ = std::string(file);
    if (!accept_epoch(at.epoch, line_no, at.next_seq)) return false;
    if (serial_.empty()) serial_ = at.serial;
    in_segment_ = true;
    mid_segment_ = true;
    start_unknown_ = !at.prev.has_value();
    // What the seal is checked against: the open line's fields this position knows.
    open_ = OpenLine{};
    if (pub_) open_.chain = pub_->chain;
    open_.serial = serial_;
    open_.epoch = at.epoch;
    open_.first_seq = at.next_seq;
    open_.prev = at.prev.value_or(Mac{});
    open_line_ = line_no;
    check_macs_ = deriver_.has_value() && macs_enabled_ && hmac_->rekey(key_for(at.epoch));
    open_mac_ok_ = true;
    first_record_ = false;  // the wrong-key verdict needs the open line: a full segment gives it
    compute_digest_ = false;
    digest_valid_ = false;
    expected_ = at.next_seq;
    last_seq_ = 0;  // as begin_segment(): both give the same kinds for the same records
    prev_mac_ = open_.prev;
    sealed_ = false;
    after_seal_reported_ = false;
    torn_ = false;
    totals_ = SegmentTotals{};
    totals_.first_seq = at.next_seq;
    return true;
}

bool ChainVerifier::record_verifies(std::string_view line, std::uint64_t epoch, const Mac& prev) {
    if (!deriver_ || !macs_enabled_ || !epoch_in_range(epoch)) return false;
    auto rec = split_record_line(line);
    if (!rec) return false;
    if (!probe_) {
        auto h = HmacSha256::create(Bytes32{});
        if (!h) return false;
        probe_.emplace(std::move(*h));
    }
    if (!probe_->rekey(key_for(epoch))) return false;
    return equal_ct(probe_->compute(as_bytes(rec->body), prev), rec->mac);
}

void ChainVerifier::line(std::string_view text, std::uint64_t line_no, bool terminated, bool too_long) {
    last_record_ = false;
    if (!in_segment_ || torn_) return;
    if (!terminated) {
        fault(FaultKind::torn_line, line_no, 0,
              "the file ends inside a line (" + std::to_string(text.size()) + " bytes without LF): torn or truncated");
        torn_ = true;
        return;
    }
    if (sealed_) {
        if (!after_seal_reported_) fault(FaultKind::data_after_seal, line_no, 0, "lines after the seal");
        after_seal_reported_ = true;
        return;
    }
    if (too_long) {
        fault(FaultKind::malformed_line, line_no, 0, "line longer than " + std::to_string(kMaxLineBytes) + " bytes");
        digest_valid_ = false;
        return;
    }
    const LineKind kind = classify_line(text);
    if (compute_digest_ && kind != LineKind::seal) {
        // Every line before the seal is hashed as written; the seal carries the digest.
        scratch_.assign(text);
        scratch_ += '\n';
        digest_ = digest_next(*sha_, digest_, scratch_);
    }
    switch (kind) {
        case LineKind::record: record_line(text, line_no); break;
        case LineKind::seal: seal_line(text, line_no); break;
        case LineKind::open: fault(FaultKind::malformed_line, line_no, 0, "a second open line inside a segment"); break;
        case LineKind::unknown: fault(FaultKind::malformed_line, line_no, 0, "not a record, open or seal line"); break;
    }
}

void ChainVerifier::record_line(std::string_view text, std::uint64_t line_no) {
    // One pass over the line: the MAC, the sequence number, the field syntax and the time.
    RecordScan& rec = scan_;
    scan_record_line(text, rec);
    if (!rec.split_ok()) {
        fault(FaultKind::malformed_line, line_no, 0, rec.split_error());
        return;
    }
    last_record_ = true;
    // A position begun without a MAC (begin_at): the first record is the start, as a file verifier
    // given a recent range takes the first record it reads; its MAC links it to nothing known.
    const bool start = start_unknown_;
    if (start) {
        start_unknown_ = false;
        expected_ = rec.seq;
        totals_.first_seq = rec.seq;
        open_.first_seq = rec.seq;
    }
    const bool mac_ok = !check_macs_ || start || equal_ct(hmac_->compute(as_bytes(rec.body), prev_mac_), rec.mac);
    if (check_macs_ && first_record_ && !wrong_key_checked_) {
        wrong_key_checked_ = true;
        if (!mac_ok && !open_mac_ok_) {
            // Neither the open line nor the first record verify: the secret is not this chain's.
            fault(FaultKind::wrong_key, line_no, rec.seq,
                  "the audit secret does not verify this chain (the open line and the first record both fail); "
                  "MAC checks stopped");
            macs_enabled_ = false;
            check_macs_ = false;
            // The digest was not computed from the segment's start: it is checked from the next
            // segment on, with the signatures.
        }
    }
    if (first_record_ && check_macs_ && !open_mac_ok_)
        fault(FaultKind::open_mac_mismatch, open_line_, 0, "the open line was modified (MAC mismatch)");
    first_record_ = false;
    const bool mac_bad = check_macs_ && !mac_ok;
    const char* const suffix = mac_bad ? " (its MAC fails too)" : "";
    bool faulted = true;
    if (rec.seq == expected_) {
        if (mac_bad)
            fault(FaultKind::record_mac_mismatch, line_no, rec.seq,
                  "record modified, forged or inserted: MAC mismatch");
        faulted = mac_bad;
    } else if (rec.seq > expected_) {
        fault(FaultKind::sequence_gap, line_no, expected_,
              range_text(expected_, rec.seq - 1, "record") + " missing before record " + std::to_string(rec.seq) +
                  suffix);
    } else if (rec.seq == last_seq_) {
        fault(FaultKind::sequence_duplicate, line_no, rec.seq,
              "record " + std::to_string(rec.seq) + " appears twice (duplicated or inserted)" + suffix);
    } else {
        fault(FaultKind::sequence_reordered, line_no, rec.seq,
              "record " + std::to_string(rec.seq) + " comes after record " + std::to_string(last_seq_) +
                  " (reordered or inserted)" + suffix);
    }
    // Field syntax (FORMAT.md 2.1, 2.2, 2.5): a record that verifies but breaks it was MAC'd by a
    // faulty or hostile module, or forged where nothing authenticates it. One fault per line: a
    // line already reported (MAC, sequence) is not reported again for its syntax.
    if (!faulted && !rec.syntax_ok())
        fault(FaultKind::malformed_record, line_no, rec.seq, "record breaks the field syntax: " + rec.syntax_error());
    if (observer_) observer_(rec.seq, rec.mac, line_no);
    expected_ = std::max(expected_, rec.seq + 1);
    last_seq_ = rec.seq;
    prev_mac_ = rec.mac;  // resynchronise on the MAC as written: one fault per damaged line
    ++totals_.records;
    // Its time: validated, or (not validated, or malformed) as far as it parses.
    if (rec.time_known) {
        if (totals_.records == 1 || rec.time_ms < totals_.first_time_ms) totals_.first_time_ms = rec.time_ms;
        if (totals_.records == 1 || rec.time_ms > totals_.last_time_ms) totals_.last_time_ms = rec.time_ms;
    }
}

void ChainVerifier::seal_line(std::string_view text, std::uint64_t line_no) {
    sealed_ = true;
    auto parsed = parse_seal_line(text);
    if (!parsed) {
        fault(FaultKind::malformed_line, line_no, 0, "malformed seal: " + parsed.error().message);
        return;
    }
    const SealLine& s = parsed->seal;
    // Begun mid-segment (begin_at), the chain and serial are the key's and the stream's (when
    // known); the seal's count and first record cannot be checked, its last record and final MAC can.
    const bool chain_ok = s.chain == open_.chain || (mid_segment_ && !pub_);
    const bool serial_ok = s.serial == open_.serial || (mid_segment_ && open_.serial.empty());
    if (!chain_ok || !serial_ok || s.epoch != open_.epoch)
        fault(FaultKind::seal_mismatch, line_no, 0, "the seal names another chain, module or epoch than the open line");
    if (!mid_segment_ &&
        (s.records != totals_.records || s.first_seq != open_.first_seq || s.last_seq != expected_ - 1))
        fault(FaultKind::seal_mismatch, line_no, 0,
              "the seal covers records " + std::to_string(s.first_seq) + " to " + std::to_string(s.last_seq) + " (" +
                  std::to_string(s.records) + ") but the segment holds " + std::to_string(totals_.records) +
                  " records up to " + std::to_string(expected_ - 1));
    const bool position_known = !mid_segment_ || !start_unknown_;
    if (mid_segment_ && position_known && s.last_seq != expected_ - 1)
        fault(FaultKind::seal_mismatch, line_no, 0,
              "the seal's last record is " + std::to_string(s.last_seq) + " but the chain reached record " +
                  std::to_string(expected_ - 1));
    if (position_known && s.final_mac != prev_mac_)
        fault(FaultKind::seal_mismatch, line_no, 0, "the seal's final MAC is not the last record's MAC");
    if (compute_digest_ && digest_valid_ && s.digest != digest_)
        fault(FaultKind::digest_mismatch, line_no, 0, "the bytes before the seal are not the bytes that were sealed");
    if (check_macs_ && !equal_ct(hmac_->compute(as_bytes(parsed->mac_body), s.final_mac), s.mac))
        fault(FaultKind::seal_mac_mismatch, line_no, 0, "the seal line was modified (MAC mismatch)");
    if (pub_ && !pub_->pubkey.verify(as_bytes(parsed->signed_body), s.sig))
        fault(FaultKind::bad_signature, line_no, 0, "the seal's signature does not verify");
}

SegmentTotals ChainVerifier::end_segment(bool newest_unsealed_ok) {
    // No segment open (none begun, or begin_segment() skipped a replayed one): the chain's end
    // stays where the last verified segment left it.
    if (!in_segment_) return SegmentTotals{};
    if (check_macs_ && first_record_ && !open_mac_ok_)
        fault(FaultKind::open_mac_mismatch, open_line_, 0,
              "the open line does not verify (modified, or the key is wrong)");
    if (!sealed_ && !newest_unsealed_ok)
        fault(FaultKind::seal_missing, 0, 0, "not sealed: truncated, or its seal was removed");
    totals_.sealed = sealed_;
    totals_.authenticated = check_macs_ || (sealed_ && compute_digest_);
    totals_.last_seq = expected_ - 1;
    // Begun at an unknown position and no record seen: nothing is known of where the chain stands.
    if (!(mid_segment_ && start_unknown_)) end_ = ChainEnd{open_.epoch, expected_, prev_mac_, file_};
    in_segment_ = false;
    mid_segment_ = false;
    start_unknown_ = false;
    return totals_;
}

}  // namespace hsmaudit::mac
