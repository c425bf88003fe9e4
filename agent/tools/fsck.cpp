#include "agent/tools/fsck.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include "agent/api/errc.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/state_layout.h"
#include "base/files.h"
#include "base/line_reader.h"
#include "mac/encrypted_file.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCurrent = kOpenSegmentDir;
constexpr const char* kReady = kSealedSegmentDir;
constexpr const char* kQuarantine = kQuarantineDir;
constexpr const char* kPosition = kPositionFileName;

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

/// What a segment file holds up to its last clean cut point: a file offset before which the
/// data is readable and ends with a complete line (for an encrypted file: at a chunk boundary).
struct SegmentScan {
    bool encrypted = false;
    std::uint64_t file_bytes = 0;
    std::uint64_t cut = 0;       // file offset of the last clean cut point <= the limit
    std::uint64_t lines = 0;     // complete lines before the cut
    std::uint64_t last_seq = 0;  // the last record before the cut (0: none)
    std::optional<mac::OpenLine> open;
    std::optional<mac::ParsedSeal> seal;  // a seal line before the cut (copied fields only)
    std::string seal_text;
    std::optional<std::string> damage;  // why reading stopped early (encrypted files)
};

class LineScanner {
public:
    void feed(std::string_view bytes) {
        for (;;) {
            const auto nl = bytes.find('\n');
            if (nl == std::string_view::npos) {
                if (partial_.size() < mac::kMaxLineBytes + 1)
                    partial_.append(bytes.substr(0, mac::kMaxLineBytes + 1 - partial_.size()));
                partial_bytes_ += bytes.size();
                return;
            }
            if (partial_.size() < mac::kMaxLineBytes + 1)
                partial_.append(bytes.substr(0, std::min(nl, mac::kMaxLineBytes + 1 - partial_.size())));
            line(partial_);
            partial_.clear();
            partial_bytes_ = 0;
            bytes.remove_prefix(nl + 1);
        }
    }
    [[nodiscard]] bool at_line_end() const { return partial_bytes_ == 0; }
    std::uint64_t lines = 0;
    std::uint64_t last_seq = 0;
    std::optional<mac::OpenLine> open;
    std::optional<mac::SealLine> seal;
    std::string seal_text;

private:
    void line(std::string_view text) {
        ++lines;
        switch (mac::classify_line(text)) {
            case mac::LineKind::open:
                if (lines == 1)
                    if (auto o = mac::parse_open_line(text)) open = *o;
                break;
            case mac::LineKind::record:
                if (auto r = mac::split_record_line(text)) last_seq = r->seq;
                break;
            case mac::LineKind::seal:
                if (auto s = mac::parse_seal_line(text)) {
                    seal = s->seal;
                    seal_text = std::string(text);
                }
                break;
            case mac::LineKind::unknown: break;
        }
    }
    std::string partial_;
    std::uint64_t partial_bytes_ = 0;
};

struct ScanResult {
    SegmentScan scan;
    std::optional<mac::SealLine> seal;
};

