#include "agent/engine/store/archiver.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "agent/engine/store/state_layout.h"
#include "base/files.h"
#include "base/line_reader.h"
#include "base/logger.h"
#include "mac/encrypted_file.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kReadyDir = kSealedSegmentDir;
constexpr const char* kTempPrefix = kArchiveTempPrefix;
constexpr std::size_t kIoBytes = std::size_t{64} * 1024;
constexpr std::size_t kMaxManifestBytes = 16 << 20;

struct ReadFree {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ReadArchive = std::unique_ptr<archive, ReadFree>;
using WriteArchive = std::unique_ptr<archive, WriteFree>;
using ArchiveEntry = std::unique_ptr<archive_entry, EntryFree>;

/// An owned file descriptor.
class UniqueFd {
public:
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    [[nodiscard]] int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    /// Closes and reports a failed close (which can carry a deferred write error).
    bool close() {
        const int fd = fd_;
        fd_ = -1;
        return fd < 0 || ::close(fd) == 0;
    }

private:
    int fd_;
};

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

std::string archive_message(archive* a) {
    const char* m = archive_error_string(a);
    return m != nullptr ? std::string(m) : std::string("unknown libarchive error");
}

using base::fsync_dir;

/// Reads up to out.size() bytes, fewer only at the end of the file.
Result<std::size_t> read_full(int fd, char* out, std::size_t n, const std::string& path) {
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::read(fd, out + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return io("cannot read " + path);
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    return got;
}

Result<ReadArchive> open_reader(const std::string& path) {
    ReadArchive a(archive_read_new());
    if (!a) return make_error(errc::internal, "libarchive: out of memory");
    archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), kIoBytes) != ARCHIVE_OK)
        return make_error(errc::io_error, "cannot open " + path + ": " + archive_message(a.get()));
    return a;
}

/// Reads the current member's data into a string (at most `max` bytes).
Result<std::string> read_member(archive* a, std::size_t max, const std::string& what) {
    std::string out;
    char buf[kIoBytes];
    for (;;) {
        const la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n < 0) return make_error(errc::io_error, what + ": " + archive_message(a));
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > max)
            return make_error(errc::io_error, what + " is larger than " + std::to_string(max) + " bytes");
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::string hex8(std::uint64_t v) {
    char hex[17];
    (void)std::snprintf(hex, sizeof hex, "%08llx", static_cast<unsigned long long>(v));
    return hex;
}

std::string sanitize(std::string_view serial) {
    std::string s;
    for (char c : serial) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
    return s;
}

std::optional<std::uint64_t> parse_hex8(std::string_view hex) {
    std::uint64_t v = 0;
    if (hex.size() != 8) return std::nullopt;
    const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
    if (ec != std::errc{} || end != hex.data() + hex.size()) return std::nullopt;
    return v;
}

/// The epoch range in an archive name "audit-<serial>-<first hex>-<last hex>[.n].<ext>", if it is one.
std::optional<std::pair<std::uint64_t, std::uint64_t>> archive_name_epochs(const std::string& file_name) {
    return archive_file_epochs(file_name);
}

/// The epoch in a segment file name "hsm_<serial>_<hex8>.log", if it is one.

/// A member of an archive opened for the verifier: reads through the archive's shared cursor.
struct TarCursor {
    std::string path;
    ReadArchive reader;
    long index = -1;  // ordinal of the member the reader is positioned in (-1: before the first)
    bool touched = false;
    std::uint64_t generation = 0;

    Status seek(long ordinal) {
        if (!reader || index > ordinal || (index == ordinal && touched)) {
            auto r = open_reader(path);
            if (!r) return std::move(r).error();
            reader = std::move(*r);
            index = -1;
        }
        while (index < ordinal) {
            archive_entry* e = nullptr;
            const int rc = archive_read_next_header(reader.get(), &e);
            if (rc != ARCHIVE_OK) {
                const std::string why =
                    rc == ARCHIVE_EOF ? std::string("end of archive") : archive_message(reader.get());
                reader.reset();
                return make_error(errc::io_error,
                                  path + ": member " + std::to_string(ordinal) + " is no longer readable: " + why);
            }
            ++index;
        }
        touched = false;
        ++generation;
        return {};
    }
};

class TarMemberSource final : public base::ByteSource {
public:
    TarMemberSource(std::shared_ptr<TarCursor> cursor, std::string name)
        : cursor_(std::move(cursor)), generation_(cursor_->generation), name_(std::move(name)) {}

