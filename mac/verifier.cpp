#include "mac/verifier.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "base/line_reader.h"
#include "mac/chain_verifier.h"
#include "mac/encrypted_file.h"
#include "mac/errc.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {

std::string_view to_string(FaultKind kind) {
    switch (kind) {
        case FaultKind::record_mac_mismatch: return "record_mac_mismatch";
        case FaultKind::sequence_gap: return "sequence_gap";
        case FaultKind::sequence_duplicate: return "sequence_duplicate";
        case FaultKind::sequence_reordered: return "sequence_reordered";
        case FaultKind::malformed_line: return "malformed_line";
        case FaultKind::torn_line: return "torn_line";
        case FaultKind::open_mac_mismatch: return "open_mac_mismatch";
        case FaultKind::seal_missing: return "seal_missing";
        case FaultKind::seal_mismatch: return "seal_mismatch";
        case FaultKind::seal_mac_mismatch: return "seal_mac_mismatch";
        case FaultKind::digest_mismatch: return "digest_mismatch";
        case FaultKind::bad_signature: return "bad_signature";
        case FaultKind::data_after_seal: return "data_after_seal";
        case FaultKind::segment_missing: return "segment_missing";
        case FaultKind::segment_duplicate: return "segment_duplicate";
        case FaultKind::chain_link_broken: return "chain_link_broken";
        case FaultKind::foreign_chain: return "foreign_chain";
        case FaultKind::foreign_module: return "foreign_module";
        case FaultKind::wrong_key: return "wrong_key";
        case FaultKind::not_a_segment: return "not_a_segment";
        case FaultKind::encrypted_damaged: return "encrypted_damaged";
        case FaultKind::archive_damaged: return "archive_damaged";
        case FaultKind::anchor_bad_signature: return "anchor_bad_signature";
        case FaultKind::anchor_mismatch: return "anchor_mismatch";
        case FaultKind::trail_truncated: return "trail_truncated";
        case FaultKind::epoch_out_of_range: return "epoch_out_of_range";
    }
    return "unknown";
}

std::string container_member_name(std::string_view container, std::string_view member) {
    std::string name(container);
    name += '(';
    name += member;
    name += ')';
    return name;
}

namespace {

namespace fs = std::filesystem;

/// A segment to read: a file, or a member of a container.
struct Input {
    std::string name;  // a path, or "<container>(<member>)"
    std::uint64_t size = 0;
    std::function<Result<std::unique_ptr<base::ByteSource>>()> open_member;  // empty: a file, opened by name
};

/// An input opened as plaintext; `member` is the container member's own source (for its damage).
struct Opened {
    std::unique_ptr<base::ByteSource> plain;
    base::ByteSource* member = nullptr;
};

struct SegmentHead {
    std::string path;
    OpenLine open;
    std::uint64_t size = 0;
    const Input* input = nullptr;
};

class Verifier {
public:
    explicit Verifier(const VerifyOptions& opt) : opt_(opt) {
        report_.macs_checked = opt_.key.has_value();
        report_.signatures_checked = opt_.key.has_value() || opt_.pub.has_value();
    }

