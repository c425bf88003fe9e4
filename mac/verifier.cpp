#include "mac/verifier.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "mac/errc.h"
#include "mac/line_reader.h"
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
    }
    return "unknown";
}

namespace {

namespace fs = std::filesystem;

struct SegmentHead {
    std::string path;
    OpenLine open;
    std::uint64_t size = 0;
};

/// Where the previous segment of the chain ended.
struct ChainEnd {
    std::uint64_t epoch = 0;
    std::uint64_t next_seq = 0;
    Mac end_mac{};
    std::string file;
};

class Verifier {
public:
    explicit Verifier(const VerifyOptions& opt) : opt_(opt) {
        if (opt_.key) {
            deriver_.emplace(*opt_.key);
            pub_.emplace(opt_.key->pub());
            report_.macs_checked = true;
        }
        if (opt_.pub) pub_ = opt_.pub;
        report_.signatures_checked = pub_.has_value();
    }

    Result<VerifyReport> run(const std::vector<std::string>& paths) {
        auto files = collect(paths);
        if (!files) return std::move(files).error();
        if (files->empty()) return make_error(errc::invalid_argument, "no segment files found in the paths given");
        auto sha = Sha256::create();
        if (!sha) return std::move(sha).error();
        sha_.emplace(std::move(*sha));
        auto hmac = HmacSha256::create(Bytes32{});
        if (!hmac) return std::move(hmac).error();
        hmac_.emplace(std::move(*hmac));

        std::vector<SegmentHead> heads;
        for (const auto& f : *files) {
            auto head = scan(f);
            if (!head) return std::move(head).error();
            if (head->has_value()) heads.push_back(std::move(**head));
        }
        for (const auto& h : heads) total_bytes_ += h.size;

        const ChainId expected = opt_.key ? opt_.key->chain() : pub_->chain;
        report_.chain_hex = hex_encode(expected);
        std::vector<SegmentHead> chain;
        std::map<ChainId, std::string> others;  // foreign chain -> a file of it
        for (auto& h : heads) {
            if (h.open.chain == expected) {
                chain.push_back(std::move(h));
            } else {
                others.emplace(h.open.chain, h.path);
                foreign_.push_back(std::move(h));
            }
        }
        if (chain.empty()) {
            for (const auto& [id, file] : others)
                fault(
                    FaultKind::wrong_key, file, 0, 0,
                    "the key is for chain " + hex_encode(expected) + "; these segments are of chain " + hex_encode(id));
        } else {
            for (const auto& h : foreign_)
                fault(FaultKind::foreign_chain, h.path, 1, 0,
                      "segment of chain " + hex_encode(h.open.chain) + ", not of chain " + hex_encode(expected));
        }
        std::stable_sort(chain.begin(), chain.end(), [](const SegmentHead& a, const SegmentHead& b) {
            return a.open.epoch != b.open.epoch ? a.open.epoch < b.open.epoch : a.path < b.path;
        });
        HSMAUDIT_TRY(verify_chain(chain));
        return std::move(report_);
    }

private:
    Result<std::vector<std::string>> collect(const std::vector<std::string>& paths) {
        std::vector<std::string> out;
        for (const auto& p : paths) {
            std::error_code ec;
            const auto st = fs::status(p, ec);
            if (ec || !fs::exists(st))
                return make_error(errc::io_error, "cannot access " + p + ": no such file or directory");
            if (fs::is_directory(st)) {
                std::vector<std::string> found;
                for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
                    if (it->is_regular_file() && it->path().extension() == ".log") found.push_back(it->path().string());
                }
                if (ec) return make_error(errc::io_error, "cannot list " + p + ": " + ec.message());
                std::sort(found.begin(), found.end());
                out.insert(out.end(), found.begin(), found.end());
            } else {
                out.push_back(p);
            }
        }
        return out;
    }

