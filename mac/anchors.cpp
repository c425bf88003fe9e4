#include "mac/anchors.h"

#include <map>

#include "mac/errc.h"
#include "mac/record.h"

namespace hsmaudit::mac {

Status load_anchor_files(const std::vector<std::string>& files, VerifyOptions& options) {
    for (const auto& f : files) {
        auto file = read_checkpoints(f);
        if (!file) return std::move(file).error();
        // A file without a single checkpoint is the wrong file, not an attack to skip past.
        if (file->checkpoints.empty())
            return make_error(errc::invalid_argument,
                              f + " holds no checkpoint line (" + std::to_string(file->lines) + " lines read)");
        options.anchors_skipped += file->skipped;
        options.anchors.insert(options.anchors.end(), file->checkpoints.begin(), file->checkpoints.end());
    }
    return {};
}

namespace {

/// The state of one check_anchors() call.
class AnchorChecker {
public:
    AnchorChecker(const VerifyOptions& opt, VerifyReport& report, const std::function<void(Fault&&)>& sink)
        : opt_(opt), report_(report), sink_(sink) {}

    /// Keeps the checkpoints of this chain whose signature verifies; faults for the others of
    /// this chain; counts (and with all_chains lists) those of other chains.
    void prepare(const ChainId& expected) {
        report_.anchors_skipped = opt_.anchors_skipped;
        const Ed25519PublicKey* pub = opt_.key ? &opt_.key->pubkey() : opt_.pub ? &opt_.pub->pubkey : nullptr;
        std::map<ChainId, AnchorChain> others;
        for (const Checkpoint& c : opt_.anchors) {
            if (c.chain != expected) {
                ++report_.anchors_other_chains;
                AnchorChain& o = others[c.chain];
                ++o.checkpoints;
                if (o.checkpoints == 1 || c.seq > o.newest_seq ||
                    (c.seq == o.newest_seq && c.time_ms > o.newest_time_ms)) {
                    o.newest_seq = c.seq;
                    o.newest_time_ms = c.time_ms;
                    o.serial.clear();
                    append_escaped(c.serial, o.serial);  // unsigned text: printable, as in the line
                }
                continue;
            }
            if (pub == nullptr || !c.verify(*pub)) {
                sink_(Fault{FaultKind::anchor_bad_signature, "(anchors)", 0, c.seq,
                            "checkpoint of " + format_time(c.time_ms) + " for record " + std::to_string(c.seq) +
                                " names this chain but its signature does not verify; it proves nothing"});
                continue;
            }
            if (c.version >= 2 && (newest_v2_ == nullptr || newer(c, *newest_v2_))) newest_v2_ = &c;
            if (c.seq == 0) continue;  // no record to match
            auto [it, inserted] = anchors_.emplace(c.seq, c);
            if (!inserted && it->second.mac != c.mac)
                sink_(Fault{FaultKind::anchor_mismatch, "(anchors)", 0, c.seq,
                            "two validly signed checkpoints disagree on record " + std::to_string(c.seq)});
        }
        if (newest_v2_ != nullptr) report_.retained_seq = newest_v2_->retained;
        if (opt_.all_chains)
            for (auto& [id, o] : others) {
                o.chain_hex = hex_encode(id);
                report_.anchor_chains.push_back(std::move(o));
            }
    }

    /// Which of two checkpoints of a chain is newer: the higher seq, then the later time, then the
    /// higher retained (an honest store's first retained sequence number only grows).
    static bool newer(const Checkpoint& a, const Checkpoint& b) {
        if (a.seq != b.seq) return a.seq > b.seq;
        if (a.time_ms != b.time_ms) return a.time_ms > b.time_ms;
        return a.retained > b.retained;
    }

    [[nodiscard]] bool empty() const { return anchors_.empty(); }

    void record(std::string_view file, std::uint64_t seq, const Mac& mac, std::uint64_t line) {
        auto it = anchors_.find(seq);
        if (it == anchors_.end()) return;
        ++report_.anchors_checked;
        if (it->second.mac != mac)
            sink_(Fault{FaultKind::anchor_mismatch, std::string(file), line, seq,
                        "the checkpoint of " + format_time(it->second.time_ms) + " says record " + std::to_string(seq) +
                            " has another MAC: the trail was rewritten"});
        anchors_.erase(it);
    }

    /// Checkpoints whose record the trail lacks: beyond its end (cut), inside its range (deleted
    /// records), or before its start while the newest v=2 checkpoint says they were retained.
    void finish() {
        const bool any = report_.records > 0;
        const std::uint64_t retained = report_.retained_seq;
        for (const auto& [seq, c] : anchors_) {
            const std::string cp =
                "the checkpoint of " + format_time(c.time_ms) + " proves record " + std::to_string(seq);
            if (!any || seq > report_.last_seq) {
                sink_(Fault{FaultKind::trail_truncated, "(anchors)", 0, seq,
                            cp + " existed, but the trail ends at " + std::to_string(report_.last_seq) +
                                ": truncated, or rolled back to an older state"});
            } else if (seq >= report_.first_seq) {
                sink_(Fault{FaultKind::anchor_record_missing, "(anchors)", 0, seq,
                            cp + " existed, but the trail lacks it: it lies in a deleted range"});
            } else if (retained == 0 || seq < retained) {
                ++report_.anchors_unchecked;  // before the trail, and before what the store retained
            }
            // else: before the trail but retained; trail_head_missing below says so once.
        }
        if (any && retained != 0 && report_.first_seq > retained)
            sink_(Fault{FaultKind::trail_head_missing, "(anchors)", 0, retained,
                        "the checkpoint of " + format_time(newest_v2_->time_ms) + " (record " +
                            std::to_string(newest_v2_->seq) + ") states that the store held records from " +
                            std::to_string(retained) + ", but the trail starts at " +
                            std::to_string(report_.first_seq) + ": records " + std::to_string(retained) + " to " +
                            std::to_string(report_.first_seq - 1) +
                            " are missing (the oldest segments were deleted, or their archives not given)"});
    }

private:
    const VerifyOptions& opt_;
    VerifyReport& report_;
    const std::function<void(Fault&&)>& sink_;
    std::map<std::uint64_t, Checkpoint> anchors_;
    const Checkpoint* newest_v2_ = nullptr;  // the newest valid version 2 checkpoint of this chain
};

}  // namespace

Status check_anchors(const VerifyOptions& options, const ChainId& chain, VerifyReport& report,
                     const std::function<void(Fault&&)>& sink,
                     const std::function<Status(const AnchorRecordObserver&)>& verify) {
    AnchorChecker checker(options, report, sink);
    checker.prepare(chain);
    AnchorRecordObserver observer;
    if (!checker.empty())
        observer = [&checker](std::string_view file, std::uint64_t seq, const Mac& mac, std::uint64_t line) {
            checker.record(file, seq, mac, line);
        };
    HSMAUDIT_TRY(verify(observer));
    checker.finish();
    return {};
}

}  // namespace hsmaudit::mac
