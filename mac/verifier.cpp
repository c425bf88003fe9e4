#include "mac/verifier.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <thread>
#include <variant>

#include "base/line_reader.h"
#include "mac/anchors.h"
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
        case FaultKind::anchor_record_missing: return "anchor_record_missing";
        case FaultKind::trail_head_missing: return "trail_head_missing";
        case FaultKind::malformed_record: return "malformed_record";
        case FaultKind::unreadable_path: return "unreadable_path";
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

/// How a segment verified apart from its chain checks MACs: what the chain's verifier would have
/// done at that point of the chain. `checker`: the audit secret, and this segment's first record
/// gives the chain's wrong-key verdict; `assumed`: the secret, the verdict given by an earlier
/// segment; `none`: no MACs (no secret, or a wrong-key verdict before), digests and seals only.
enum class MacMode : std::uint8_t { checker, assumed, none };

/// A record of the segment whose sequence number a checkpoint (--anchors) names: the anchor
/// checker sees it, in chain order, when the segment is merged.
/// The report line of one verified segment (the one-thread and the parallel paths give the same).
SegmentReport segment_report(const SegmentHead& seg, const SegmentTotals& t, bool open_tail) {
    SegmentReport sr;
    sr.file = seg.path;
    sr.serial = seg.open.serial;
    sr.epoch = seg.open.epoch;
    sr.first_seq = seg.open.first_seq;
    sr.last_seq = t.last_seq;
    sr.records = t.records;
    sr.bytes = seg.size;
    sr.sealed = t.sealed;
    sr.open_tail = open_tail;
    sr.authenticated = t.authenticated;
    return sr;
}

struct AnchorHit {
    std::uint64_t seq = 0;
    Mac mac{};
    std::uint64_t line = 0;
};

/// One segment verified apart from the chain (by a worker of SegmentPool, or inline), and what
/// verify_chain_parallel() merges in chain order: its faults in the order found (at most
/// max_faults kept in full, the rest counted: no merged report keeps more of one segment),
/// anchor hits among them, its totals and where it ends the chain.
struct SegmentJob {
    SegmentJob() = default;
    SegmentJob(const SegmentJob&) = delete;
    SegmentJob& operator=(const SegmentJob&) = delete;
    ~SegmentJob() { secure_zero(epoch_key.data(), epoch_key.size()); }

    // Set before it runs.
    const SegmentHead* seg = nullptr;
    bool newest = false;
    bool predicted = false;  // expected to be accepted by the chain: run ahead
    MacMode mode = MacMode::none;
    Bytes32 epoch_key{};  // K_epoch (modes checker and assumed)
    bool has_key = false;

    // Its results.
    bool done = false;     // guarded by SegmentPool's mutex while in the pool
    bool skipped = false;  // could not be opened or read again: its path faults only
    std::string open_text;
    std::vector<std::variant<Fault, AnchorHit>> events;
    std::size_t kept = 0;
    std::array<std::uint64_t, kFaultKindCount> dropped{};
    std::set<std::uint64_t> hit_seqs;  // anchored records seen: only the first of each counts
    SegmentTotals totals;
    std::optional<ChainEnd> end;
    bool checked_macs = false;         // its records' MACs were checked from its start
    bool wrong_key = false;            // it gave the wrong-key verdict
    std::optional<std::string> error;  // an exception in its worker (out of memory)

    void add_fault(Fault&& f, std::size_t max_faults) {
        if (kept < max_faults) {
            ++kept;
            events.emplace_back(std::move(f));
        } else {
            ++dropped[static_cast<std::size_t>(f.kind)];
        }
    }
    void reset_results() {
        skipped = false;
        open_text.clear();
        events.clear();
        kept = 0;
        dropped = {};
        hit_seqs.clear();
        totals = SegmentTotals{};
        end.reset();
        checked_macs = false;
        wrong_key = false;
    }
};