    /// Reads a file's first line. Not a segment: a fault, and nothing returned.
    Result<std::optional<SegmentHead>> scan(const std::string& path) {
        auto src = FileSource::open(path);
        if (!src) return std::move(src).error();
        const std::uint64_t size = (*src)->size();
        LineReader reader(std::move(*src), kMaxLineBytes, 8192);
        Line line;
        auto got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got) {
            fault(FaultKind::not_a_segment, path, 0, 0, "empty file");
            return std::optional<SegmentHead>{};
        }
        auto open = line.too_long ? Result<OpenLine>(make_error(errc::bad_format, "line too long"))
                                  : parse_open_line(line.text);
        if (!open || !line.terminated) {
            fault(FaultKind::not_a_segment, path, 1, 0,
                  "does not start with an open line: " + (open ? std::string("torn line") : open.error().message));
            return std::optional<SegmentHead>{};
        }
        return std::optional<SegmentHead>(SegmentHead{path, std::move(*open), size});
    }

    Status verify_chain(const std::vector<SegmentHead>& chain) {
        std::optional<ChainEnd> prev;
        std::string serial;
        for (std::size_t i = 0; i < chain.size(); ++i) {
            const SegmentHead& seg = chain[i];
            const bool newest = i + 1 == chain.size();
            if (i == 0) serial = seg.open.serial;
            if (prev && seg.open.epoch == prev->epoch) {
                fault(FaultKind::segment_duplicate, seg.path, 1, 0,
                      "epoch " + std::to_string(seg.open.epoch) + " appears again (also in " + prev->file +
                          "): duplicated or replayed segment");
                bytes_done_ += seg.size;
                continue;
            }
            if (prev && seg.open.epoch > prev->epoch + 1) {
                fault(FaultKind::segment_missing, seg.path, 1, seg.open.first_seq,
                      "segments of epochs " + std::to_string(prev->epoch + 1) + " to " +
                          std::to_string(seg.open.epoch - 1) + " are missing (records from " +
                          std::to_string(prev->next_seq) + " to " + std::to_string(seg.open.first_seq - 1) + ")");
            } else if (prev) {
                if (seg.open.prev != prev->end_mac)
                    fault(FaultKind::chain_link_broken, seg.path, 1, seg.open.first_seq,
                          "does not continue " + prev->file + ": its 'prev' is not that segment's last MAC");
                if (seg.open.first_seq > prev->next_seq)
                    fault(FaultKind::sequence_gap, seg.path, 1, prev->next_seq,
                          "records " + std::to_string(prev->next_seq) + " to " +
                              std::to_string(seg.open.first_seq - 1) + " are missing between " + prev->file +
                              " and this segment");
                else if (seg.open.first_seq < prev->next_seq)
                    fault(FaultKind::sequence_duplicate, seg.path, 1, seg.open.first_seq,
                          "starts at record " + std::to_string(seg.open.first_seq) + " but " + prev->file +
                              " already reached " + std::to_string(prev->next_seq - 1));
            }
            if (seg.open.serial != serial)
                fault(FaultKind::foreign_module, seg.path, 1, 0,
                      "module serial " + seg.open.serial + " differs from the chain's serial " + serial);
            auto end = verify_segment(seg, newest);
            if (!end) return std::move(end).error();
            prev = std::move(*end);
        }
        return {};
    }

    Result<ChainEnd> verify_segment(const SegmentHead& seg, bool newest) {
        auto src = FileSource::open(seg.path);
        if (!src) return std::move(src).error();
        LineReader reader(std::move(*src), kMaxLineBytes);
        const std::string& file = seg.path;
        const OpenLine& open = seg.open;

        SegmentReport sr;
        sr.file = file;
        sr.serial = open.serial;
        sr.epoch = open.epoch;
        sr.first_seq = open.first_seq;
        sr.bytes = seg.size;

        Line line;
        auto got = reader.next(line);  // the open line, parsed by scan()
        if (!got) return std::move(got).error();
        std::string scratch(line.text);
        scratch += '\n';
        const bool check_macs = deriver_.has_value() && macs_enabled_;
        if (check_macs) HSMAUDIT_TRY(hmac_->rekey(deriver_->key_for(open.epoch)));
        bool open_mac_ok = true;
        if (check_macs) {
            const std::string_view body = std::string_view(line.text).substr(0, line.text.size() - 69);
            open_mac_ok = equal_ct(hmac_->compute(as_bytes(body), open.prev), open.mac);
        }
        const bool check_digest = pub_.has_value();
        Bytes32 digest = check_digest ? digest_start(*sha_, scratch) : Bytes32{};
        bool digest_valid = true;  // false once a line could not be hashed as written

        std::uint64_t expected = open.first_seq;
        std::uint64_t last_seq = 0;
        Mac prev_mac = open.prev;
        bool sealed = false;
        bool after_seal_reported = false;
        bool first_record = true;
        std::uint64_t last_progress = 0;

        for (;;) {
            got = reader.next(line);
            if (!got) return std::move(got).error();
            if (!*got) break;
            const std::uint64_t done = bytes_done_ + reader.bytes_consumed();
            if (opt_.progress && done - last_progress > (8u << 20)) {
                last_progress = done;
                opt_.progress(done, total_bytes_);
            }
            if (!line.terminated) {
                fault(FaultKind::torn_line, file, line.number, 0,
                      "the file ends inside a line (" + std::to_string(line.text.size()) +
                          " bytes without LF): torn or truncated");
                break;
            }
            if (sealed) {
                if (!after_seal_reported)
                    fault(FaultKind::data_after_seal, file, line.number, 0, "lines after the seal");
                after_seal_reported = true;
                continue;
            }
            if (line.too_long) {
                fault(FaultKind::malformed_line, file, line.number, 0,
                      "line longer than " + std::to_string(kMaxLineBytes) + " bytes");
                digest_valid = false;
                continue;
            }
            if (check_digest) {
                // Hash every line as written, except the seal, which carries the digest.
                if (classify_line(line.text) != LineKind::seal) {
                    scratch.assign(line.text);
                    scratch += '\n';
                    digest = digest_next(*sha_, digest, scratch);
                }
            }
            switch (classify_line(line.text)) {
                case LineKind::record: {
                    auto rec = split_record_line(line.text);
                    if (!rec) {
                        fault(FaultKind::malformed_line, file, line.number, 0, rec.error().message);
                        continue;
                    }
                    const bool mac_ok =
                        !check_macs || equal_ct(hmac_->compute(as_bytes(rec->body), prev_mac), rec->mac);
                    if (check_macs && first_record && !mac_ok && !open_mac_ok && !wrong_key_checked_) {
                        // Neither the open line nor the first record verify: the key is wrong.
                        fault(FaultKind::wrong_key, file, line.number, rec->seq,
                              "the audit secret does not verify this chain (open line and first record both fail); "
                              "MAC checks skipped");
                        macs_enabled_ = false;
                        return finish_without_macs(seg, newest);
                    }
                    if (first_record && check_macs) {
                        wrong_key_checked_ = true;
                        if (!open_mac_ok) fault(FaultKind::open_mac_mismatch, file, 1, 0, "the open line was modified");
                    }
                    first_record = false;
                    const std::string suffix = mac_ok ? "" : " (its MAC fails too)";
                    if (rec->seq == expected) {
                        if (!mac_ok)
                            fault(FaultKind::record_mac_mismatch, file, line.number, rec->seq,
                                  "record modified, forged or inserted: MAC mismatch");
                    } else if (rec->seq > expected) {
                        fault(FaultKind::sequence_gap, file, line.number, expected,
                              "records " + std::to_string(expected) + " to " + std::to_string(rec->seq - 1) +
                                  " are missing before record " + std::to_string(rec->seq) + suffix);
                    } else if (rec->seq == last_seq) {
                        fault(
                            FaultKind::sequence_duplicate, file, line.number, rec->seq,
                            "record " + std::to_string(rec->seq) + " appears twice (duplicated or inserted)" + suffix);
                    } else {
                        fault(FaultKind::sequence_reordered, file, line.number, rec->seq,
                              "record " + std::to_string(rec->seq) + " comes after record " + std::to_string(last_seq) +
                                  " (reordered or inserted)" + suffix);
                    }
                    expected = std::max(expected, rec->seq + 1);
                    last_seq = rec->seq;
                    prev_mac = rec->mac;  // resynchronise on the claimed MAC: one fault per damaged line
                    ++sr.records;
                    note_time(rec->body);
                    break;
                }
                case LineKind::seal: {
                    sealed = true;
                    auto parsed = parse_seal_line(line.text);
                    if (!parsed) {
                        fault(FaultKind::malformed_line, file, line.number, 0,
                              "malformed seal: " + parsed.error().message);
                        break;
                    }
                    check_seal(*parsed, open, sr.records, expected, prev_mac, digest, digest_valid && check_digest,
                               check_macs, file, line.number);
                    break;
                }
                case LineKind::open:
                    fault(FaultKind::malformed_line, file, line.number, 0, "a second open line inside a segment");
                    break;
                case LineKind::unknown:
                    fault(FaultKind::malformed_line, file, line.number, 0, "not a record, open or seal line");
                    break;
            }
        }
        if (check_macs && first_record && !open_mac_ok && !wrong_key_checked_) {
            fault(FaultKind::open_mac_mismatch, file, 1, 0,
                  "the open line does not verify (modified, or the key is wrong)");
        }
        bytes_done_ += seg.size;
        sr.sealed = sealed;
        sr.last_seq = expected - 1;
        if (!sealed) {
            if (newest && !opt_.require_sealed) {
                sr.open_tail = true;
                ++report_.open_segments;
            } else {
                fault(FaultKind::seal_missing, file, 0, 0,
                      newest ? "the newest segment is not sealed (--require-sealed)"
                             : "not sealed although later segments exist: truncated, or its seal was removed");
            }
        } else {
            ++report_.sealed_segments;
        }
        add_segment(sr);
        return ChainEnd{open.epoch, expected, prev_mac, file};
    }

    /// After a wrong-key verdict: structure and seals only.
    Result<ChainEnd> finish_without_macs(const SegmentHead& seg, bool newest) {
        // Re-run this segment without MAC checks; it is cheap relative to the work saved.
        return verify_segment(seg, newest);
    }

    void check_seal(const ParsedSeal& p, const OpenLine& open, std::uint64_t records, std::uint64_t next_seq,
                    const Mac& last_mac, const Bytes32& digest, bool check_digest, bool check_macs,
                    const std::string& file, std::uint64_t line) {
        const SealLine& s = p.seal;
        if (s.chain != open.chain || s.serial != open.serial || s.epoch != open.epoch)
            fault(FaultKind::seal_mismatch, file, line, 0,
                  "the seal names another chain, module or epoch than the open line");
        if (s.records != records || s.first_seq != open.first_seq || s.last_seq != next_seq - 1)
            fault(FaultKind::seal_mismatch, file, line, 0,
                  "the seal covers records " + std::to_string(s.first_seq) + " to " + std::to_string(s.last_seq) +
                      " (" + std::to_string(s.records) + ") but the segment holds " + std::to_string(records) +
                      " records up to " + std::to_string(next_seq - 1));
        if (s.final_mac != last_mac)
            fault(FaultKind::seal_mismatch, file, line, 0, "the seal's final MAC is not the last record's MAC");
        if (check_digest && s.digest != digest)
            fault(FaultKind::digest_mismatch, file, line, 0,
                  "the bytes before the seal are not the bytes that were sealed");
        if (check_macs && !equal_ct(hmac_->compute(as_bytes(p.mac_body), s.final_mac), s.mac))
            fault(FaultKind::seal_mac_mismatch, file, line, 0, "the seal line was modified (MAC mismatch)");
        if (pub_ && !pub_->pubkey.verify(as_bytes(p.signed_body), s.sig))
            fault(FaultKind::bad_signature, file, line, 0, "the seal's signature does not verify");
    }

    void note_time(std::string_view body) {
        const auto sp = body.find(' ');
        if (sp == std::string_view::npos) return;
        auto t = parse_time(body.substr(sp + 1, 24));
        if (!t) return;
        if (report_.records == 0 || *t < report_.first_time_ms) report_.first_time_ms = *t;
        if (report_.records == 0 || *t > report_.last_time_ms) report_.last_time_ms = *t;
        ++report_.records;
    }

    void add_segment(const SegmentReport& sr) {
        if (sr.records > 0) {
            if (report_.first_seq == 0 || sr.first_seq < report_.first_seq) report_.first_seq = sr.first_seq;
            report_.last_seq = std::max(report_.last_seq, sr.last_seq);
        }
        report_.bytes += sr.bytes;
        report_.segments.push_back(sr);
    }

    void fault(FaultKind kind, const std::string& file, std::uint64_t line, std::uint64_t seq, std::string message) {
        ++report_.faults_total;
        ++report_.fault_counts[static_cast<std::size_t>(kind)];
        if (report_.faults.size() < opt_.max_faults)
            report_.faults.push_back(Fault{kind, file, line, seq, std::move(message)});
    }

    const VerifyOptions& opt_;
    std::optional<AuditPub> pub_;
    std::optional<EpochKeyDeriver> deriver_;
    std::optional<Sha256> sha_;
    std::optional<HmacSha256> hmac_;
    std::vector<SegmentHead> foreign_;
    bool macs_enabled_ = true;
    bool wrong_key_checked_ = false;
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