    Result<std::size_t> read(std::span<char> out) override {
        if (damage_ || done_) return std::size_t{0};
        if (cursor_->generation != generation_ || !cursor_->reader)
            return make_error(errc::internal, name_ + ": another member of the archive was opened meanwhile");
        cursor_->touched = true;
        const la_ssize_t n = archive_read_data(cursor_->reader.get(), out.data(), out.size());
        if (n < 0) {
            damage_ = "the archive cannot be read past byte " + std::to_string(read_) +
                      " of this member: " + archive_message(cursor_->reader.get());
            return std::size_t{0};
        }
        if (n == 0) done_ = true;
        read_ += static_cast<std::uint64_t>(n);
        return static_cast<std::size_t>(n);
    }
    [[nodiscard]] std::optional<std::string> damage() const override { return damage_; }

private:
    std::shared_ptr<TarCursor> cursor_;
    std::uint64_t generation_;
    std::string name_;
    std::uint64_t read_ = 0;
    bool done_ = false;
    std::optional<std::string> damage_;
};

/// Reads a segment's open line, last line and encryption: what the manifest says of it.
Result<std::pair<ArchivedSegment, std::string>> describe_segment(const std::string& path, const mac::AuditKey& key) {
    ArchivedSegment s;
    s.name = fs::path(path).filename().string();
    {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) return io("cannot open " + path);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return io("cannot stat " + path);
        s.bytes = static_cast<std::uint64_t>(st.st_size);
        char prefix[8];
        auto n = read_full(fd.get(), prefix, sizeof prefix, path);
        if (!n) return std::move(n).error();
        s.encrypted = mac::is_encrypted(std::string_view(prefix, *n));
    }
    auto src = mac::open_segment_source(path, &key);
    if (!src) return std::move(src).error();
    base::ByteSource* raw = src->get();
    base::LineReader reader(std::move(*src), mac::kMaxLineBytes);
    base::Line line;
    auto got = reader.next(line);
    if (!got) return std::move(got).error();
    if (!*got) return make_error(errc::io_error, path + " is empty");
    auto open = mac::parse_open_line(line.text);
    if (!open || !line.terminated) return make_error(errc::io_error, path + " does not start with an open line");
    if (open->chain != key.chain()) return make_error(errc::io_error, path + " belongs to another chain");
    s.epoch = open->epoch;
    s.first_seq = open->first_seq;
    s.last_seq = open->first_seq - 1;
    for (;;) {
        got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got) break;
        if (line.text.starts_with("@seal ")) {
            auto seal = mac::parse_seal_line(line.text);
            if (seal) {
                s.sealed = true;
                s.last_seq = seal->seal.last_seq;
            }
        } else if (!line.text.empty() && line.text[0] >= '1' && line.text[0] <= '9') {
            std::uint64_t seq = 0;
            if (mac::parse_u64(line.text.substr(0, line.text.find(' ')), seq)) s.last_seq = std::max(s.last_seq, seq);
        }
    }
    if (auto d = raw->damage()) return make_error(errc::io_error, path + ": " + *d);
    return std::pair{std::move(s), sanitize(open->serial)};
}

Status write_entry(archive* a, const std::string& name, std::uint64_t size, std::int64_t mtime_s) {
    ArchiveEntry e(archive_entry_new());
    if (!e) return make_error(errc::internal, "libarchive: out of memory");
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0600);
    archive_entry_set_mtime(e.get(), mtime_s, 0);
    if (archive_write_header(a, e.get()) != ARCHIVE_OK)
        return make_error(errc::io_error, "cannot write the tar header of " + name + ": " + archive_message(a));
    return {};
}

/// Where libarchive's output goes: the temp file, through the FileSystem (base::write_all).
struct ArchiveSink {
    base::FileSystem* file_system = nullptr;
    int fd = -1;
    std::string path;
};

la_ssize_t sink_write(archive* a, void* client, const void* buffer, size_t length) {
    auto* sink = static_cast<ArchiveSink*>(client);
    if (auto st = base::write_all(sink->fd, std::string_view(static_cast<const char*>(buffer), length), sink->path,
                                  *sink->file_system);
        !st) {
        archive_set_error(a, EIO, "%s", st.error().message.c_str());
        return -1;
    }
    return static_cast<la_ssize_t>(length);
}

Status write_data(archive* a, const char* data, std::size_t n, const std::string& name) {
    const la_ssize_t w = archive_write_data(a, data, n);
    if (w < 0 || static_cast<std::size_t>(w) != n)
        return make_error(errc::io_error, "cannot write " + name + " into the archive: " + archive_message(a));
    return {};
}

}  // namespace

