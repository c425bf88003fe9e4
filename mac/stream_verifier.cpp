#include "mac/stream_verifier.h"

#include <algorithm>
#include <limits>

#include "mac/checkpoint.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {

StreamVerifier::StreamVerifier(std::string serial, std::optional<AuditKey> key, std::optional<AuditPub> pub,
                               ChainVerifier::FaultSink sink)
    : serial_(std::move(serial)), key_(std::move(key)), pub_(std::move(pub)), sink_(std::move(sink)) {
    if (key_ && !pub_) pub_ = key_->pub();
    if (auto sha = Sha256::create()) sha_.emplace(std::move(*sha));
    chain_ = std::make_unique<ChainVerifier>(key_ ? &*key_ : nullptr, pub_ ? &*pub_ : nullptr,
                                             [this](Fault&& f) { sink_(std::move(f)); });
    chain_->set_record_observer([this](std::uint64_t seq, const Mac& mac, std::uint64_t /*line*/) {
        if (seq >= pos_.next_seq || !pos_.last_mac)
            observed(seq, mac);
        else
            pos_.last_mac = mac;  // the chain continues from the MAC as written: one fault, not a cascade
    });
}

StreamVerifier::~StreamVerifier() = default;

void StreamVerifier::resume(const StreamPosition& at) {
    pos_ = at;
}

void StreamVerifier::fault(FaultKind kind, std::string_view where, std::uint64_t line_no, std::uint64_t seq,
                           std::string message) {
    sink_(Fault{kind, std::string(where), line_no, seq, std::move(message)});
}

const StreamVerifier::Seen* StreamVerifier::seen(std::uint64_t seq) const {
    if (recent_.empty() || seq < recent_.front().seq || seq > recent_.back().seq) return nullptr;
    const auto& s = recent_[seq - recent_.front().seq];
    return s.seq == seq ? &s : nullptr;
}

void StreamVerifier::remember(std::uint64_t seq, const Mac& mac) {
    if (!recent_.empty() && seq != recent_.back().seq + 1) recent_.clear();  // keep it contiguous
    recent_.push_back(Seen{seq, mac, line_digest_});
    if (recent_.size() > kRecent) recent_.pop_front();
    if (auto it = pending_anchors_.find(seq); it != pending_anchors_.end()) {
        if (it->second == mac)
            ++counts_.anchors_matched;
        else
            fault(FaultKind::anchor_mismatch, where_, line_no_, seq,
                  "a signed checkpoint says record " + std::to_string(seq) +
                      " has another MAC: rewritten or rolled back");
        pending_anchors_.erase(it);
    }
}

void StreamVerifier::observed(std::uint64_t seq, const Mac& mac) {
    pos_.next_seq = std::max(pos_.next_seq, seq + 1);
    pos_.last_mac = mac;
    remember(seq, mac);
}

StreamVerifier::Epoch StreamVerifier::record_epoch(std::string_view line, std::uint64_t seq,
                                                   std::optional<std::uint64_t> given) {
    if (given) return {*given, true};
    const Epoch current{pos_.epoch, pos_.epoch_known};
    // Only the record that continues the chain can tell its epoch (its MAC over the last MAC).
    if (!key_ || chain_->wrong_key() || !pos_.last_mac || seq != pos_.next_seq) return current;
    // Epochs only go forward, one per seal: the record's is the current one or a later one.
    const std::uint64_t from = pos_.epoch_known ? pos_.epoch : 0;
    const std::uint64_t n = pos_.epoch_known ? kEpochLookahead : kEpochSearchUnknown;
    const std::uint64_t last = from > std::numeric_limits<std::uint64_t>::max() - n ? from : from + n;
    for (std::uint64_t e = from;; ++e) {
        if (chain_->record_verifies(line, e, *pos_.last_mac)) return {e, true};
        if (e == last) break;
    }
    return current;
}

void StreamVerifier::open(std::string_view line, std::string_view where, std::uint64_t line_no) {
    where_ = where;
    line_no_ = line_no;
    if (line == last_open_) {
        ++counts_.redelivered;
        return;
    }
    auto o = parse_open_line(line);
    if (!o) return fault(FaultKind::malformed_line, where, line_no, 0, o.error().message);
    if (o->serial != serial_)
        return fault(FaultKind::foreign_module, where, line_no, 0,
                     "open line names module " + o->serial + " in the stream of module " + serial_);
    // A segment still open lost its seal (seal_missing), unless it was begun mid-way in a stream
    // that carried no open or seal lines until now (records only: their seals are not there).
    if (chain_->in_segment()) chain_->end_segment(chain_->mid_segment() && !chain_lines_seen_);
    chain_lines_seen_ = true;
    if (pos_.last_mac) {
        // Continue from where the stream stands (a previous segment, records verified without
        // their open line, or a resumed position).
        const std::uint64_t end_epoch = pos_.epoch_known ? pos_.epoch : (o->epoch > 0 ? o->epoch - 1 : 0);
        chain_->resume(ChainEnd{end_epoch, pos_.next_seq, *pos_.last_mac, std::string(where)});
    }
    last_open_ = std::string(line);
    if (pub_ && o->chain != pub_->chain) {
        // As verify_paths() sets a file of another chain apart: reported, its lines skipped.
        fault(FaultKind::foreign_chain, where, line_no, 0,
              "segment of chain " + hex_encode(o->chain) + ", not of chain " + hex_encode(pub_->chain));
        skipping_ = true;
        return;
    }
    skipping_ = !chain_->begin_segment(*o, line, where, line_no);
    if (skipping_) return;
    ++counts_.segments;
    pos_.epoch = o->epoch;
    pos_.epoch_known = true;
    if (!pos_.last_mac) {
        pos_.last_mac = o->prev;
        pos_.next_seq = o->first_seq;
    }
}