/// The worker threads of one parallel verify_paths() call: they take jobs in the order pushed and
/// run `work` on each. Thread-safety: push() and wait() are called by the owning thread; a worker
/// touches only the job it took (and its `done` under the mutex). The destructor stops and joins
/// the workers (a job being run is finished first; jobs not taken yet are dropped).
class SegmentPool {
public:
    SegmentPool(unsigned threads, std::function<void(SegmentJob&)> work) : work_(std::move(work)) {
        threads_.reserve(threads);
        for (unsigned i = 0; i < threads; ++i)
            threads_.emplace_back([this](const std::stop_token& stop) { loop(stop); });
    }
    ~SegmentPool() {
        for (auto& t : threads_) t.request_stop();
        threads_.clear();  // joins
    }
    SegmentPool(const SegmentPool&) = delete;
    SegmentPool& operator=(const SegmentPool&) = delete;

    void push(SegmentJob* job) {
        {
            const std::lock_guard lock(mutex_);
            queue_.push_back(job);
        }
        wake_.notify_one();
    }
    /// Blocks until `job` (pushed before) is done.
    void wait(const SegmentJob& job) {
        std::unique_lock lock(mutex_);
        done_.wait(lock, [&job] { return job.done; });
    }

private:
    void loop(const std::stop_token& stop) {
        for (;;) {
            SegmentJob* job = nullptr;
            {
                std::unique_lock lock(mutex_);
                if (!wake_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
                job = queue_.front();
                queue_.pop_front();
            }
            try {
                work_(*job);
            } catch (const std::exception& e) {
                job->error = std::string("verifying ") + job->seg->path + ": " + e.what();
            } catch (...) {
                job->error = "verifying " + job->seg->path + ": unexpected error";
            }
            {
                const std::lock_guard lock(mutex_);
                job->done = true;
            }
            done_.notify_all();
        }
    }

    std::function<void(SegmentJob&)> work_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::condition_variable done_;
    std::deque<SegmentJob*> queue_;
    std::vector<std::jthread> threads_;  // last: joined before the rest is destroyed
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

        const ChainId key_chain = opt_.key ? opt_.key->chain() : opt_.pub->chain;
        const ChainId expected = opt_.expect_chain.value_or(key_chain);
        report_.chain_hex = hex_encode(expected);
        if (opt_.expect_serial) report_.serial = *opt_.expect_serial;
        if (expected != key_chain) {
            // A key of another chain can prove nothing of the chain expected: the trail is not
            // reported as a verified trail of the key's chain.
            fault(Fault{FaultKind::wrong_key, "(keys)", 0, 0,
                        "the key given is for chain " + hex_encode(key_chain) + ", not for the expected chain " +
                            hex_encode(expected) + " (--chain): nothing was verified"});
            return std::move(report_);
        }
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
        drop_identical_copies(chain);
        if (report_.serial.empty() && !chain.empty()) report_.serial = chain.front().open.serial;
        HSMAUDIT_TRY(check_anchors(
            opt_, expected, report_, [this](Fault&& f) { fault(std::move(f)); },
            [&](const AnchorRecordObserver& anchors) { return verify_chain(chain, expected, anchors); }));
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
                return make_error(errc::io_error,
                                  "cannot access " + p + ": " + (ec ? ec.message() : "no such file or directory"));
            if (fs::is_directory(st)) {
                HSMAUDIT_TRY(walk(p));
            } else if (fs::is_regular_file(st)) {
                HSMAUDIT_TRY(add_input(p));
            } else {
                // Never opened: a FIFO without a writer would block, a device could be endless.
                return make_error(errc::io_error, p + " is not a regular file or directory (FIFO, socket or device)");
            }
        }
        return {};
    }

    void path_fault(const std::string& path, std::string message) {
        fault(Fault{FaultKind::unreadable_path, path, 0, 0, std::move(message)});
    }

    /// Finds the segment files (*.log) and containers below `root`, without following symbolic
    /// links to directories (no loop can be entered); every entry that cannot be read or
    /// resolved, and every candidate that is not a regular file, is an unreadable_path fault.
    Status walk(const std::string& root) {
        std::vector<std::string> found;
        std::vector<fs::path> dirs{fs::path(root)};
        while (!dirs.empty()) {
            const fs::path dir = std::move(dirs.back());
            dirs.pop_back();
            std::error_code ec;
            fs::directory_iterator it(dir, ec);
            if (ec) {
                path_fault(dir.string(), "cannot list this directory: " + ec.message());
                continue;
            }
            for (const fs::directory_iterator end; it != end; it.increment(ec)) {
                const fs::path& path = it->path();
                const std::string name = path.string();
                // An archive still being written (".tmp-", docs/FORMAT.md 9.1) may be torn and
                // duplicates segments still waiting: not part of the trail.
                const bool partial = path.filename().string().starts_with(".tmp-");
                const bool candidate = path.extension() == ".log" || (is_container(name) && !partial);
                std::error_code lec;
                const auto lst = it->symlink_status(lec);
                if (lec) {
                    path_fault(name, "cannot read this entry: " + lec.message());
                    continue;
                }
                if (fs::is_directory(lst)) {
                    dirs.push_back(path);
                    continue;
                }
                auto st = lst;
                if (fs::is_symlink(lst)) {
                    std::error_code sec;
                    st = fs::status(path, sec);
                    const bool dangling = !sec || sec == std::errc::no_such_file_or_directory;
                    if (sec || !fs::exists(st)) {
                        // A dangling link of another name is no business of the trail's; a loop
                        // (or a denied lookup) could hide anything, whatever its name.
                        if (candidate || !dangling)
                            path_fault(name, std::string("a symbolic link that cannot be followed (") +
                                                 (sec ? sec.message() : "dangling") + "): not read");
                        continue;
                    }
                    if (fs::is_directory(st)) continue;  // links to directories are not followed
                }
                if (!candidate) continue;
                if (!fs::is_regular_file(st)) {
                    path_fault(name, "not a regular file (FIFO, socket or device): not read");
                    continue;
                }
                found.push_back(name);
            }
            if (ec) path_fault(dir.string(), "cannot list all of this directory: " + ec.message());
        }
        std::sort(found.begin(), found.end());
        for (const auto& f : found) HSMAUDIT_TRY(add_input(f));
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

    /// A digest of an input's whole plaintext: SHA-256 chained over 64 KiB blocks. nullopt if it
    /// cannot be read whole (damage, I/O): such a file is no copy; the chain rules report it.
    std::optional<Bytes32> content_digest(const Input& in) {
        auto opened = open_input(in);
        if (!opened) return std::nullopt;
        auto sha = Sha256::create();
        if (!sha) return std::nullopt;
        Bytes32 h{};
        std::string block(std::size_t{64} * 1024, '\0');
        for (;;) {
            std::size_t have = 0;
            while (have < block.size()) {
                auto n = opened->plain->read(std::span<char>(block.data() + have, block.size() - have));
                if (!n) return std::nullopt;
                if (*n == 0) break;
                have += *n;
            }
            if (have > 0) h = sha->compute(h, as_bytes(std::string_view(block.data(), have)));
            if (have < block.size()) break;
        }
        if (opened->plain->damage() || (opened->member != nullptr && opened->member->damage())) return std::nullopt;
        return h;
    }

    /// A segment file and an archive member of one epoch holding exactly the same bytes (after
    /// decryption) are one segment stored twice, not a replay: a crash between an archive's rename
    /// and the removal of the segments it holds leaves such copies (FORMAT.md 3, step 2). The copy
    /// is verified once and listed in the report; files of one epoch that differ, and two files
    /// outside archives, stay `segment_duplicate`.
    void drop_identical_copies(std::vector<SegmentHead>& chain) {
        std::vector<SegmentHead> kept;
        kept.reserve(chain.size());
        std::optional<Bytes32> kept_digest;  // of kept.back(), computed when a same-epoch file follows
        for (auto& seg : chain) {
            // Only a copy across an archive and a file outside archives (the archiver's window);
            // two plain files of one epoch stay segment_duplicate (a replay in a newer one's place).
            if (!kept.empty() && kept.back().open.epoch == seg.open.epoch &&
                (kept.back().input->open_member != nullptr) != (seg.input->open_member != nullptr)) {
                if (!kept_digest) kept_digest = content_digest(*kept.back().input);
                const auto digest = content_digest(*seg.input);
                if (kept_digest && digest && *kept_digest == *digest) {
                    report_.identical_copies.push_back(IdenticalCopy{seg.path, kept.back().path});
                    bytes_done_ += seg.size;
                    continue;
                }
            }
            kept.push_back(std::move(seg));
            kept_digest.reset();
        }
        chain = std::move(kept);
    }

    Result<Opened> open_input(const Input& in) const {
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
            if (ec) {
                path_fault(path, "cannot stat: " + ec.message());
                return std::optional<SegmentHead>{};
            }
        }
        auto opened = open_input(in);
        if (!opened) {
            // An encrypted file without the audit key: a usage error (FORMAT.md 8.1), not a fault.
            if (opened.error().code == errc::bad_key) return std::move(opened).error();
            path_fault(path, "cannot open: " + opened.error().message);
            return std::optional<SegmentHead>{};
        }
        base::ByteSource* member = opened->member;
        base::ByteSource* plain = opened->plain.get();
        base::LineReader reader(std::move(opened->plain), kMaxLineBytes, 8192);
        base::Line line;
        auto got = reader.next(line);
        if (!got) {
            path_fault(path, "cannot read: " + got.error().message);
            return std::optional<SegmentHead>{};
        }
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

    Status verify_chain(const std::vector<SegmentHead>& chain, const ChainId& expected,
                        const AnchorRecordObserver& anchors) {
        ChainVerifier cv(key(), opt_.pub ? &*opt_.pub : nullptr, [this](Fault&& f) { fault(std::move(f)); });
        if (opt_.expect_serial) cv.expect_serial(*opt_.expect_serial);
        // A checkpoint signed by this chain's key justifies epochs up to its own (the segments
        // before it may have been deleted by retention).
        // Each signature is checked once here (there may be thousands of checkpoints).
        const Ed25519PublicKey* signer = opt_.key ? &opt_.key->pubkey() : &opt_.pub->pubkey;
        std::optional<std::uint64_t> justified;
        for (const Checkpoint& c : opt_.anchors)
            if (c.chain == expected && (!justified || c.epoch > *justified) && c.verify(*signer)) justified = c.epoch;
        if (justified) cv.justify_epoch(*justified);
        if (anchors)
            cv.set_record_observer([this, &anchors](std::uint64_t seq, const Mac& mac, std::uint64_t line) {
                anchors(current_file_, seq, mac, line);
            });
        // The newest segment is the newest the epoch bound lets in: a forged far epoch after it
        // must not turn the real open tail into a missing seal. (The same rule on a probe.)
        const AuditPub pub = opt_.key ? opt_.key->pub() : *opt_.pub;
        ChainVerifier probe(nullptr, &pub, [](Fault&&) {});
        std::size_t newest_index = chain.size();
        if (justified) probe.justify_epoch(*justified);
        for (std::size_t i = 0; i < chain.size(); ++i) {
            if (!probe.epoch_in_range(chain[i].open.epoch)) continue;
            probe.resume(ChainEnd{chain[i].open.epoch, 1, Mac{}, {}});
            newest_index = i;
        }
        if (opt_.jobs > 1 && !opt_.on_record_line)
            return verify_chain_parallel(chain, expected, anchors, newest_index, justified);
        for (std::size_t i = 0; i < chain.size(); ++i) {
            const SegmentHead& seg = chain[i];
            const bool newest = i == newest_index;
            current_file_ = seg.path;
            auto opened = open_input(*seg.input);
            if (!opened) {
                path_fault(seg.path, "cannot open: " + opened.error().message);
                bytes_done_ += seg.size;
                continue;
            }
            base::ByteSource* raw = opened->plain.get();
            base::ByteSource* member = opened->member;
            base::LineReader reader(std::move(opened->plain), kMaxLineBytes);
            base::Line line;
            auto got = reader.next(line);  // the open line, parsed by scan()
            if (!got || !*got) {
                path_fault(seg.path,
                           "cannot read it again: " + (got ? std::string("it is empty now") : got.error().message));
                bytes_done_ += seg.size;
                continue;
            }
            if (!cv.begin_segment(seg.open, line.text, seg.path)) {
                bytes_done_ += seg.size;
                continue;
            }
            std::uint64_t last_progress = 0;
            for (;;) {
                got = reader.next(line);
                if (!got) {
                    path_fault(seg.path, "cannot read it to its end: " + got.error().message);
                    break;
                }
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
            add_segment(segment_report(seg, t, newest && !t.sealed && !opt_.require_sealed), t);
        }
        return {};
    }

    /// verify_chain() on opt_.jobs threads: each segment is verified apart (SegmentJob, its epoch
    /// key derived here in chain order and handed over) while this thread merges the results in
    /// chain order through `linker`, a verifier without the secret that sees only the open lines and
    /// the segments' ends: it checks the links, the epochs, duplicates and serials exactly as
    /// verify_chain()'s verifier, in the same order. A segment verified in a mode the chain did
    /// not reach it in (a wrong-key verdict before it, the chain's first record not where
    /// expected), or not run because it was not expected to be accepted, is verified again here
    /// in the right one: the report is verify_chain()'s.
    Status verify_chain_parallel(const std::vector<SegmentHead>& chain, const ChainId& expected,
                                 const AnchorRecordObserver& anchors, std::size_t newest_index,
                                 std::optional<std::uint64_t> justified) {
        const AuditPub pub = opt_.pub ? *opt_.pub : opt_.key->pub();
        pub_ = &pub;
        anchor_seqs_.clear();
        if (anchors)
            for (const Checkpoint& c : opt_.anchors)
                if (c.chain == expected && c.seq != 0) anchor_seqs_.push_back(c.seq);
        std::sort(anchor_seqs_.begin(), anchor_seqs_.end());

        ChainVerifier linker(nullptr, &pub, [this](Fault&& f) { fault(std::move(f)); });
        if (opt_.expect_serial) linker.expect_serial(*opt_.expect_serial);
        if (justified) linker.justify_epoch(*justified);
        // Predicts which segments the linker will accept (the same epoch bound, ignoring segments
        // that turn out unreadable): those are run ahead; a wrong guess costs a run here, never a
        // derivation towards an epoch the bound refuses.
        ChainVerifier predict(nullptr, &pub, [](Fault&&) {});
        if (justified) predict.justify_epoch(*justified);
        std::optional<std::uint64_t> predicted_end;
        std::optional<EpochKeyDeriver> deriver;
        if (opt_.key) deriver.emplace(*opt_.key);
        bool macs_on = opt_.key.has_value();  // no wrong-key verdict yet
        bool key_checked = false;             // the wrong-key verdict was given (it passed)
        bool checker_sent = false;

        const std::size_t in_flight = std::size_t{2} * opt_.jobs;
        std::deque<std::unique_ptr<SegmentJob>> window;  // before the pool: the pool stops first
        SegmentPool pool(opt_.jobs, [this](SegmentJob& job) { run_segment(job); });
        std::size_t next = 0;
        std::uint64_t last_progress = 0;

        auto key_for = [&](SegmentJob& job) {
            if (job.mode != MacMode::none && !job.has_key) {
                job.epoch_key = deriver->key_for(job.seg->open.epoch);
                job.has_key = true;
            }
        };
        auto submit = [&](std::size_t i) {
            auto job = std::make_unique<SegmentJob>();
            job->seg = &chain[i];
            job->newest = i == newest_index;
            const std::uint64_t epoch = chain[i].open.epoch;
            job->predicted = !(predicted_end && epoch <= *predicted_end) && predict.epoch_in_range(epoch);
            if (job->predicted) {
                predict.resume(ChainEnd{epoch, 1, Mac{}, {}});
                predicted_end = epoch;
                if (!macs_on) {
                    job->mode = MacMode::none;
                } else if (!checker_sent) {
                    job->mode = MacMode::checker;
                    checker_sent = true;
                } else {
                    job->mode = MacMode::assumed;
                }
                key_for(*job);
                if (chain[i].input->open_member) {
                    run_segment(*job);  // a container's members: this thread only
                    job->done = true;
                } else {
                    pool.push(job.get());
                }
            } else {
                job->done = true;
            }
            window.push_back(std::move(job));
        };

        while (next < chain.size() || !window.empty()) {
            while (next < chain.size() && window.size() < in_flight) submit(next++);
            SegmentJob& job = *window.front();
            if (job.predicted) pool.wait(job);
            if (job.error) return make_error(errc::io_error, *job.error);
            const SegmentHead& seg = *job.seg;
            current_file_ = seg.path;
            // Not run ahead: its open line read here first, as verify_chain() does before the link.
            if (!job.predicted) {
                job.mode = MacMode::none;
                open_segment(job);
            }
            const auto close = [&] {
                bytes_done_ += seg.size;
                if (opt_.progress && bytes_done_ - last_progress > (8u << 20)) {
                    last_progress = bytes_done_;
                    opt_.progress(bytes_done_, total_bytes_);
                }
                window.pop_front();
            };
            if (job.skipped) {
                replay(job, anchors);
                close();
                continue;
            }
            if (!linker.begin_segment(seg.open, job.open_text, seg.path)) {
                close();
                continue;
            }
            const MacMode required = !macs_on ? MacMode::none : key_checked ? MacMode::assumed : MacMode::checker;
            const bool usable =
                job.predicted && (job.mode == required ||
                                  (required == MacMode::assumed && job.mode == MacMode::checker && !job.wrong_key));
            if (!usable) {
                job.reset_results();
                job.mode = required;
                key_for(job);
                run_segment(job);
                if (job.error) return make_error(errc::io_error, *job.error);
                if (job.skipped) {  // it changed since: as verify_chain() would have found it
                    replay(job, anchors);
                    linker.end_segment(true);
                    close();
                    continue;
                }
            }
            replay(job, anchors);
            if (required == MacMode::checker && job.checked_macs && job.totals.records > 0) key_checked = true;
            if (job.wrong_key) macs_on = false;
            linker.end_segment(true);
            if (job.end) linker.resume(*job.end);
            const SegmentTotals& t = job.totals;
            add_segment(segment_report(seg, t, job.newest && !t.sealed && !opt_.require_sealed), t);
            close();
        }
        return {};
    }

    /// Hands a job's faults and anchor hits to the report and the anchor checker, in its order.
    void replay(SegmentJob& job, const AnchorRecordObserver& anchors) {
        for (auto& e : job.events) {
            if (auto* f = std::get_if<Fault>(&e)) {
                fault(std::move(*f));
            } else if (anchors) {
                const auto& hit = std::get<AnchorHit>(e);
                anchors(job.seg->path, hit.seq, hit.mac, hit.line);
            }
        }
        for (std::size_t k = 0; k < kFaultKindCount; ++k) {
            report_.faults_total += job.dropped[k];
            report_.fault_counts[k] += job.dropped[k];
        }
        job.events.clear();
        job.dropped = {};
    }

    /// A job's segment opened and its open line read (what verify_chain() does before the link);
    /// what cannot be: `skipped`, with its fault. The reader stays in `open_reader_` for the rest.
    struct OpenedSegment {
        std::unique_ptr<base::LineReader> reader;
        base::ByteSource* raw = nullptr;
        base::ByteSource* member = nullptr;
    };
    OpenedSegment open_segment(SegmentJob& job) const {
        const SegmentHead& seg = *job.seg;
        auto path_fault_to = [&](std::string message) {
            job.add_fault(Fault{FaultKind::unreadable_path, seg.path, 0, 0, std::move(message)}, opt_.max_faults);
            job.skipped = true;
        };
        auto opened = open_input(*seg.input);
        if (!opened) {
            path_fault_to("cannot open: " + opened.error().message);
            return {};
        }
        OpenedSegment out;
        out.raw = opened->plain.get();
        out.member = opened->member;
        out.reader = std::make_unique<base::LineReader>(std::move(opened->plain), kMaxLineBytes);
        base::Line line;
        auto got = out.reader->next(line);
        if (!got || !*got) {
            path_fault_to("cannot read it again: " + (got ? std::string("it is empty now") : got.error().message));
            return {};
        }
        job.open_text.assign(line.text);
        return out;
    }

    /// Verifies one segment apart from the chain, as verify_chain()'s verifier would at its place
    /// in the chain in job.mode; faults and anchor hits go into the job. Runs on a worker thread
    /// (files) or on the calling thread (members, re-runs): touches nothing of the Verifier's but
    /// what is const during the run.
    void run_segment(SegmentJob& job) const {
        const SegmentHead& seg = *job.seg;
        OpenedSegment opened = open_segment(job);
        if (job.skipped) return;
        const bool macs = job.mode != MacMode::none;
        ChainVerifier cv(macs ? key() : nullptr, macs ? (opt_.pub ? &*opt_.pub : nullptr) : pub_,
                         [this, &job](Fault&& f) { job.add_fault(std::move(f), opt_.max_faults); });
        if (macs) cv.seed_epoch_key(seg.open.epoch, job.epoch_key);
        if (job.mode == MacMode::assumed) cv.assume_key_checked();
        // The links, the epoch bound and the serial are the merging linker's to check.
        cv.justify_epoch(seg.open.epoch);
        cv.expect_serial(seg.open.serial);
        if (!anchor_seqs_.empty())
            cv.set_record_observer([this, &job](std::uint64_t seq, const Mac& mac, std::uint64_t line) {
                if (std::binary_search(anchor_seqs_.begin(), anchor_seqs_.end(), seq) &&
                    job.hit_seqs.insert(seq).second)
                    job.events.emplace_back(AnchorHit{seq, mac, line});
            });
        if (!cv.begin_segment(seg.open, job.open_text, seg.path)) {
            job.error = "verifying " + seg.path + ": the segment's own verifier refused its open line";
            return;
        }
        job.checked_macs = cv.checks_macs();
        base::Line line;
        for (;;) {
            auto got = opened.reader->next(line);
            if (!got) {
                job.add_fault(Fault{FaultKind::unreadable_path, seg.path, 0, 0,
                                    "cannot read it to its end: " + got.error().message},
                              opt_.max_faults);
                break;
            }
            if (!*got) break;
            cv.line(line.text, line.number, line.terminated, line.too_long);
        }
        if (auto cut = opened.member != nullptr ? opened.member->damage() : std::nullopt)
            job.add_fault(Fault{FaultKind::archive_damaged, seg.path, 0, 0, *cut}, opt_.max_faults);
        else if (auto damage = opened.raw->damage())
            job.add_fault(Fault{FaultKind::encrypted_damaged, seg.path, 0, 0, *damage}, opt_.max_faults);
        job.totals = cv.end_segment(job.newest && !opt_.require_sealed);
        job.end = cv.chain_end();
        job.wrong_key = macs && cv.wrong_key();
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
        if (!sr.authenticated) report_.unproven_records += sr.records;
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

    const VerifyOptions& opt_;
    const AuditPub* pub_ = nullptr;           // verify_chain_parallel(): what checks seals without MACs
    std::vector<std::uint64_t> anchor_seqs_;  // verify_chain_parallel(): the records checkpoints name
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