/// Scans `path`; cut points beyond `limit` (a file offset) are not taken.
Result<ScanResult> scan_segment(const std::string& path, const mac::AuditKey& key, std::uint64_t limit) {
    ScanResult out;
    SegmentScan& s = out.scan;
    std::error_code ec;
    s.file_bytes = fs::file_size(path, ec);
    if (ec) return make_error(errc::io_error, "cannot size " + path + ": " + ec.message());
    auto probe = base::FileSource::open(path);
    if (!probe) return std::move(probe).error();
    char prefix[8];
    auto got = (*probe)->read(prefix);
    if (!got) return std::move(got).error();
    s.encrypted = *got == sizeof prefix && mac::is_encrypted(std::string_view(prefix, sizeof prefix));
    LineScanner lines;
    auto take_cut = [&](std::uint64_t file_offset) {
        if (file_offset > limit || !lines.at_line_end()) return;
        s.cut = file_offset;
        s.lines = lines.lines;
        s.last_seq = lines.last_seq;
        s.open = lines.open;
        out.seal = lines.seal;
        s.seal_text = lines.seal_text;
    };
    std::string buf(std::size_t{64} * 1024, '\0');
    if (s.encrypted) {
        auto store_key = mac::store_key(key);
        if (!store_key) return std::move(store_key).error();
        auto src = mac::EncryptedFileSource::open(path, *store_key);
        mac::secure_zero(store_key->data(), store_key->size());
        if (!src) return std::move(src).error();
        for (;;) {
            const std::uint64_t before = (*src)->valid_bytes();
            auto n = (*src)->read(buf);
            if (!n) return std::move(n).error();
            if (*n == 0) break;
            // A new chunk was opened by this read: the previous chunk ended at `before`.
            if ((*src)->valid_bytes() != before) take_cut(before);
            lines.feed(std::string_view(buf.data(), *n));
        }
        take_cut((*src)->valid_bytes());
        s.damage = (*src)->damage();
    } else {
        auto src = base::FileSource::open(path);
        if (!src) return std::move(src).error();
        std::uint64_t offset = 0;
        take_cut(0);
        for (;;) {
            auto n = (*src)->read(buf);
            if (!n) return std::move(n).error();
            if (*n == 0) break;
            // Every line end is a cut point.
            std::string_view rest(buf.data(), *n);
            while (!rest.empty()) {
                const auto nl = rest.find('\n');
                const std::size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
                lines.feed(rest.substr(0, take));
                offset += take;
                if (nl != std::string_view::npos) take_cut(offset);
                rest.remove_prefix(take);
            }
        }
        if (!lines.at_line_end() && offset == s.file_bytes)
            s.damage = "the file ends inside a line (torn write) at byte " + std::to_string(s.cut);
    }
    return out;
}

std::string stamp() {
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::string t = mac::format_time(now);
    std::replace(t.begin(), t.end(), ':', '-');
    return t;
}

Status fsync_dir(const fs::path& dir) {
    return base::fsync_dir(dir.string());
}

class Quarantine {
public:
    explicit Quarantine(fs::path audit_dir) : audit_(std::move(audit_dir)), dir_(audit_ / kQuarantine) {}

    /// A new path in quarantine/ for `from` (a path under the store) with `suffix`.
    Result<fs::path> target(const fs::path& from, const std::string& suffix) {
        std::error_code ec;
        fs::create_directories(dir_, ec);
        if (ec) return make_error(errc::io_error, "cannot create " + dir_.string() + ": " + ec.message());
        fs::permissions(dir_, fs::perms::owner_all, ec);
        std::string rel = fs::relative(from, audit_, ec).string();
        if (ec || rel.empty()) rel = from.filename().string();
        std::replace(rel.begin(), rel.end(), '/', '_');
        const std::string base = rel + suffix + "." + stamp();
        fs::path to = dir_ / base;
        for (int i = 1; fs::exists(to, ec); ++i) to = dir_ / (base + "." + std::to_string(i));
        return to;
    }
    /// Moves a file (or directory) into quarantine/.
    Result<fs::path> move(const fs::path& from) {
        auto to = target(from, "");
        if (!to) return std::move(to).error();
        std::error_code ec;
        fs::rename(from, *to, ec);
        if (ec)
            return make_error(errc::io_error,
                              "cannot move " + from.string() + " to " + to->string() + ": " + ec.message());
        HSMAUDIT_TRY(fsync_dir(dir_));
        HSMAUDIT_TRY(fsync_dir(from.parent_path()));
        return to;
    }
    /// Copies bytes [offset, end) of `from` into quarantine/ and cuts `from` at offset.
    Result<fs::path> cut_tail(const fs::path& from, std::uint64_t offset) {
        auto to = target(from, ".bytes-from-" + std::to_string(offset));
        if (!to) return std::move(to).error();
        const int in = ::open(from.c_str(), O_RDWR | O_CLOEXEC);
        if (in < 0) return io("cannot open " + from.string());
        const int out = ::open(to->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0) {
            const Error e = io("cannot create " + to->string());
            ::close(in);
            return e;
        }
        Status st;
        char buf[65536];
        auto pos = static_cast<off_t>(offset);
        for (;;) {
            const ssize_t n = ::pread(in, buf, sizeof buf, pos);
            if (n < 0) {
                if (errno == EINTR) continue;
                st = io("cannot read " + from.string());
                break;
            }
            if (n == 0) break;
            if (::write(out, buf, static_cast<std::size_t>(n)) != n) {
                st = io("cannot write " + to->string());
                break;
            }
            pos += n;
        }
        if (st && ::fsync(out) != 0) st = io("cannot fsync " + to->string());
        ::close(out);
        // Cut only once the bytes are safe in quarantine/.
        if (st && ::ftruncate(in, static_cast<off_t>(offset)) != 0) st = io("cannot truncate " + from.string());
        if (st && ::fsync(in) != 0) st = io("cannot fsync " + from.string());
        ::close(in);
        if (!st) return std::move(st).error();
        HSMAUDIT_TRY(fsync_dir(dir_));
        return to;
    }

private:
    fs::path audit_;
    fs::path dir_;
};