std::uint64_t ArchiveManifest::last_seq() const {
    std::uint64_t last = 0;
    for (const auto& s : segments) last = std::max(last, s.last_seq);
    return last;
}

std::string render_manifest(const ArchiveManifest& m) {
    std::string out = "hsmaudit-archive/1 serial=" + m.serial + "\n";
    for (const auto& s : m.segments)
        out += "segment name=" + s.name + " epoch=" + std::to_string(s.epoch) +
               " first=" + std::to_string(s.first_seq) + " last=" + std::to_string(s.last_seq) +
               " bytes=" + std::to_string(s.bytes) + " sealed=" + (s.sealed ? "1" : "0") +
               " encrypted=" + (s.encrypted ? "1" : "0") + "\n";
    return out;
}

Result<ArchiveManifest> parse_manifest(std::string_view text) {
    ArchiveManifest m;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) return make_error(errc::io_error, "manifest: torn last line");
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        std::map<std::string_view, std::string_view> f;
        std::string_view kind;
        while (!line.empty()) {
            const auto sp = line.find(' ');
            std::string_view tok = line.substr(0, sp);
            line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
            const auto eq = tok.find('=');
            if (kind.empty() && eq == std::string_view::npos)
                kind = tok;
            else if (eq != std::string_view::npos)
                f[tok.substr(0, eq)] = tok.substr(eq + 1);
        }
        const std::string where = "manifest line " + std::to_string(line_no);
        if (line_no == 1) {
            if (kind != "hsmaudit-archive/1") return make_error(errc::io_error, where + ": not an hsmaudit manifest");
            m.serial = std::string(f["serial"]);
            continue;
        }
        if (kind != "segment") return make_error(errc::io_error, where + ": unknown line");
        ArchivedSegment s;
        s.name = std::string(f["name"]);
        if (s.name.empty() || s.name.find('/') != std::string::npos)
            return make_error(errc::io_error, where + ": bad segment name");
        if (!mac::parse_u64(f["epoch"], s.epoch) || !mac::parse_u64(f["first"], s.first_seq) ||
            !mac::parse_u64(f["last"], s.last_seq) || !mac::parse_u64(f["bytes"], s.bytes))
            return make_error(errc::io_error, where + ": bad number");
        s.sealed = f["sealed"] == "1";
        s.encrypted = f["encrypted"] == "1";
        m.segments.push_back(std::move(s));
    }
    if (line_no == 0) return make_error(errc::io_error, "manifest: empty");
    return m;
}

Result<ArchiveManifest> read_manifest(const std::string& archive_path) {
    auto a = open_reader(archive_path);
    if (!a) return std::move(a).error();
    archive_entry* e = nullptr;
    if (archive_read_next_header(a->get(), &e) != ARCHIVE_OK)
        return make_error(errc::io_error,
                          archive_path + ": cannot read the first member: " + archive_message(a->get()));
    if (std::string_view(archive_entry_pathname(e) ? archive_entry_pathname(e) : "") != kArchiveManifestName)
        return make_error(errc::io_error, archive_path + ": the first member is not " + kArchiveManifestName);
    auto text = read_member(a->get(), kMaxManifestBytes, archive_path + "(" + kArchiveManifestName + ")");
    if (!text) return std::move(text).error();
    auto m = parse_manifest(*text);
    if (!m) return make_error(errc::io_error, archive_path + ": " + m.error().message);
    return m;
}