    Result<VerifyReport> run(const std::vector<std::string>& paths) {
        HSMAUDIT_TRY(collect(paths));
        if (inputs_.empty() && report_.faults_total == 0)
            return make_error(errc::invalid_argument, "no segment files found in the paths given");

        std::vector<SegmentHead> heads;
        for (const auto& f : inputs_) {
            auto head = scan(f);
            if (!head) return std::move(head).error();
            if (head->has_value()) heads.push_back(std::move(**head));
        }
        for (const auto& h : heads) total_bytes_ += h.size;

        const ChainId expected = opt_.key ? opt_.key->chain() : opt_.pub->chain;
        report_.chain_hex = hex_encode(expected);
        std::vector<SegmentHead> chain;
        std::map<ChainId, std::string> others;  // foreign chain -> a file of it
        std::vector<SegmentHead> foreign;
        for (auto& h : heads) {
            if (h.open.chain == expected) {
                chain.push_back(std::move(h));
            } else {
                others.emplace(h.open.chain, h.path);
                foreign.push_back(std::move(h));
            }
        }
        if (chain.empty()) {
            for (const auto& [id, file] : others)
                fault(Fault{FaultKind::wrong_key, file, 0, 0,
                            "the key is for chain " + hex_encode(expected) + "; these segments are of chain " +
                                hex_encode(id)});
        } else {
            for (const auto& h : foreign)
                fault(Fault{FaultKind::foreign_chain, h.path, 1, 0,
                            "segment of chain " + hex_encode(h.open.chain) + ", not of chain " + hex_encode(expected)});
        }
        std::stable_sort(chain.begin(), chain.end(), [](const SegmentHead& a, const SegmentHead& b) {
            return a.open.epoch != b.open.epoch ? a.open.epoch < b.open.epoch : a.path < b.path;
        });
        prepare_anchors(expected);
        HSMAUDIT_TRY(verify_chain(chain));
        finish_anchors();
        return std::move(report_);
    }

private:
    const AuditKey* key() const { return opt_.key ? &*opt_.key : nullptr; }

    bool is_container(const std::string& path) const {
        return opt_.containers != nullptr && opt_.containers->handles(path);
    }

    Status collect(const std::vector<std::string>& paths) {
        for (const auto& p : paths) {
            std::error_code ec;
            const auto st = fs::status(p, ec);
            if (ec || !fs::exists(st))
                return make_error(errc::io_error, "cannot access " + p + ": no such file or directory");
            if (fs::is_directory(st)) {
                std::vector<std::string> found;
                for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
                    if (!it->is_regular_file()) continue;
                    const std::string f = it->path().string();
                    if (it->path().extension() == ".log" || is_container(f)) found.push_back(f);
                }
                if (ec) return make_error(errc::io_error, "cannot list " + p + ": " + ec.message());
                std::sort(found.begin(), found.end());
                for (const auto& f : found) HSMAUDIT_TRY(add_input(f));
            } else {
                HSMAUDIT_TRY(add_input(p));
            }
        }
        return {};
    }

    Status add_input(const std::string& path) {
        if (!is_container(path)) {
            inputs_.push_back(Input{path, 0, {}});
            return {};
        }
        auto contents = opt_.containers->expand(path);
        if (!contents) return std::move(contents).error();
        if (contents->damage) fault(Fault{FaultKind::archive_damaged, path, 0, 0, *contents->damage});
        for (auto& m : contents->members)
            inputs_.push_back(Input{container_member_name(path, m.name), m.size, std::move(m.open)});
        return {};
    }

    Result<Opened> open_input(const Input& in) {
        if (!in.open_member) {
            auto src = open_segment_source(in.name, key());
            if (!src) return std::move(src).error();
            return Opened{std::move(*src), nullptr};
        }
        auto raw = in.open_member();
        if (!raw) return std::move(raw).error();
        base::ByteSource* member = raw->get();
        auto src = open_segment_source(std::move(*raw), in.name, key());
        if (!src) return std::move(src).error();
        return Opened{std::move(*src), member};
    }