/// Copies the first `len` bytes of `from` to `to` (for verifying only the committed part).
Status copy_prefix(const std::string& from, std::uint64_t len, const std::string& to) {
    const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return io("cannot open " + from);
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        const Error e = io("cannot create " + to);
        ::close(in);
        return e;
    }
    Status st;
    char buf[65536];
    std::uint64_t done = 0;
    while (done < len) {
        const ssize_t n = ::read(in, buf, std::min<std::uint64_t>(sizeof buf, len - done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = io("cannot read " + from);
            break;
        }
        if (::write(out, buf, static_cast<std::size_t>(n)) != n) {
            st = io("cannot write " + to);
            break;
        }
        done += static_cast<std::uint64_t>(n);
    }
    ::close(in);
    ::close(out);
    return st;
}

bool file_is_encrypted(const std::string& path) {
    auto src = base::FileSource::open(path);
    if (!src) return false;
    char prefix[8];
    auto n = (*src)->read(prefix);
    return n && *n == sizeof prefix && mac::is_encrypted(std::string_view(prefix, sizeof prefix));
}

bool is_log(const fs::directory_entry& e) {
    std::error_code ec;
    return e.is_regular_file(ec) && e.path().extension() == ".log";
}

std::string slot_text_for_people(const PositionFileState& st, std::size_t i) {
    std::string s = "position slot " + std::to_string(i) + ": ";
    if (st.slot_empty[i]) return s + "never written";
    if (!st.slots[i]) return s + "DAMAGED (checksum or syntax wrong)";
    const StorePosition& p = *st.slots[i];
    s += "generation " + std::to_string(p.generation) + ", entry " + std::to_string(p.entry_no) + ", next seq " +
         std::to_string(p.next_seq) + ", open segment " + (p.current.empty() ? "none" : p.current) + " (" +
         std::to_string(p.current_bytes) + " bytes)";
    if (st.current == static_cast<int>(i)) s += " <- current";
    return s;
}

}  // namespace

