#include "mac/anchors.h"

#include <map>

#include "mac/errc.h"
#include "mac/record.h"

namespace hsmaudit::mac {

Status load_anchor_files(const std::vector<std::string>& files, VerifyOptions& options) {
    for (const auto& f : files) {
        auto cps = read_checkpoints(f);
        if (!cps) return std::move(cps).error();
        if (cps->empty()) return make_error(errc::invalid_argument, f + " holds no checkpoint line");
        options.anchors.insert(options.anchors.end(), cps->begin(), cps->end());
    }
    return {};
}

namespace {

/// The state of one check_anchors() call.
class AnchorChecker {
public:
    AnchorChecker(const VerifyOptions& opt, VerifyReport& report, const std::function<void(Fault&&)>& sink)
        : opt_(opt), report_(report), sink_(sink) {}

    /// Keeps the checkpoints of this chain whose signature verifies; faults for the others.
    void prepare(const ChainId& expected) {
        const Ed25519PublicKey* pub = opt_.key ? &opt_.key->pubkey() : opt_.pub ? &opt_.pub->pubkey : nullptr;
        for (const Checkpoint& c : opt_.anchors) {
            const std::string what = "checkpoint of " + format_time(c.time_ms) + " for record " + std::to_string(c.seq);
            if (c.chain != expected) {
                sink_(Fault{FaultKind::anchor_bad_signature, "(anchors)", 0, c.seq,
                            what + " is of chain " + hex_encode(c.chain) + ", not of this chain"});
            } else if (pub == nullptr || !c.verify(*pub)) {
                sink_(Fault{FaultKind::anchor_bad_signature, "(anchors)", 0, c.seq,
                            what + ": its signature does not verify; it proves nothing"});
            } else if (c.seq != 0) {
                auto [it, inserted] = anchors_.emplace(c.seq, c);
                if (!inserted && it->second.mac != c.mac)
                    sink_(Fault{FaultKind::anchor_mismatch, "(anchors)", 0, c.seq,
                                "two validly signed checkpoints disagree on record " + std::to_string(c.seq)});
            }
        }
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

    /// Checkpoints whose record the trail never reached prove it was cut.
    void finish() {
        for (const auto& [seq, c] : anchors_) {
            if (seq <= report_.last_seq && seq >= report_.first_seq) continue;  // inside a reported gap
            if (report_.records > 0 && seq < report_.first_seq) continue;       // before the range verified
            sink_(Fault{FaultKind::trail_truncated, "(anchors)", 0, seq,
                        "the checkpoint of " + format_time(c.time_ms) + " proves record " + std::to_string(seq) +
                            " existed, but the trail ends at " + std::to_string(report_.last_seq) +
                            ": truncated, or rolled back to an older state"});
        }
    }

private:
    const VerifyOptions& opt_;
    VerifyReport& report_;
    const std::function<void(Fault&&)>& sink_;
    std::map<std::uint64_t, Checkpoint> anchors_;
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