Status check_archive(const std::string& archive_path, const std::vector<std::pair<std::string, std::string>>& compare) {
    auto a = open_reader(archive_path);
    if (!a) return std::move(a).error();
    std::map<std::string, std::string> files(compare.begin(), compare.end());
    std::optional<ArchiveManifest> manifest;
    std::set<std::string> seen;
    std::vector<char> member_buf(kIoBytes), file_buf(kIoBytes);
    for (bool first = true;; first = false) {
        archive_entry* e = nullptr;
        const int rc = archive_read_next_header(a->get(), &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) return make_error(errc::io_error, archive_path + ": " + archive_message(a->get()));
        const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        const std::string what = mac::container_member_name(archive_path, name);
        const auto size = static_cast<std::uint64_t>(archive_entry_size(e));
        if (first) {
            if (name != kArchiveManifestName)
                return make_error(errc::io_error, archive_path + ": the first member is not " + kArchiveManifestName);
            auto text = read_member(a->get(), kMaxManifestBytes, what);
            if (!text) return std::move(text).error();
            auto m = parse_manifest(*text);
            if (!m) return make_error(errc::io_error, archive_path + ": " + m.error().message);
            manifest = std::move(*m);
            continue;
        }
        UniqueFd fd;
        const auto cmp = files.find(name);
        if (cmp != files.end()) {
            fd = UniqueFd(::open(cmp->second.c_str(), O_RDONLY | O_CLOEXEC));
            if (fd.get() < 0) return io("cannot open " + cmp->second);
        }
        std::uint64_t got = 0;
        for (;;) {
            const la_ssize_t n = archive_read_data(a->get(), member_buf.data(), member_buf.size());
            if (n < 0) return make_error(errc::io_error, what + ": " + archive_message(a->get()));
            if (cmp != files.end()) {
                auto m = read_full(fd.get(), file_buf.data(), static_cast<std::size_t>(n), cmp->second);
                if (!m) return std::move(m).error();
                if (*m != static_cast<std::size_t>(n) ||
                    std::memcmp(member_buf.data(), file_buf.data(), static_cast<std::size_t>(n)) != 0)
                    return make_error(errc::io_error,
                                      what + " differs from " + cmp->second + " near byte " + std::to_string(got));
            }
            if (n == 0) break;
            got += static_cast<std::uint64_t>(n);
        }
        if (cmp != files.end()) {
            char extra = 0;
            auto m = read_full(fd.get(), &extra, 1, cmp->second);
            if (!m) return std::move(m).error();
            if (*m != 0) return make_error(errc::io_error, cmp->second + " is longer than " + what);
        }
        if (got != size)
            return make_error(errc::io_error, what + " holds " + std::to_string(got) + " bytes, its header says " +
                                                  std::to_string(size));
        seen.insert(name);
    }
    if (!manifest) return make_error(errc::io_error, archive_path + ": empty archive");
    for (const auto& s : manifest->segments) {
        if (!seen.contains(s.name))
            return make_error(errc::io_error, archive_path + ": " + s.name + " is in the manifest, not in the archive");
    }
    for (const auto& [member, file] : compare)
        if (!seen.contains(member))
            return make_error(errc::io_error, std::string(archive_path).append(" does not hold ").append(member));
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& s : manifest->segments) sizes[s.name] = s.bytes;
    for (const auto& [member, file] : compare) {
        std::error_code ec;
        if (sizes[member] != fs::file_size(file, ec))
            return make_error(
                errc::io_error,
                std::string(archive_path).append(": the manifest's size of ").append(member).append(" is wrong"));
    }
    return {};
}