Result<FsckReport> fsck_store(const FsckOptions& o) {
    if (o.key == nullptr) return make_error(errc::invalid_argument, "fsck needs the audit key (--key)");
    const fs::path root(o.audit_dir);
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        return make_error(errc::io_error, "no audit store in " + o.audit_dir + " (the directory does not exist)");
    FsckReport rep;
    Quarantine quarantine(root);
    auto finding = [&](std::string kind, std::string path, std::string message) -> FsckFinding& {
        rep.findings.push_back(FsckFinding{std::move(kind), std::move(path), std::move(message), {}});
        return rep.findings.back();
    };
    // Repair actions are collected and run after every check (and the verification) is done, so
    // a wrong key or an I/O error changes nothing.
    std::vector<std::function<Status()>> repairs;
    // The one repair for a file that does not belong: move it aside (never delete) and say where.
    auto quarantine_later = [&](fs::path p, std::size_t idx, std::string why = {}) {
        repairs.push_back([&, p = std::move(p), idx, why = std::move(why)]() -> Status {
            auto to = quarantine.move(p);
            if (!to) return std::move(to).error();
            rep.findings[idx].action = "moved to " + to->string() + why;
            return {};
        });
    };

    // 1. Files that do not belong at the top.
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        // archive/ holds the archiver's bundles (agent/engine/store/archiver.h); fsck leaves it to `hsmaudit verify`.
        if (name == kCurrent || name == kReady || name == kQuarantine || name == kPosition || name == kArchiveDir)
            continue;
        const fs::path p = it->path();
        const std::size_t idx = rep.findings.size();
        finding("unexplained_file", p.string(), "not part of an audit store");
        quarantine_later(p, idx);
    }
    if (ec) return make_error(errc::io_error, "cannot list " + o.audit_dir + ": " + ec.message());

    // 2. The position file.
    auto pf = read_position_file(o.audit_dir);
    if (!pf) return std::move(pf).error();
    const std::string pos_path = (root / kPosition).string();
    for (std::size_t i = 0; i < 2; ++i) rep.checked.push_back(slot_text_for_people(*pf, i));
    std::optional<StorePosition> pos;
    bool rebuild = false;
    if (pf->current >= 0) {
        pos = pf->slots[pf->current];
        const std::size_t other = 1 - static_cast<std::size_t>(pf->current);
        if (!pf->slot_empty[other] && !pf->slots[other])
            rep.checked.push_back("position slot " + std::to_string(other) +
                                  " is damaged but not current (an interrupted write): the agent rewrites it at "
                                  "its next commit");
    }

    // 3. What is in current/ and ready_for_archive/.
    std::vector<fs::path> current_logs, ready_logs;
    for (const char* sub : {kCurrent, kReady}) {
        const fs::path dir = root / sub;
        if (!fs::is_directory(dir, ec)) {
            rep.checked.push_back(dir.string() + " does not exist (created by the agent when it starts)");
            continue;
        }
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            if (is_log(*it)) {
                (std::string_view(sub) == kCurrent ? current_logs : ready_logs).push_back(it->path());
                continue;
            }
            const fs::path p = it->path();
            const std::size_t idx = rep.findings.size();
            finding("unexplained_file", p.string(), "not a segment file (*.log)");
            quarantine_later(p, idx);
        }
        if (ec) return make_error(errc::io_error, "cannot list " + dir.string() + ": " + ec.message());
    }
    std::sort(current_logs.begin(), current_logs.end());
    std::sort(ready_logs.begin(), ready_logs.end());

    if (!pos) {
        const bool empty_file = pf->slot_empty[0] && pf->slot_empty[1];
        if (empty_file && current_logs.empty() && ready_logs.empty()) {
            rep.checked.push_back("the store is empty (nothing committed yet)");
            return rep;
        }
        rebuild = true;
        finding(empty_file ? "position_missing" : "position_damaged", pos_path,
                empty_file ? "no position was ever committed, yet the store holds segment files"
                           : "both slots are damaged: the agent refuses to start");
    }

    // 4. The open segment.
    fs::path open_path;            // where the open segment is now
    std::uint64_t verify_len = 0;  // how much of it to verify (0: all)
    std::string open_name;
    std::optional<RecoveryPlan> plan;  // what the agent's own recovery would do (agent/engine/store/audit_store.h)
    if (pos) {
        StoreListing listing;
        for (const auto& [logs, into] : {std::pair{&current_logs, &listing.current}, {&ready_logs, &listing.ready}})
            for (const auto& p : *logs) {
                std::error_code size_ec;
                const std::uint64_t bytes = fs::file_size(p, size_ec);
                into->push_back(StoreFileEntry{p.filename().string(), size_ec ? 0 : bytes});
            }
        plan = plan_recovery(*pos, listing);
        open_name = plan->open_name;
        const fs::path in_current = root / kCurrent / open_name;
        const fs::path in_ready = root / kReady / open_name;
        switch (plan->open) {
            case RecoveryPlan::Open::none:
                rep.checked.push_back("no open segment (the last segment was sealed)");
                break;
            case RecoveryPlan::Open::in_current: open_path = in_current; break;
            case RecoveryPlan::Open::sealed_after_commit: {
                open_path = in_ready;
                const std::size_t idx = rep.findings.size();
                finding("sealed_after_commit", in_ready.string(),
                        "the open segment was sealed and moved after the last commit; the seal was never "
                        "acknowledged");
                ready_logs.erase(std::remove(ready_logs.begin(), ready_logs.end(), in_ready), ready_logs.end());
                repairs.push_back([&, in_ready, in_current, idx]() -> Status {
                    std::error_code e;
                    fs::rename(in_ready, in_current, e);
                    if (e)
                        return make_error(errc::io_error, "cannot move " + in_ready.string() + " back: " + e.message());
                    HSMAUDIT_TRY(fsync_dir(in_current.parent_path()));
                    HSMAUDIT_TRY(fsync_dir(in_ready.parent_path()));
                    rep.findings[idx].action =
                        "moved back to " + in_current.string() + " (as the agent's recovery does)";
                    return {};
                });
                break;
            }
            case RecoveryPlan::Open::missing:
                finding("open_segment_missing", in_current.string(),
                        "the open segment recorded in the position file is missing: its records were acknowledged "
                        "to the module and are lost from this store; restore the file from a copy (fsck cannot)");
                break;
        }
        for (const auto& name : plan->uncommitted) {
            const std::size_t idx = rep.findings.size();
            const fs::path p = root / kCurrent / name;
            finding("uncommitted_segment", p.string(),
                    "created after the last commit (never acknowledged: the module still holds its records)");
            quarantine_later(p, idx);
        }
    } else if (!current_logs.empty()) {
        // No position to say which: the newest file in current/ is the open segment.
        open_path = current_logs.back();
        open_name = open_path.filename().string();
        for (std::size_t i = 0; i + 1 < current_logs.size(); ++i) {
            const fs::path p = current_logs[i];
            const std::size_t idx = rep.findings.size();
            finding("unexplained_file", p.string(), "a second segment in current/ (only one can be open)");
            quarantine_later(p, idx);
        }
    }

    std::optional<SegmentScan> open_scan;
    if (!open_path.empty()) {
        const std::uint64_t size = fs::file_size(open_path, ec);
        if (ec) return make_error(errc::io_error, "cannot size " + open_path.string() + ": " + ec.message());
        const std::uint64_t committed = pos ? pos->current_bytes : size;
        auto sr = scan_segment(open_path.string(), *o.key, std::min(size, committed));
        if (!sr) return std::move(sr).error();
        open_scan = sr->scan;
        const SegmentScan& sc = *open_scan;
        rep.checked.push_back(
            "open segment " + open_path.string() + ": " + std::to_string(size) + " bytes on disk, " +
            (pos ? std::to_string(committed) + " committed" : std::string("no committed length known")) + ", " +
            std::to_string(sc.lines) + " complete lines through seq " + std::to_string(sc.last_seq) +
            (sc.encrypted ? " (encrypted at rest)" : ""));
        const std::uint64_t keep = sc.cut;  // the last clean cut point within what was committed
        // Short of the committed length, or bytes after it, as the agent's recovery plan says.
        const bool short_of_committed = plan && plan->short_of_committed();
        const bool damaged = keep < std::min(size, committed) || short_of_committed;
        if (plan && !damaged && plan->uncommitted_bytes() > 0) {
            const std::size_t idx = rep.findings.size();
            finding("uncommitted_bytes", open_path.string(),
                    std::to_string(plan->uncommitted_bytes()) + " bytes after the committed length " +
                        std::to_string(committed) +
                        " (written but never committed: the module still holds those records and the agent drains "
                        "them again)");
            verify_len = committed;
            const fs::path target = root / kCurrent / open_name;
            repairs.push_back([&, target, committed, idx]() -> Status {
                auto to = quarantine.cut_tail(target, committed);
                if (!to) return std::move(to).error();
                rep.findings[idx].action = "cut the file to " + std::to_string(committed) + " bytes; the " +
                                           "uncommitted bytes are kept in " + to->string();
                return {};
            });
        } else if (damaged || (!pos && keep < size)) {
            std::string why;
            if (short_of_committed)
                why = "holds " + std::to_string(size) + " bytes, fewer than the " + std::to_string(committed) +
                      " committed";
            else if (sc.damage)
                why = *sc.damage;
            else
                why = "unreadable or incomplete after byte " + std::to_string(keep);
            if (sc.damage && short_of_committed) why += "; " + *sc.damage;
            const std::size_t idx = rep.findings.size();
            finding(short_of_committed ? "open_segment_short" : "open_segment_damaged", open_path.string(),
                    why + ". The last complete record is seq " + std::to_string(sc.last_seq) + " (byte " +
                        std::to_string(keep) + "); records committed after it are lost from this store");
            rebuild = true;
            const fs::path target = root / kCurrent / open_name;
            if (keep < size)
                repairs.push_back([&, target, keep, idx]() -> Status {
                    auto to = quarantine.cut_tail(target, keep);
                    if (!to) return std::move(to).error();
                    rep.findings[idx].action = "cut the file after its last complete record (byte " +
                                               std::to_string(keep) + "); the bytes after it are kept in " +
                                               to->string();
                    return {};
                });
            if (keep < size) verify_len = keep;
        } else {
            rep.checked.push_back("open segment: the committed bytes are intact");
        }
    }

    // 5. Verification: sealed segments and the committed part of the open one.
    std::vector<std::string> paths;
    paths.reserve(ready_logs.size() + 1);
    for (const auto& p : ready_logs) paths.push_back(p.string());
    fs::path tmp_dir;
    std::string verified_open;  // path given to the verifier for the open segment
    if (!open_path.empty()) {
        if (verify_len > 0) {
            fs::path tmp_base = fs::temp_directory_path(ec);  // throws without `ec` if TMPDIR is bad
            if (ec) tmp_base = "/tmp";
            std::string tmpl = (tmp_base / "hsmaudit-fsck-XXXXXX").string();
            if (::mkdtemp(tmpl.data()) == nullptr) return io("cannot create a temporary directory");
            tmp_dir = tmpl;
            verified_open = (tmp_dir / open_name).string();
            if (auto st = copy_prefix(open_path.string(), verify_len, verified_open); !st) {
                fs::remove_all(tmp_dir, ec);
                return std::move(st).error();
            }
        } else {
            verified_open = open_path.string();
        }
        paths.push_back(verified_open);
    }
    if (!paths.empty()) {
        mac::VerifyOptions vo;
        vo.key.emplace(*o.key);
        auto vr = mac::verify_paths(paths, vo);
        if (!tmp_dir.empty()) fs::remove_all(tmp_dir, ec);
        if (!vr) return std::move(vr).error();
        rep.verify = std::move(*vr);
        for (auto& f : rep.verify.faults)
            if (f.file == verified_open) f.file = open_path.string();
        for (auto& s : rep.verify.segments)
            if (s.file == verified_open) s.file = open_path.string();
        if (rep.verify.fault_counts[static_cast<std::size_t>(mac::FaultKind::wrong_key)] > 0)
            return make_error(errc::invalid_argument,
                              "the audit key given (chain " + mac::hex_encode(o.key->chain()) +
                                  ") does not verify this store: nothing was checked or changed");
        rep.checked.push_back("verified " + std::to_string(rep.verify.segments.size()) + " segment(s), " +
                              std::to_string(rep.verify.records) + " records (seq " +
                              std::to_string(rep.verify.first_seq) + " to " + std::to_string(rep.verify.last_seq) +
                              "): " + std::to_string(rep.verify.faults_total) + " fault(s)");
        if (rep.verify.segments.empty())
            return make_error(errc::invalid_argument,
                              "the audit key given (chain " + mac::hex_encode(o.key->chain()) + ") opens none of the " +
                                  std::to_string(paths.size()) +
                                  " segment files of this store (another chain's key?): nothing was changed");
        std::set<std::string> moved;
        for (const auto& f : rep.verify.faults) {
            // An encrypted file that cannot be read is damaged, not foreign: it stays (evidence).
            const bool unreadable = f.kind == mac::FaultKind::not_a_segment && file_is_encrypted(f.file);
            const bool foreign =
                !unreadable && (f.kind == mac::FaultKind::not_a_segment || f.kind == mac::FaultKind::foreign_chain ||
                                f.kind == mac::FaultKind::segment_duplicate);
            std::string detail;
            if (unreadable)
                if (auto sr = scan_segment(f.file, *o.key, UINT64_MAX); sr && sr->scan.damage)
                    detail = " (" + *sr->scan.damage + ")";
            std::string where = f.file;
            if (f.line != 0) where += ":" + std::to_string(f.line);
            const std::size_t idx = rep.findings.size();
            finding(foreign ? "not_in_chain" : "chain_fault", f.file,
                    std::string(mac::to_string(f.kind))
                        .append(" at ")
                        .append(where)
                        .append(f.seq != 0 ? " (seq " + std::to_string(f.seq) + ")" : "")
                        .append(": ")
                        .append(f.message)
                        .append(detail));
            if (foreign && f.file != open_path.string() && moved.insert(f.file).second) {
                const fs::path p = f.file;
                quarantine_later(p, idx, " (it does not belong to this chain)");
            } else if (!foreign && o.repair) {
                rep.findings[idx].action =
                    "left in place: it is evidence, and the segment's other records are still "
                    "needed (fsck never rewrites sealed data)";
            }
        }
        if (rep.verify.faults_total > rep.verify.faults.size())
            rep.checked.push_back("only the first " + std::to_string(rep.verify.faults.size()) + " faults are listed");
    }

    // 6. A position rebuilt from what the files prove.
    if (rebuild) {
        StorePosition np;
        np.generation = pos ? pos->generation + 1 : 1;
        // The chain end at the last seal: the newest sealed segment before the open one.
        const mac::SegmentReport* last_sealed = nullptr;
        for (const auto& s : rep.verify.segments)
            if (s.sealed && s.file != open_path.string() && (!last_sealed || s.epoch > last_sealed->epoch))
                last_sealed = &s;
        if (last_sealed) {
            auto sr = scan_segment(last_sealed->file, *o.key, UINT64_MAX);
            if (!sr) return std::move(sr).error();
            if (sr->seal) {
                np.has_end = true;
                np.end_epoch = sr->seal->epoch;
                np.end_next_seq = sr->seal->last_seq + 1;
                np.end_mac = sr->seal->final_mac;
            }
        }
        std::uint64_t epoch = 0;
        if (open_scan && open_scan->open) {
            epoch = open_scan->open->epoch;
            np.current = open_name;
            np.current_bytes = open_scan->cut;
            np.next_seq = open_scan->last_seq != 0 ? open_scan->last_seq + 1 : open_scan->open->first_seq;
            // Entries: one per line. Every earlier epoch had an open and a seal entry.
            np.entry_no = (np.next_seq - 1) + 2 * epoch + 1;
        } else if (np.has_end) {
            epoch = np.end_epoch;
            np.next_seq = np.end_next_seq;
            np.entry_no = (np.end_next_seq - 1) + 2 * epoch + 2;
        }
        // With the whole chain present, count the lines instead: that is exactly the entry count.
        bool counted = false;
        if (!rep.verify.segments.empty() && rep.verify.segments.front().epoch == 0 &&
            rep.verify.segments.front().first_seq == 1) {
            std::uint64_t n = 0;
            for (const auto& s : rep.verify.segments)
                n += s.file == open_path.string() && open_scan ? open_scan->lines : 1 + s.records + (s.sealed ? 1 : 0);
            np.entry_no = n;
            counted = true;
        }
        if (open_scan && !open_scan->open) {
            finding("open_segment_damaged", open_path.string(),
                    "does not start with an open line: no position can be proven from it; move it aside and "
                    "restore the store from a copy");
        } else {
            rep.checked.push_back(std::string("position proven by the files: entry ") + std::to_string(np.entry_no) +
                                  (counted ? " (every line of the chain counted)"
                                           : " (from the sequence number and epoch: one open and one seal entry per "
                                             "earlier epoch)") +
                                  ", next seq " + std::to_string(np.next_seq) + ", open segment " +
                                  (np.current.empty() ? "none" : np.current) + " (" + std::to_string(np.current_bytes) +
                                  " bytes)");
            const std::size_t idx =
                std::find_if(rep.findings.begin(), rep.findings.end(),
                             [](const FsckFinding& f) {
                                 return f.kind == "position_damaged" || f.kind == "position_missing" ||
                                        f.kind == "open_segment_short" || f.kind == "open_segment_damaged";
                             }) -
                rep.findings.begin();
            repairs.push_back([&, np, idx, pos_path]() -> Status {
                std::string saved;
                std::error_code e;
                if (fs::exists(pos_path, e)) {
                    auto to = quarantine.target(pos_path, "");
                    if (!to) return std::move(to).error();
                    fs::copy_file(pos_path, *to, e);
                    if (e) return make_error(errc::io_error, "cannot copy " + pos_path + ": " + e.message());
                    saved = "; the old file is kept in " + to->string();
                }
                HSMAUDIT_TRY(write_store_position(o.audit_dir, np));
                std::string scratch;
                std::string& action = idx < rep.findings.size() ? rep.findings[idx].action : scratch;
                action += std::string(action.empty() ? "" : "; ") + "rewrote " + pos_path + ": entry " +
                          std::to_string(np.entry_no) + ", next seq " + std::to_string(np.next_seq) +
                          ", open segment " + (np.current.empty() ? "none" : np.current) + " (" +
                          std::to_string(np.current_bytes) + " bytes)" + saved;
                rep.position = np;
                return {};
            });
        }
    }
    rep.position = pos;

    if (o.repair) {
        for (auto& r : repairs) {
            HSMAUDIT_TRY(r());
            rep.repaired = true;
        }
    }
    return rep;
}