std::optional<StreamRecord> StreamVerifier::record(std::string_view line, std::optional<std::uint64_t> epoch,
                                                   std::string_view where, std::uint64_t line_no) {
    where_ = where;
    line_no_ = line_no;
    if (skipping_) return std::nullopt;
    auto v = split_record_line(line);
    if (!v) {
        if (chain_->in_segment())
            chain_->line(line, line_no);  // the segment's rules: malformed_line, and its digest covers it
        else
            fault(FaultKind::malformed_line, where, line_no, 0, v.error().message);
        return std::nullopt;
    }
    auto rec = parse_record_body(v->body);
    if (!rec) {
        fault(FaultKind::malformed_line, where, line_no, v->seq, rec.error().message);
        return std::nullopt;
    }
    if (rec->serial != serial_) {
        fault(FaultKind::foreign_module, where, line_no, v->seq,
              "record names module " + rec->serial + " in the stream of module " + serial_);
        return std::nullopt;
    }
    const std::uint64_t s = v->seq;

    // A redelivery (at-least-once export): a record already verified, the same bytes again.
    line_digest_ = sha_ ? sha_->compute(as_bytes(line)) : Bytes32{};
    if (sha_ && pos_.last_mac && s < pos_.next_seq) {
        if (const Seen* old = seen(s); old && old->digest == line_digest_) {
            ++counts_.redelivered;
            return std::nullopt;
        }
    }
    ++counts_.records;
    if (counts_.first_seq == 0) counts_.first_seq = s;
    counts_.last_seq = std::max(counts_.last_seq, s);
    const StreamRecord out{s, rec->boot, rec->time_ms};

    if (chain_->in_segment() && !chain_->mid_segment()) {
        // A segment begun by its open line: its records are of the open line's epoch.
        const bool checked = chain_->checks_macs();
        chain_->line(line, line_no);
        if (checked) ++counts_.macs_checked;
        return out;
    }
    // Without the open line: the segment at the record's epoch, from where the stream stands.
    const Epoch e = record_epoch(line, s, epoch);
    if (chain_->in_segment() && chain_->epoch() != e.epoch) chain_->end_segment(true);
    if (!chain_->in_segment()) {
        if (!chain_->begin_at(ChainPosition{e.epoch, pos_.next_seq, pos_.last_mac, serial_}, where, line_no)) {
            // Not verified (epoch_out_of_range): the chain continues after it from its MAC as written.
            if (s >= pos_.next_seq || !pos_.last_mac)
                observed(s, v->mac);
            else
                pos_.last_mac = v->mac;
            return out;
        }
    }
    pos_.epoch = e.epoch;
    pos_.epoch_known = pos_.epoch_known || e.known;
    const bool checked = chain_->checks_macs() && pos_.last_mac.has_value();
    chain_->line(line, line_no);
    if (checked) ++counts_.macs_checked;
    return out;
}

void StreamVerifier::seal(std::string_view line, std::string_view where, std::uint64_t line_no) {
    where_ = where;
    line_no_ = line_no;
    if (line == last_seal_) {
        ++counts_.redelivered;
        return;
    }
    last_seal_ = std::string(line);
    chain_lines_seen_ = true;
    if (skipping_) return;
    if (!chain_->in_segment()) {
        // A seal whose open line this stream did not give: its segment from where the stream stands.
        auto p = parse_seal_line(line);
        if (!p) return fault(FaultKind::malformed_line, where, line_no, 0, "malformed seal: " + p.error().message);
        const std::uint64_t e = pos_.epoch_known ? pos_.epoch : p->seal.epoch;
        if (!chain_->begin_at(ChainPosition{e, pos_.next_seq, pos_.last_mac, serial_}, where, line_no)) return;
        pos_.epoch = e;
        pos_.epoch_known = true;
    }
    ++counts_.seals;
    chain_->line(line, line_no);
    (void)chain_->end_segment(false);
}

void StreamVerifier::checkpoint(std::string_view line, std::string_view where, std::uint64_t line_no) {
    where_ = where;
    line_no_ = line_no;
    if (!pub_) return;
    auto cp = parse_checkpoint_line(line);
    if (!cp) return fault(FaultKind::malformed_line, where, line_no, 0, cp.error().message);
    if (cp->chain != pub_->chain) {
        ++counts_.anchors_other_chains;
        return;
    }
    if (!cp->verify(pub_->pubkey))
        return fault(FaultKind::anchor_bad_signature, where, line_no, cp->seq,
                     "checkpoint not signed by this module's chain key");
    ++counts_.checkpoints;
    if (cp->seq == 0) {
        ++counts_.anchors_matched;
    } else if (const Seen* s = seen(cp->seq)) {
        if (s->mac == cp->mac)
            ++counts_.anchors_matched;
        else
            fault(FaultKind::anchor_mismatch, where, line_no, cp->seq,
                  "the record at the checkpoint's seq has another MAC");
    } else if (cp->seq >= pos_.next_seq || !pos_.last_mac) {
        pending_anchors_[cp->seq] = cp->mac;
    }
}

void StreamVerifier::finish() {
    counts_.anchors_unreached = pending_anchors_.size();
}

}  // namespace hsmaudit::mac