    /// Reads an input's first line. Not a segment: a fault, and nothing returned.
    Result<std::optional<SegmentHead>> scan(const Input& in) {
        const std::string& path = in.name;
        std::uint64_t size = in.size;
        if (!in.open_member) {
            std::error_code ec;
            size = fs::file_size(path, ec);
            if (ec) return make_error(errc::io_error, "cannot stat " + path + ": " + ec.message());
        }
        auto opened = open_input(in);
        if (!opened) return std::move(opened).error();
        base::ByteSource* member = opened->member;
        base::ByteSource* plain = opened->plain.get();
        base::LineReader reader(std::move(opened->plain), kMaxLineBytes, 8192);
        base::Line line;
        auto got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got) {
            if (member != nullptr && member->damage())
                fault(Fault{FaultKind::archive_damaged, path, 0, 0, *member->damage()});
            else if (plain->damage())  // its first encrypted chunk is torn or unauthentic
                fault(Fault{FaultKind::encrypted_damaged, path, 0, 0, *plain->damage()});
            else
                fault(Fault{FaultKind::not_a_segment, path, 0, 0, "empty file"});
            return std::optional<SegmentHead>{};
        }
        auto open = line.too_long ? Result<OpenLine>(make_error(errc::bad_format, "line too long"))
                                  : parse_open_line(line.text);
        if (!open || !line.terminated) {
            fault(
                Fault{FaultKind::not_a_segment, path, 1, 0,
                      "does not start with an open line: " + (open ? std::string("torn line") : open.error().message)});
            return std::optional<SegmentHead>{};
        }
        return std::optional<SegmentHead>(SegmentHead{path, std::move(*open), size, &in});
    }

    Status verify_chain(const std::vector<SegmentHead>& chain) {
        ChainVerifier cv(key(), opt_.pub ? &*opt_.pub : nullptr, [this](Fault&& f) { fault(std::move(f)); });
        if (!anchors_.empty()) {
            cv.set_record_observer([this](std::uint64_t seq, const Mac& mac, std::uint64_t line) {
                auto it = anchors_.find(seq);
                if (it == anchors_.end()) return;
                ++report_.anchors_checked;
                if (it->second.mac != mac)
                    fault(Fault{FaultKind::anchor_mismatch, current_file_, line, seq,
                                "the checkpoint of " + format_time(it->second.time_ms) + " says record " +
                                    std::to_string(seq) + " has another MAC: the trail was rewritten"});
                anchors_.erase(it);
            });
        }
        for (std::size_t i = 0; i < chain.size(); ++i) {
            const SegmentHead& seg = chain[i];
            const bool newest = i + 1 == chain.size();
            current_file_ = seg.path;
            auto opened = open_input(*seg.input);
            if (!opened) return std::move(opened).error();
            base::ByteSource* raw = opened->plain.get();
            base::ByteSource* member = opened->member;
            base::LineReader reader(std::move(opened->plain), kMaxLineBytes);
            base::Line line;
            auto got = reader.next(line);  // the open line, parsed by scan()
            if (!got) return std::move(got).error();
            if (!cv.begin_segment(seg.open, line.text, seg.path)) {
                bytes_done_ += seg.size;
                continue;
            }
            std::uint64_t last_progress = 0;
            for (;;) {
                got = reader.next(line);
                if (!got) return std::move(got).error();
                if (!*got) break;
                cv.line(line.text, line.number, line.terminated, line.too_long);
                if (opt_.on_record_line && line.terminated && !line.too_long && !line.text.empty() &&
                    line.text[0] >= '1' && line.text[0] <= '9')
                    opt_.on_record_line(line.text);
                const std::uint64_t done = bytes_done_ + reader.bytes_consumed();
                if (opt_.progress && done - last_progress > (8u << 20)) {
                    last_progress = done;
                    opt_.progress(done, total_bytes_);
                }
            }
            // A member cut short by a damaged archive also tears its encrypted chunks: name the cause.
            if (auto cut = member != nullptr ? member->damage() : std::nullopt)
                fault(Fault{FaultKind::archive_damaged, seg.path, 0, 0, *cut});
            else if (auto damage = raw->damage())
                fault(Fault{FaultKind::encrypted_damaged, seg.path, 0, 0, *damage});
            const SegmentTotals t = cv.end_segment(newest && !opt_.require_sealed);
            bytes_done_ += seg.size;
            SegmentReport sr;
            sr.file = seg.path;
            sr.serial = seg.open.serial;
            sr.epoch = seg.open.epoch;
            sr.first_seq = seg.open.first_seq;
            sr.last_seq = t.last_seq;
            sr.records = t.records;
            sr.bytes = seg.size;
            sr.sealed = t.sealed;
            sr.open_tail = newest && !t.sealed && !opt_.require_sealed;
            add_segment(sr, t);
        }
        return {};
    }

    void add_segment(const SegmentReport& sr, const SegmentTotals& t) {
        if (sr.records > 0) {
            if (report_.records == 0 || t.first_time_ms < report_.first_time_ms)
                report_.first_time_ms = t.first_time_ms;
            if (report_.records == 0 || t.last_time_ms > report_.last_time_ms) report_.last_time_ms = t.last_time_ms;
            if (report_.first_seq == 0 || sr.first_seq < report_.first_seq) report_.first_seq = sr.first_seq;
            report_.last_seq = std::max(report_.last_seq, sr.last_seq);
        }
        report_.records += sr.records;
        report_.bytes += sr.bytes;
        if (sr.sealed) ++report_.sealed_segments;
        if (sr.open_tail) ++report_.open_segments;
        report_.segments.push_back(sr);
    }

    void fault(Fault&& f) {
        ++report_.faults_total;
        ++report_.fault_counts[static_cast<std::size_t>(f.kind)];
        if (report_.faults.size() < opt_.max_faults) report_.faults.push_back(std::move(f));
    }

    /// Keeps the checkpoints of this chain whose signature verifies; faults for the others.
    void prepare_anchors(const ChainId& expected) {
        const Ed25519PublicKey* pub = opt_.key ? &opt_.key->pubkey() : opt_.pub ? &opt_.pub->pubkey : nullptr;
        for (const Checkpoint& c : opt_.anchors) {
            const std::string what = "checkpoint of " + format_time(c.time_ms) + " for record " + std::to_string(c.seq);
            if (c.chain != expected) {
                fault(Fault{FaultKind::anchor_bad_signature, "(anchors)", 0, c.seq,
                            what + " is of chain " + hex_encode(c.chain) + ", not of this chain"});
            } else if (pub == nullptr || !c.verify(*pub)) {
                fault(Fault{FaultKind::anchor_bad_signature, "(anchors)", 0, c.seq,
                            what + ": its signature does not verify; it proves nothing"});
            } else if (c.seq != 0) {
                auto [it, inserted] = anchors_.emplace(c.seq, c);
                if (!inserted && it->second.mac != c.mac)
                    fault(Fault{FaultKind::anchor_mismatch, "(anchors)", 0, c.seq,
                                "two validly signed checkpoints disagree on record " + std::to_string(c.seq)});
            }
        }
    }

    /// Checkpoints whose record the trail never reached prove it was cut.
    void finish_anchors() {
        for (const auto& [seq, c] : anchors_) {
            if (seq <= report_.last_seq && seq >= report_.first_seq) continue;  // inside a reported gap
            if (report_.records > 0 && seq < report_.first_seq) continue;       // before the range verified
            fault(Fault{FaultKind::trail_truncated, "(anchors)", 0, seq,
                        "the checkpoint of " + format_time(c.time_ms) + " proves record " + std::to_string(seq) +
                            " existed, but the trail ends at " + std::to_string(report_.last_seq) +
                            ": truncated, or rolled back to an older state"});
        }
    }

    const VerifyOptions& opt_;
    std::map<std::uint64_t, Checkpoint> anchors_;
    std::string current_file_;
    std::vector<Input> inputs_;  // stable: heads point into it
    std::uint64_t total_bytes_ = 0;
    std::uint64_t bytes_done_ = 0;
    VerifyReport report_;
};

}  // namespace

Result<VerifyReport> verify_paths(const std::vector<std::string>& paths, const VerifyOptions& options) {
    if (!options.key && !options.pub)
        return make_error(errc::invalid_argument, "give an audit key (--key/--wrapped-key) or a public key (--pubkey)");
    Verifier v(options);
    return v.run(paths);
}

}  // namespace hsmaudit::mac