std::string render_fsck_text(const FsckReport& r, bool repair) {
    std::ostringstream o;
    for (const auto& c : r.checked) o << "  " << c << "\n";
    for (const auto& f : r.findings) {
        o << "FAULT " << f.kind << ": " << f.message << "\n";
        if (!f.action.empty())
            o << "  repaired: " << f.action << "\n";
        else if (!repair)
            o << "  (not changed: run with --repair)\n";
        else
            o << "  not repaired\n";
    }
    if (r.clean())
        o << "store is clean\n";
    else if (r.repaired)
        o << r.findings.size() << " problem(s) found; repairs done as listed above (nothing was deleted: see "
          << "quarantine/). Run 'hsmaudit fsck' again to confirm.\n";
    else
        o << r.findings.size() << " problem(s) found\n";
    return o.str();
}

nlohmann::json render_fsck_json(const FsckReport& r) {
    nlohmann::json j;
    j["clean"] = r.clean();
    j["repaired"] = r.repaired;
    j["checked"] = r.checked;
    nlohmann::json fs_ = nlohmann::json::array();
    for (const auto& f : r.findings)
        fs_.push_back({{"kind", f.kind}, {"path", f.path}, {"message", f.message}, {"action", f.action}});
    j["findings"] = std::move(fs_);
    j["faults_total"] = r.verify.faults_total;
    j["records"] = r.verify.records;
    return j;
}

}  // namespace hsmaudit::agent::tools