std::string archive_file_name(std::string_view serial, std::uint64_t first_epoch, std::uint64_t last_epoch,
                              bool compressed, int n) {
    std::string name = "audit-" + std::string(serial) + "-" + hex8(first_epoch) + "-" + hex8(last_epoch);
    if (n > 0) name += "." + std::to_string(n);
    return name + (compressed ? ".tgz" : ".tar");
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> archive_file_epochs(std::string_view file_name) {
    if (!file_name.starts_with("audit-")) return std::nullopt;
    const std::string_view stem = file_name.substr(0, file_name.find('.'));
    const auto b = stem.rfind('-');
    if (b == std::string_view::npos || b < 6) return std::nullopt;
    const auto a = stem.rfind('-', b - 1);
    if (a == std::string_view::npos || a < 5) return std::nullopt;
    const auto first = parse_hex8(stem.substr(a + 1, b - a - 1));
    const auto last = parse_hex8(stem.substr(b + 1));
    if (!first || !last) return std::nullopt;
    return std::pair{*first, *last};
}

bool is_finished_archive(std::string_view name) {
    return !name.starts_with(".") && is_archive_name(name);
}

bool is_archive_name(std::string_view path) {
    return path.ends_with(".tar") || path.ends_with(".tgz") || path.ends_with(".tar.gz");
}

// ---------------------------------------------------------------------------------------------
// Archiver

struct Archiver::Segment {
    std::string path;
    ArchivedSegment info;
    std::string serial;
};

Archiver::Archiver(ArchiverOptions options, const mac::AuditKey& key, AlertSink& alerts, SealedThrough sealed_through,
                   NowMs now_ms)
    : options_(std::move(options)),
      key_(key),
      alerts_(alerts),
      sealed_through_(std::move(sealed_through)),
      now_ms_(std::move(now_ms)),
      fs_(options_.file_system != nullptr ? *options_.file_system : base::posix_file_system()) {}

Archiver::~Archiver() {
    stop();
}

std::string Archiver::ready_dir() const {
    return (fs::path(options_.audit_dir) / kReadyDir).string();
}

std::string Archiver::archive_dir() const {
    return (fs::path(options_.audit_dir) / kArchiveDir).string();
}

Status Archiver::remove_file(const std::string& path) {
    if (fs_.unlink(path.c_str()) != 0 && errno != ENOENT) return io("cannot remove " + path);
    return {};
}

void Archiver::raise(std::string kind, Severity sev, std::string message) {
    alerts_.alert(Alert{std::move(kind), sev, std::move(message), 0, now_ms_()});
}

Result<std::vector<Archiver::Segment>> Archiver::scan_ready(ArchiveRun& run) {
    std::vector<std::pair<std::string, std::uint64_t>> candidates;  // path, epoch by name
    const std::optional<std::uint64_t> through = sealed_through_();
    std::error_code ec;
    std::size_t waiting = 0;
    for (fs::directory_iterator it(ready_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (it->path().extension() != ".log") continue;
        ++waiting;
        const auto epoch = mac::segment_file_epoch(name);
        if (!epoch || !through || *epoch > *through) continue;  // not (yet) durably sealed
        candidates.emplace_back(it->path().string(), *epoch);
    }
    if (ec) return make_error(errc::io_error, "cannot list " + ready_dir() + ": " + ec.message());
    run.segments_waiting = waiting;
    std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    std::vector<Segment> out;
    const std::optional<std::uint64_t> delivered = delivered_ ? delivered_() : std::nullopt;
    for (const auto& [path, epoch] : candidates) {
        auto d = describe_segment(path, key_);
        if (d && delivered_ && delivered && d->first.last_seq >= *delivered)
            break;  // not yet delivered by every exporter: it and every later segment wait
        if (!d || d->first.epoch != epoch) {
            // Left where it is: archiving cannot make it better, and deleting it would lose it.
            if (unreadable_alerted_.insert(path).second)
                raise("archive.segment_unreadable", Severity::critical,
                      (d ? path + ": its open line names another epoch than its file name" : d.error().message) +
                          "; it stays in ready_for_archive, not archived (run 'hsmaudit verify' on it)");
            continue;
        }
        // Re-verify the segment as it is on disk now: a record altered or deleted in a sealed
        // segment since the drain verified it is alerted, and the segment stays where it is (not
        // archived, never deleted) for an auditor.
        mac::VerifyOptions vo;
        vo.key.emplace(key_);
        auto report = mac::verify_paths({path}, vo);
        if (!report || !report->faults.empty()) {
            if (damaged_alerted_.insert(path).second) {
                if (!report) {
                    raise("archive.segment_unreadable", Severity::critical,
                          path + ": " + report.error().message + "; it stays in ready_for_archive, not archived");
                } else {
                    for (const auto& f : report->faults)
                        raise("chain." + std::string(mac::to_string(f.kind)), Severity::critical,
                              f.file + ":" + std::to_string(f.line) + ": " + f.message +
                                  " (found in a stored sealed segment; it stays in ready_for_archive, not archived)");
                }
            }
            continue;
        }
        out.push_back(Segment{path, std::move(d->first), std::move(d->second)});
    }
    return out;
}

Status Archiver::delete_segments(const std::vector<const Segment*>& segments) {
    for (const Segment* s : segments) {
        HSMAUDIT_TRY(remove_file(s->path));
    }
    return fsync_dir(ready_dir(), fs_);
}

Status Archiver::reconcile(std::vector<Segment>& segments, ArchiveRun& run) {
    if (segments.empty()) return {};
    std::error_code ec;
    std::vector<std::string> archives;
    for (fs::directory_iterator it(archive_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(kTempPrefix) && is_archive_name(name)) archives.push_back(it->path().string());
    }
    if (ec) return make_error(errc::io_error, "cannot list " + archive_dir() + ": " + ec.message());
    std::sort(archives.begin(), archives.end());
    for (const auto& archive_path : archives) {
        const auto range = archive_name_epochs(fs::path(archive_path).filename().string());
        if (!range) continue;
        std::map<std::string, const Segment*> by_name;
        for (const auto& s : segments)
            if (s.info.epoch >= range->first && s.info.epoch <= range->second) by_name[s.info.name] = &s;
        if (by_name.empty()) continue;
        auto manifest = read_manifest(archive_path);
        std::vector<std::pair<std::string, std::string>> compare;
        std::vector<const Segment*> dups;
        if (manifest) {
            for (const auto& m : manifest->segments) {
                auto it = by_name.find(m.name);
                if (it == by_name.end()) continue;
                compare.emplace_back(m.name, it->second->path);
                dups.push_back(it->second);
            }
            if (dups.empty()) continue;
        }
        Status ok = manifest ? check_archive(archive_path, compare) : Status(std::move(manifest).error());
        if (!ok) {
            if (damaged_alerted_.insert(archive_path).second)
                raise("archive.damaged", Severity::critical,
                      archive_path + " does not read back complete (" + ok.error().message +
                          "); the segments it should hold stay in ready_for_archive and are archived again");
            continue;
        }
        base::logger().warn(
            "archive: {} already holds {} segment(s) still in {} (a crash or a failure before their deletion); "
            "read back complete, removing the duplicates",
            archive_path, dups.size(), kReadyDir);
        // Its directory entry may not be durable yet (a failed fsync of the directory after the
        // rename): make it so before the only other copy goes.
        HSMAUDIT_TRY(fsync_dir(archive_dir(), fs_));
        HSMAUDIT_TRY(delete_segments(dups));
        run.duplicates_removed += dups.size();
        std::set<const Segment*> gone(dups.begin(), dups.end());
        std::erase_if(segments, [&](const Segment& s) { return gone.contains(&s); });
    }
    return {};
}

Status Archiver::bundle(const std::vector<Segment>& group, ArchiveRun& run) {
    const bool encrypted = std::any_of(group.begin(), group.end(), [](const Segment& s) { return s.info.encrypted; });
    // Ciphertext does not compress: encrypted segments are stored as they are.
    const bool compress = options_.compress && !encrypted;
    std::string name;
    for (int n = 0;; ++n) {
        // n > 0: a damaged archive of the same range is kept aside.
        name = archive_file_name(group.front().serial, group.front().info.epoch, group.back().info.epoch, compress, n);
        std::error_code ec;
        const bool taken = fs::exists(fs::path(archive_dir()) / name, ec);
        if (ec) return make_error(errc::io_error, "cannot look at " + archive_dir() + ": " + ec.message());
        if (!taken) break;
    }
    const std::string final_path = (fs::path(archive_dir()) / name).string();
    const std::string temp_path = (fs::path(archive_dir()) / (kTempPrefix + name)).string();

    ArchiveManifest manifest;
    manifest.serial = group.front().serial;
    for (const auto& s : group) manifest.segments.push_back(s.info);
    const std::string manifest_text = render_manifest(manifest);

    auto write = [&]() -> Status {
        UniqueFd fd(fs_.open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (fd.get() < 0) return io("cannot create " + temp_path);
        ArchiveSink sink{&fs_, fd.get(), temp_path};
        WriteArchive a(archive_write_new());
        if (!a) return make_error(errc::internal, "libarchive: out of memory");
        if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
            (compress && archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK) ||
            archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
            archive_write_open2(a.get(), &sink, nullptr, sink_write, nullptr, nullptr) != ARCHIVE_OK)
            return make_error(errc::io_error, "cannot start " + temp_path + ": " + archive_message(a.get()));
        const std::int64_t now_s = now_ms_() / 1000;
        HSMAUDIT_TRY(write_entry(a.get(), kArchiveManifestName, manifest_text.size(), now_s));
        HSMAUDIT_TRY(write_data(a.get(), manifest_text.data(), manifest_text.size(), kArchiveManifestName));
        std::vector<char> buf(kIoBytes);
        for (const auto& s : group) {
            UniqueFd in(::open(s.path.c_str(), O_RDONLY | O_CLOEXEC));
            if (in.get() < 0) return io("cannot open " + s.path);
            struct stat st {};
            if (::fstat(in.get(), &st) != 0) return io("cannot stat " + s.path);
            if (static_cast<std::uint64_t>(st.st_size) != s.info.bytes)
                return make_error(errc::io_error, s.path + " changed size while being archived");
            HSMAUDIT_TRY(write_entry(a.get(), s.info.name, s.info.bytes, st.st_mtim.tv_sec));
            std::uint64_t done = 0;
            for (;;) {
                auto n = read_full(in.get(), buf.data(), buf.size(), s.path);
                if (!n) return std::move(n).error();
                if (*n == 0) break;
                HSMAUDIT_TRY(write_data(a.get(), buf.data(), *n, s.info.name));
                done += *n;
            }
            if (done != s.info.bytes) return make_error(errc::io_error, s.path + " changed while being archived");
        }
        if (archive_write_close(a.get()) != ARCHIVE_OK)
            return make_error(errc::io_error, "cannot finish " + temp_path + ": " + archive_message(a.get()));
        // A failed fsync is never retried on this descriptor: the whole temp file is dropped.
        if (fs_.fsync(fd.get()) != 0) return io("cannot fsync " + temp_path);
        if (!fd.close()) return io("cannot close " + temp_path);
        return {};
    };
    // On any failure before the rename the temp file goes (or, if even that fails, the next
    // pass's recovery removes it): the segments are untouched.
    if (auto st = write(); !st) {
        (void)remove_file(temp_path);
        return st;
    }
    if (fs_.rename(temp_path.c_str(), final_path.c_str()) != 0) {
        Error e = io("cannot rename " + temp_path + " to " + final_path);
        (void)remove_file(temp_path);
        return e;
    }
    if (auto st = fsync_dir(archive_dir(), fs_); !st) {
        // Not known durable: the segments stay, and this copy goes (should removing it fail
        // too, the next pass reads it back and makes it durable before deleting anything).
        (void)remove_file(final_path);
        return st;
    }

    // Durable: now prove it reads back identical before anything is deleted.
    std::vector<std::pair<std::string, std::string>> compare;
    std::vector<const Segment*> bundled;
    for (const auto& s : group) {
        compare.emplace_back(s.info.name, s.path);
        bundled.push_back(&s);
    }
    if (auto st = check_archive(final_path, compare); !st) {
        (void)remove_file(final_path);  // the segments are intact; this copy is not trusted
        (void)fsync_dir(archive_dir(), fs_);
        return make_error(
            errc::io_error,
            final_path + " did not read back identical, removed it (the segments stay): " + st.error().message);
    }
    HSMAUDIT_TRY(delete_segments(bundled));
    run.archives.push_back(final_path);
    run.segments_archived += group.size();
    base::logger().info("archive: bundled {} segment(s) (epochs {}..{}) into {}", group.size(),
                        group.front().info.epoch, group.back().info.epoch, final_path);
    return {};
}

std::unique_lock<std::mutex> Archiver::hold_passes(std::chrono::milliseconds wait) {
    // Polls try_lock rather than a timed mutex: ThreadSanitizer does not intercept
    // pthread_mutex_clocklock (try_lock_for), and would report every unlock as wrong.
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        std::unique_lock lock(pass_mutex_, std::try_to_lock);
        if (lock.owns_lock() || std::chrono::steady_clock::now() >= deadline) return lock;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

Result<ArchiveRun> Archiver::run_once() {
    const std::lock_guard pass(pass_mutex_);
    ArchiveRun run;
    std::error_code ec;
    fs::create_directories(archive_dir(), ec);
    if (ec) return make_error(errc::io_error, "cannot create " + archive_dir() + ": " + ec.message());
    fs::permissions(archive_dir(), fs::perms::owner_all, ec);

    // A crash before the rename: the segments are all still in ready_for_archive.
    std::vector<fs::path> temps;
    for (fs::directory_iterator it(archive_dir(), ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().starts_with(kTempPrefix)) temps.push_back(it->path());
    if (ec) return make_error(errc::io_error, "cannot list " + archive_dir() + ": " + ec.message());
    for (const auto& t : temps) {
        HSMAUDIT_TRY(remove_file(t.string()));
        ++run.temps_removed;
    }
    if (!temps.empty()) HSMAUDIT_TRY(fsync_dir(archive_dir(), fs_));

    auto segments = scan_ready(run);
    if (!segments) return std::move(segments).error();
    HSMAUDIT_TRY(reconcile(*segments, run));

    // One archive per module serial, segments in chain order.
    std::map<std::string, std::vector<Segment>> groups;
    for (auto& s : *segments) groups[s.serial].push_back(std::move(s));
    for (auto& [serial, group] : groups) HSMAUDIT_TRY(bundle(group, run));
    run.segments_waiting -= std::min(run.segments_waiting, run.segments_archived + run.duplicates_removed);

    std::lock_guard lock(stats_mutex_);
    ++stats_.runs;
    stats_.archives_written += run.archives.size();
    stats_.segments_archived += run.segments_archived;
    stats_.duplicates_removed += run.duplicates_removed;
    stats_.last_run_ms = now_ms_();
    if (!run.archives.empty()) stats_.last_archive = run.archives.back();
    stats_.last_error.clear();
    return run;
}

Result<bool> Archiver::tick() {
    const std::int64_t now = now_ms_();
    if (failing_ > 0 && now < retry_at_ms_) return false;  // backing off after a failure: no spinning
    bool due = next_run_ms_ == 0 || now >= next_run_ms_ || failing_ > 0;
    if (!due) {
        std::size_t waiting = 0;
        std::error_code ec;
        for (fs::directory_iterator it(ready_dir(), ec), end; !ec && it != end; it.increment(ec))
            if (it->path().extension() == ".log") ++waiting;
        // A count that a pass could not lower (segments not yet committed, unreadable ones) does
        // not start another pass until it changes.
        due = !ec && waiting > options_.max_segments && waiting != waiting_after_run_;
    }
    if (!due) return false;
    auto run = run_once();
    if (!run) {
        ++failing_;
        // Exponential backoff from retry_min, at most retry_max and never longer than the schedule.
        std::int64_t wait = std::max<std::int64_t>(options_.retry_min.count(), 1);
        for (std::uint64_t i = 1; i < failing_ && wait < options_.retry_max.count(); ++i) wait *= 2;
        wait = std::min({wait, static_cast<std::int64_t>(options_.retry_max.count()),
                         static_cast<std::int64_t>(options_.interval.count())});
        retry_at_ms_ = now + wait;
        const std::string why = run.error().describe();
        {
            std::lock_guard lock(stats_mutex_);
            ++stats_.failures;
            stats_.consecutive_failures = failing_;
            stats_.next_attempt_ms = retry_at_ms_;
            stats_.last_error = why;
        }
        if (failing_ == 1) {
            // Once per failing spell: the stats and metrics count the rest.
            base::logger().error("archive: a pass failed (nothing was deleted; retrying with backoff): {}", why);
            raise("archive.failed", Severity::critical,
                  "archiving failed (no segment was deleted; they stay in ready_for_archive and are retried with "
                  "backoff): " +
                      why);
        }
        return std::move(run).error();
    }
    if (failing_ > 0) {
        base::logger().info("archive: archiving works again after {} failed pass(es)", failing_);
        raise("archive.failed_clear", Severity::info,
              "archiving works again after " + std::to_string(failing_) + " failed pass(es)");
        failing_ = 0;
        std::lock_guard lock(stats_mutex_);
        stats_.consecutive_failures = 0;
        stats_.next_attempt_ms = 0;
    }
    next_run_ms_ = now + options_.interval.count();
    waiting_after_run_ = run->segments_waiting;
    return true;
}

void Archiver::thread_body(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
        (void)tick();  // failures are alerted, counted and backed off by tick()
        std::unique_lock lock(wake_mutex_);
        wake_.wait_for(lock, stop, options_.poll_interval, [] { return false; });
    }
}

void Archiver::start() {
    thread_ = std::jthread([this](std::stop_token stop) {
        // The last resort: nothing that escapes a pass ends the daemon. The archiver stops (the
        // segments stay in ready_for_archive, where retention counts them and nothing is lost).
        const auto what = detail::run_catching([&] { thread_body(stop); });
        if (!what) return;
        try {
            {
                std::lock_guard lock(stats_mutex_);
                stats_.stopped = true;
                stats_.last_error = "stopped: " + *what;
            }
            base::logger().critical("archive: the archiver stopped on an unexpected error: {}", *what);
            raise("archive.crashed", Severity::critical,
                  "the archiver stopped on an unexpected error (" + *what +
                      "); sealed segments stay in ready_for_archive until the agent restarts");
        } catch (...) {
        }
    });
}

void Archiver::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

ArchiverStats Archiver::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

// ---------------------------------------------------------------------------------------------
// TarExpander

bool TarExpander::handles(const std::string& path) const {
    return is_archive_name(path);
}

Result<mac::ContainerContents> TarExpander::expand(const std::string& path) const {
    {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));  // an I/O error, not damage
        if (fd.get() < 0) return io("cannot open " + path);
    }
    mac::ContainerContents out;
    auto reader = open_reader(path);
    if (!reader) {
        // libarchive reads ahead when it opens: a torn gzip stream can fail here already.
        out.damage = "not a readable tar archive: " + reader.error().message;
        return out;
    }
    auto cursor = std::make_shared<TarCursor>();
    cursor->path = path;
    for (long ordinal = 0;; ++ordinal) {
        archive_entry* e = nullptr;
        const int rc = archive_read_next_header(reader->get(), &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) {
            out.damage = (ordinal == 0 ? "not a readable tar archive: "
                                       : "the archive cannot be read past member " + std::to_string(ordinal) + ": ") +
                         archive_message(reader->get());
            break;
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        if (!name.ends_with(".log")) continue;  // the manifest, anything else
        mac::ContainerMember m;
        m.name = name;
        m.size = static_cast<std::uint64_t>(archive_entry_size(e));
        const std::string display = mac::container_member_name(path, name);
        m.open = [cursor, ordinal, display]() -> Result<std::unique_ptr<base::ByteSource>> {
            HSMAUDIT_TRY(cursor->seek(ordinal));
            return std::unique_ptr<base::ByteSource>(std::make_unique<TarMemberSource>(cursor, display));
        };
        out.members.push_back(std::move(m));
    }
    return out;
}

}  // namespace hsmaudit::agent
