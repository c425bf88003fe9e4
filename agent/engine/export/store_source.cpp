#include "agent/engine/export/store_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "agent/api/errc.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/syslog_payload.h"
#include "base/logger.h"
#include "base/unique_fd.h"
#include "mac/encrypted_file.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kReadBytes = 1 << 20;

/// The longest spool line the syslog intake can write (its payload bound for the largest message
/// syslog.max_message_bytes allows, plus the line's number, time and hash): the spool reader takes
/// every such line, where segment files keep mac::kMaxLineBytes.
constexpr std::size_t kMaxSpoolLineBytes = max_syslog_payload_bytes(kMaxSyslogMessageBytes) + kSpoolLineOverheadBytes;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    const std::int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

Error io(const std::string& what) {
    return make_error(errc::store_unreadable, what + ": " + std::strerror(errno));
}

/// Where a followed file is damaged, as found by FileFollower.
struct FileDamage {
    std::uint64_t offset = 0;  // byte offset in the file (encrypted: where the damaged chunk starts)
    std::string what;
    /// Encrypted, with the damaged chunk's length intact: where the next chunk starts.
    std::optional<std::uint64_t> next_chunk;
};

/// Follows one file as it grows (plaintext, or encrypted at rest chunk by chunk) and hands out
/// complete lines. It holds the file open, so a rename (current/ -> ready_for_archive/) does not
/// disturb it. With a limit it reads no byte at or beyond it (the open segment's committed
/// length): what it reads is then durable, and damage in it is real, not a write in progress.
class FileFollower {
public:
    /// `max_line`: a longer line without its LF is damage (segments: mac::kMaxLineBytes).
    static Result<std::unique_ptr<FileFollower>> open(const std::string& path, const mac::Bytes32* store_key,
                                                      std::size_t max_line = mac::kMaxLineBytes) {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return io("cannot open " + path);
        return std::unique_ptr<FileFollower>(new FileFollower(path, std::move(fd), store_key, max_line));
    }

    /// The next complete line (without LF), or nullopt if there is none yet. The view is valid
    /// until the next call. An errc::store_damaged error leaves damage() set.
    Result<std::optional<std::string_view>> peek() {
        for (;;) {
            const auto lf = buf_.find('\n', std::max(pos_, scanned_));
            if (lf != std::string::npos) {
                scanned_ = 0;
                peeked_ = lf + 1 - pos_;
                return std::optional<std::string_view>(std::string_view(buf_).substr(pos_, lf - pos_));
            }
            scanned_ = buf_.size();  // a long line is searched once, not once per read
            if (buf_.size() - pos_ > max_line_) {
                damage_ = FileDamage{line_offset(),
                                     "a line longer than " + std::to_string(max_line_) + " bytes (no line end)",
                                     std::nullopt};
                return damaged();
            }
            auto more = fill();
            if (!more) return std::move(more).error();
            if (!*more) return std::optional<std::string_view>{};
        }
    }
    /// Drops the line peek() returned.
    void consume() {
        pos_ += peeked_;
        peeked_ = 0;
        ++lines_;
    }
    /// Reads no byte at or beyond `limit` (nullopt: the whole file, as it grows).
    void set_limit(std::optional<std::uint64_t> limit) { limit_ = limit; }
    /// The file offset of the line peek() returns next (encrypted: of the chunk holding its start).
    [[nodiscard]] std::uint64_t line_offset() const {
        if (!decoder_) return raw_off_ - (buf_.size() - pos_);
        std::uint64_t off = raw_off_;
        for (const auto& [at, raw] : chunk_starts_)
            if (at <= pos_) off = raw;
        return off;
    }
    [[nodiscard]] const std::optional<FileDamage>& damage() const { return damage_; }
    /// After damage with the next chunk known: continues there (dropping the partial line before
    /// the damaged chunk). False if the framing is lost.
    bool skip_damaged_chunk() {
        if (!damage_ || !damage_->next_chunk) return false;
        raw_off_ = *damage_->next_chunk;
        decoder_->skip();
        buf_.clear();
        chunk_starts_.clear();
        pos_ = 0;
        scanned_ = 0;
        peeked_ = 0;
        damage_.reset();
        return true;
    }
    /// Bytes the file holds beyond its last complete line (a partial line, a torn chunk), within
    /// the limit: at the end of a complete segment, a torn tail.
    [[nodiscard]] std::uint64_t leftover() const {
        struct stat st {};
        std::uint64_t beyond = 0;
        if (::fstat(fd_.get(), &st) == 0) {
            std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
            if (limit_) size = std::min(size, *limit_);
            if (size > raw_off_) beyond = size - raw_off_;
        }
        return (buf_.size() - pos_) + beyond;
    }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::uint64_t lines_consumed() const { return lines_; }

private:
    FileFollower(std::string path, UniqueFd fd, const mac::Bytes32* store_key, std::size_t max_line)
        : path_(std::move(path)), fd_(std::move(fd)), store_key_(store_key), max_line_(max_line) {}

    Error damaged() const {
        return make_error(errc::store_damaged,
                          path_ + " at byte " + std::to_string(damage_->offset) + ": " + damage_->what);
    }

    /// Bytes that may be read at `off` (the limit's rest, or `want`).
    [[nodiscard]] std::size_t allowed(std::uint64_t off, std::size_t want) const {
        if (!limit_) return want;
        if (off >= *limit_) return 0;
        return static_cast<std::size_t>(std::min<std::uint64_t>(want, *limit_ - off));
    }

    /// Reads what the file holds beyond what was read; false if nothing new.
    Result<bool> fill() {
        if (pos_ > 0) {
            buf_.erase(0, pos_);
            scanned_ = scanned_ > pos_ ? scanned_ - pos_ : 0;
            for (auto& c : chunk_starts_) c.first = c.first > pos_ ? c.first - pos_ : 0;
            while (chunk_starts_.size() > 1 && chunk_starts_[1].first == 0) chunk_starts_.erase(chunk_starts_.begin());
            pos_ = 0;
        }
        if (!kind_known_) {
            char head[mac::kEncryptedHeaderBytes];
            const ssize_t n = ::pread(fd_.get(), head, allowed(0, sizeof head), 0);
            if (n < 0) return io("cannot read " + path_);
            const std::string_view h(head, static_cast<std::size_t>(n));
            if (h.size() < mac::kEncryptedMagic.size()) {
                // Too short to tell: a plaintext file whose first line is not complete either.
                if (h.find('\n') == std::string_view::npos) return false;
            } else if (mac::is_encrypted(h)) {
                if (store_key_ == nullptr)
                    return make_error(errc::store_unreadable,
                                      path_ + " is encrypted at rest and no audit key is loaded");
                const auto header = mac::parse_encrypted_header(h);
                if (!header) return false;  // the header is not complete yet
                decoder_.emplace(*store_key_, *header);
                raw_off_ = mac::kEncryptedHeaderBytes;
            }
            kind_known_ = true;
        }
        if (!decoder_) {
            const std::size_t want = allowed(raw_off_, kReadBytes);
            if (want == 0) return false;
            // Read into a scratch buffer allocated once, not by growing buf_: resize() zero-fills
            // the whole window on every call, which is most of the cost of following a file.
            if (!scratch_) scratch_ = std::make_unique_for_overwrite<char[]>(kReadBytes);
            const ssize_t n = ::pread(fd_.get(), scratch_.get(), want, static_cast<off_t>(raw_off_));
            if (n < 0) return io("cannot read " + path_ + " at byte " + std::to_string(raw_off_));
            buf_.append(scratch_.get(), static_cast<std::size_t>(n));
            raw_off_ += static_cast<std::uint64_t>(n);
            return n > 0;
        }
        bool any = false;
        std::string bytes;  // the next chunk's bytes, as many as the decoder asked for
        while (buf_.size() < kReadBytes) {
            bytes.clear();
            mac::ChunkStep step;
            for (;;) {
                step = decoder_->decode(bytes);
                if (step.status != mac::ChunkStatus::need_more) break;
                // Not committed yet, or not (fully) written yet (or torn: see leftover()).
                if (allowed(raw_off_, step.bytes) < step.bytes) return any;
                const std::size_t have = bytes.size();
                bytes.resize(step.bytes);
                const ssize_t n =
                    ::pread(fd_.get(), bytes.data() + have, step.bytes - have, static_cast<off_t>(raw_off_ + have));
                if (n < 0) return io("cannot read " + path_ + " at byte " + std::to_string(raw_off_ + have));
                if (static_cast<std::size_t>(n) < step.bytes - have) return any;
            }
            if (step.status == mac::ChunkStatus::damaged) {
                if (any) break;  // hand out the lines before the damage first
                // A chunk whose length is intact tells where the next one starts.
                damage_ =
                    FileDamage{raw_off_, std::move(step.why),
                               step.bytes != 0 ? std::optional<std::uint64_t>(raw_off_ + step.bytes) : std::nullopt};
                return damaged();
            }
            chunk_starts_.emplace_back(buf_.size(), raw_off_);
            buf_ += step.plaintext;
            raw_off_ += step.bytes;
            any = true;
        }
        return any;
    }

    std::string path_;
    UniqueFd fd_;
    const mac::Bytes32* store_key_;
    std::size_t max_line_;
    bool kind_known_ = false;
    std::optional<mac::ChunkDecoder> decoder_;
    std::optional<std::uint64_t> limit_;
    std::uint64_t raw_off_ = 0;
    std::string buf_;
    std::unique_ptr<char[]> scratch_;                                  // kReadBytes, for plaintext reads
    std::vector<std::pair<std::size_t, std::uint64_t>> chunk_starts_;  // (index in buf_, file offset) per chunk
    std::size_t pos_ = 0;
    std::size_t scanned_ = 0;  // buf_[pos_, scanned_) holds no LF
    std::size_t peeked_ = 0;
    std::uint64_t lines_ = 0;
    std::optional<FileDamage> damage_;
};

using SegmentFile = StoredSegment;

std::vector<SegmentFile> list_segments(const std::string& audit_dir) {
    return list_store_segments(audit_dir);
}

/// Counts the lines of a growing plaintext file incrementally.
class LineCounter {
public:
    Result<std::uint64_t> count(const std::string& path) {
        if (path != path_) {
            path_ = path;
            offset_ = 0;
            lines_ = 0;
        }
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return errno == ENOENT ? Result<std::uint64_t>(std::uint64_t{0}) : io("cannot open " + path);
        std::string buf(kReadBytes, '\0');
        for (;;) {
            const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(offset_));
            if (n < 0) return io("cannot read " + path);
            if (n == 0) break;
            // Count only complete lines: stop after the last LF.
            const std::string_view got(buf.data(), static_cast<std::size_t>(n));
            const auto last = got.rfind('\n');
            if (last == std::string_view::npos) break;
            lines_ += static_cast<std::uint64_t>(std::count(got.begin(), got.begin() + last + 1, '\n'));
            offset_ += last + 1;
        }
        return lines_;
    }

private:
    std::string path_;
    std::uint64_t offset_ = 0;
    std::uint64_t lines_ = 0;
};

/// The spool's segment files, oldest first, with the first line number from the name.
std::vector<std::pair<std::uint64_t, std::string>> list_spool(const std::string& dir) {
    std::vector<std::pair<std::uint64_t, std::string>> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (const auto first = parse_spool_file_name(name)) out.emplace_back(*first, it->path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

class StoreEventSource final : public EventSource {
public:
    explicit StoreEventSource(StoreSourceOptions o)
        : o_(std::move(o)), audit_dir_(audit_dir_of(o_.state_dir)), spool_dir_(spool_dir_of(o_.state_dir)) {
        // Without the store key (OpenSSL failing to derive it), an encrypted file is an error
        // when it is reached ("no audit key is loaded"): nothing is skipped.
        if (o_.key != nullptr) {
            if (auto k = mac::store_key(*o_.key)) store_key_ = *k;
        }
        lines_[0].path = alerts_file_of(o_.state_dir);
        lines_[1].path = checkpoints_file_of(o_.state_dir);
    }

    Result<std::size_t> read(Stream stream, std::uint64_t after, std::size_t max, std::vector<Event>& out) override {
        switch (stream) {
            case Stream::audit: return read_audit(after, max, out);
            case Stream::syslog: return read_spool(after, max, out);
            case Stream::alerts: return read_lines(lines_[0], Stream::alerts, after, max, out);
            case Stream::checkpoints: return read_lines(lines_[1], Stream::checkpoints, after, max, out);
        }
        return std::size_t{0};
    }

    [[nodiscard]] SourceHealth health() const override { return health_; }

    Result<std::uint64_t> newest(Stream stream) override {
        switch (stream) {
            case Stream::audit: {
                auto p = read_store_position(audit_dir_);
                if (!p) return std::move(p).error();
                return p->next_seq - 1;
            }
            case Stream::syslog: {
                const auto files = list_spool(spool_dir_);
                if (files.empty()) return spool_.last;
                auto n = spool_counter_.count(files.back().second);
                if (!n) return std::move(n).error();
                // The first line of a spool file is its header.
                return *n == 0 ? files.back().first - 1 : files.back().first + *n - 2;
            }
            case Stream::alerts: return lines_[0].counter.count(lines_[0].path);
            case Stream::checkpoints: return lines_[1].counter.count(lines_[1].path);
        }
        return std::uint64_t{0};
    }

    Result<std::uint64_t> before_oldest(Stream stream) override {
        switch (stream) {
            case Stream::audit: {
                for (const auto& seg : list_segments(audit_dir_)) {
                    auto first = first_seq_of(seg);
                    if (first) return *first - 1;
                    // The oldest segment cannot be read: start before everything, so the reader
                    // meets (and alerts) its damage rather than a new destination silently
                    // starting after it.
                    return std::uint64_t{0};
                }
                auto p = read_store_position(audit_dir_);
                if (!p) return std::move(p).error();
                return p->next_seq - 1;
            }
            case Stream::syslog: {
                const auto files = list_spool(spool_dir_);
                return files.empty() ? std::uint64_t{0} : files.front().first - 1;
            }
            case Stream::alerts:
            case Stream::checkpoints: return std::uint64_t{0};
        }
        return std::uint64_t{0};
    }

private:
    // ---- audit ----------------------------------------------------------------------------

    std::optional<std::uint64_t> first_seq_of(const SegmentFile& seg) {
        auto f = FileFollower::open(seg.path, store_key_ ? &*store_key_ : nullptr);
        if (!f) return std::nullopt;
        auto line = (*f)->peek();
        if (!line || !*line) return std::nullopt;
        auto open = mac::parse_open_line(**line);
        if (!open) return std::nullopt;
        return open->first_seq;
    }

    void reposition_audit(std::uint64_t after) {
        audit_ = AuditCursor{};
        audit_.started = true;
        audit_.filter_after = after;
        audit_.last_pos = after;
        // Start at the last segment whose first record is <= after (so a seal at `after` is
        // delivered again), or at the oldest. A segment whose first line cannot be read is a
        // start only if nothing before it is: reading it then meets its damage (never jumps it).
        for (const auto& seg : list_segments(audit_dir_)) {
            const auto first = first_seq_of(seg);
            if (!first) {
                if (!audit_.next_epoch) audit_.next_epoch = seg.epoch;
                continue;
            }
            if (*first <= after || !audit_.next_epoch) audit_.next_epoch = seg.epoch;
            if (*first > after) break;
        }
    }

    Status open_next_segment(bool& opened) {
        opened = false;
        for (const auto& seg : list_segments(audit_dir_)) {
            if (audit_.next_epoch ? seg.epoch < *audit_.next_epoch : false) continue;
            auto f = FileFollower::open(seg.path, store_key_ ? &*store_key_ : nullptr);
            if (!f) {
                // Moved between listing and opening (rotation): list again next time.
                if (errno == ENOENT) return {};
                audit_.segment = seg;
                return std::move(f).error();
            }
            audit_.file = std::move(*f);
            audit_.segment = seg;
            audit_.next_epoch = seg.epoch + 1;
            audit_.open_line.clear();
            opened = true;
            return {};
        }
        return {};
    }

    void emit_open_if_pending(std::vector<Event>& out) {
        if (audit_.open_line.empty()) return;
        if (o_.chain_lines && audit_.open.first_seq - 1 >= audit_.filter_after) {
            Event e;
            e.stream = Stream::audit;
            e.entry = EntryKind::open;
            e.position = audit_.open.first_seq - 1;
            e.epoch = audit_.open.epoch;
            e.serial = audit_.open.serial;
            e.host = o_.host;
            e.time_ms = audit_.open.time_ms;
            e.line = audit_.open_line;
            e.event_id = make_event_id(e);
            audit_.last_pos = e.position;
            out.push_back(std::move(e));
        }
        audit_.open_line.clear();
    }

    // ---- damage (the policy is in store_source.h) -------------------------------------------

    /// The first damaged place met since the last good record: what is skipped until the next one.
    struct Episode {
        std::string file;
        std::uint64_t offset = 0;
        std::string what;
        std::uint64_t first_missing = 0;  // the first record not delivered because of it
        std::uint64_t damaged_lines = 0;  // lines (or chunks) found damaged since: records they may have held
        bool authenticated = false;       // resumed at a chunk that authenticates: its sequence numbers are genuine
    };

    /// Damage at `file`@`offset`: opens an episode (or extends the open one: one place, one alert).
    void damage(const std::string& file, std::uint64_t offset, std::string what) {
        if (audit_.episode) {
            ++audit_.episode->damaged_lines;
            return;
        }
        const std::uint64_t first = audit_.expected != 0 ? audit_.expected : audit_.filter_after + 1;
        audit_.episode = Episode{file, offset, std::move(what), first, 1, false};
        if (seen_.insert({fs::path(file).filename().string(), offset}).second) ++health_.damaged_places;
    }

    /// Good data resumes at record `seq`: the episode's records before it are skipped, announced.
    void resume_at(std::uint64_t seq) {
        if (!audit_.episode) return;
        const Episode e = std::move(*audit_.episode);
        audit_.episode.reset();
        const std::uint64_t first = std::max(e.first_missing, audit_.filter_after + 1);
        std::string lost;
        if (seq > first) {
            lost = (seq - first == 1 ? "record " + std::to_string(first)
                                     : "records " + std::to_string(first) + ".." + std::to_string(seq - 1)) +
                   " skipped, not delivered";
            health_.skipped_records += seq - first;
        } else {
            lost = "no undelivered record lost";
        }
        if (o_.damage)
            o_.damage->skipped(e.file, e.offset,
                               e.file + " at byte " + std::to_string(e.offset) + ": " + e.what + "; " + lost +
                                   " (the exporters resume at record " + std::to_string(seq) +
                                   "; what is damaged stays in place for hsmaudit verify and fsck)",
                               seq > first ? first : 0);
    }

    /// Holds the audit stream at the damaged or unreadable place: alerted once (ledger), the error
    /// returned (the runner retries with back-off), the reader repositioned at the next read.
    /// Events already read in this call are handed out first.
    Result<std::size_t> hold(std::vector<Event>& out, std::size_t before, const Error& error, const std::string& file,
                             std::uint64_t offset) {
        const std::uint64_t waiting =
            audit_.episode ? std::max(audit_.episode->first_missing, audit_.filter_after + 1) : audit_.last_pos + 1;
        const std::string place_file = audit_.episode ? audit_.episode->file : file;
        const std::uint64_t place_offset = audit_.episode ? audit_.episode->offset : offset;
        const std::string what =
            audit_.episode ? place_file + " at byte " + std::to_string(place_offset) + ": " + audit_.episode->what
                           : error.describe();
        if (seen_.insert({fs::path(place_file).filename().string(), place_offset}).second) ++health_.damaged_places;
        if (o_.damage)
            o_.damage->held(place_file, place_offset,
                            what + "; the exporters hold at record " + std::to_string(waiting) +
                                (o_.skip_damage ? " until it can be read or proven skippable (the segment complete, "
                                                  "the file readable again, or hsmaudit fsck --repair)"
                                                : " until it can be read (hsmaudit fsck --repair)"),
                            waiting);
        audit_.started = false;  // re-read from the cursor next time
        if (out.size() > before) return out.size() - before;
        return make_error(
            error.code.category() == error_category() && error.code.value() == static_cast<int>(errc::store_unreadable)
                ? errc::store_unreadable
                : errc::store_damaged,
            what);
    }

    /// The current segment holds everything it ever will: not the store's open segment, and a
    /// later segment exists (a seal also ends a segment, handled where it is read).
    bool segment_complete(const StorePosition& pos) {
        if (audit_.segment.name == pos.current) return false;
        if (const auto cur = mac::segment_file_epoch(pos.current); cur && audit_.segment.epoch > *cur) return false;
        for (const auto& seg : list_segments(audit_dir_))
            if (seg.epoch > audit_.segment.epoch) return true;
        return false;
    }

    Result<std::size_t> read_audit(std::uint64_t after, std::size_t max, std::vector<Event>& out) {
        if (!audit_.started || after != audit_.last_pos) reposition_audit(after);
        const std::size_t before = out.size();
        auto pos = read_store_position(audit_dir_);
        if (!pos) {
            const Error e = make_error(errc::store_unreadable, pos.error().describe());
            return hold(out, before, e, audit_dir_ + "/position", 0);
        }
        // Without a ledger to announce it (or skip_damage off), no damage is skipped: hold.
        auto skip_or_hold = [&](const Error& e) -> std::optional<Result<std::size_t>> {
            if (o_.damage && o_.skip_damage) return std::nullopt;
            return hold(out, before, e, audit_.file ? audit_.file->path() : audit_.segment.path, 0);
        };
        while (out.size() - before < max) {
            if (!audit_.file) {
                bool opened = false;
                if (auto st = open_next_segment(opened); !st)
                    return hold(out, before, st.error(), audit_.segment.path, 0);
                if (!opened) break;
            }
            FileFollower& file = *audit_.file;
            // The open segment is read up to its committed length only, and a segment newer than
            // it (created, not yet committed) not at all: what is read is durable, so damage in it
            // is real and never bytes a recovery is about to cut.
            std::optional<std::uint64_t> limit;
            if (audit_.segment.name == pos->current) {
                limit = pos->current_bytes;
            } else if (const auto cur = mac::segment_file_epoch(pos->current); cur && audit_.segment.epoch > *cur) {
                limit = 0;
            }
            file.set_limit(limit);
            auto peeked = file.peek();
            if (!peeked) {
                if (!file.damage()) return hold(out, before, peeked.error(), file.path(), file.line_offset());
                damage(file.path(), file.damage()->offset, file.damage()->what);
                if (auto h = skip_or_hold(peeked.error())) return std::move(*h);
                if (file.skip_damaged_chunk()) {
                    audit_.episode->authenticated = true;  // resume at the next chunk that authenticates
                    continue;
                }
                if (segment_complete(*pos)) {
                    audit_.file.reset();  // resume at the next segment's open line
                    continue;
                }
                return hold(out, before, peeked.error(), file.path(), file.damage()->offset);
            }
            if (!*peeked) {
                // Nothing more now. A segment that ends without its seal (the module never sealed
                // it) is complete once a later one exists; bytes after its last line are torn.
                if (segment_complete(*pos)) {
                    if (const auto rest = file.leftover(); rest > 0) {
                        damage(file.path(), file.line_offset(),
                               "torn: " + std::to_string(rest) + " bytes after the last complete line or chunk");
                        if (auto h = skip_or_hold(make_error(errc::store_damaged, "torn segment")))
                            return std::move(*h);
                    }
                    audit_.file.reset();
                    continue;
                }
                if (audit_.episode) {
                    // Damage in the open segment and no good record after it yet: the reader
                    // cannot tell yet what is lost.
                    return hold(out, before, make_error(errc::store_damaged, "damaged open segment"), file.path(),
                                audit_.episode->offset);
                }
                break;
            }
            const std::string_view line = **peeked;
            const std::uint64_t offset = file.line_offset();
            auto bad_line = [&](std::string what) -> std::optional<Result<std::size_t>> {
                damage(file.path(), offset, std::move(what));
                if (auto h = skip_or_hold(make_error(errc::store_damaged, "damaged line"))) return h;
                file.consume();
                return std::nullopt;
            };
            switch (mac::classify_line(line)) {
                case mac::LineKind::open: {
                    auto open = mac::parse_open_line(line);
                    if (!open) {
                        if (auto h = bad_line("malformed open line: " + open.error().message)) return std::move(*h);
                        break;
                    }
                    if (file.lines_consumed() != 0) {
                        if (auto h = bad_line("an open line in the middle of the segment")) return std::move(*h);
                        break;
                    }
                    // Records between the last one read and this segment's first are not in any
                    // segment the reader found (a segment file missing, archived, or unreadable).
                    const std::uint64_t expected = audit_.expected != 0 ? audit_.expected : audit_.filter_after + 1;
                    if (open->first_seq > expected)
                        damage(file.path(), 0,
                               "records " + std::to_string(expected) + ".." + std::to_string(open->first_seq - 1) +
                                   " are in no segment before it (a segment file missing or unreadable)");
                    if (audit_.episode) {
                        if (auto h = skip_or_hold(make_error(errc::store_damaged, "records missing")))
                            return std::move(*h);
                    }
                    audit_.expected = std::max(audit_.expected, open->first_seq);
                    audit_.open = *open;
                    audit_.open_line = std::string(line);
                    file.consume();
                    break;
                }
                case mac::LineKind::record: {
                    auto split = mac::split_record_line(line);
                    if (!split) {
                        if (auto h = bad_line("malformed record line: " + split.error().message)) return std::move(*h);
                        break;
                    }
                    if (split->seq >= pos->next_seq) return out.size() - before;  // not durable yet
                    if (audit_.expected == 0) audit_.expected = split->seq;       // no open line read before it
                    // After damage, good data resumes at the expected record, or at a later one the
                    // damage can account for (one record per damaged line; any number in a chunk
                    // skipped whole, since the next chunk's authentication proves its numbers), or
                    // at the next segment's open line. Anything else is out of sequence: repeated
                    // (a retried write) or after a gap, and damage too.
                    const bool resumes = audit_.episode && split->seq > audit_.expected &&
                                         (audit_.episode->authenticated ||
                                          split->seq - audit_.expected <= audit_.episode->damaged_lines);
                    if (split->seq != audit_.expected && !resumes) {
                        if (auto h = bad_line("record " + std::to_string(split->seq) + " out of sequence (expected " +
                                              std::to_string(audit_.expected) + ")"))
                            return std::move(*h);
                        break;
                    }
                    std::optional<mac::AuditRecord> rec;
                    if (split->seq > audit_.filter_after) {
                        auto parsed = mac::parse_record_body(split->body);
                        if (!parsed) {
                            if (auto h = bad_line("malformed record " + std::to_string(split->seq) + ": " +
                                                  parsed.error().message))
                                return std::move(*h);
                            break;
                        }
                        rec = std::move(*parsed);
                    }
                    resume_at(split->seq);
                    audit_.expected = split->seq + 1;
                    if (rec) {
                        emit_open_if_pending(out);
                        Event e;
                        e.stream = Stream::audit;
                        e.position = split->seq;
                        e.epoch = audit_.segment.epoch;
                        e.time_ms = rec->time_ms;
                        e.serial = rec->serial;
                        e.host = o_.host;
                        e.mac_hex = mac::hex_encode(split->mac);
                        e.line = std::string(line);
                        e.record = std::move(*rec);
                        e.event_id = make_event_id(e);
                        audit_.last_pos = e.position;
                        out.push_back(std::move(e));
                    }
                    audit_.open_line.clear();
                    file.consume();
                    break;
                }
                case mac::LineKind::seal: {
                    auto seal = mac::parse_seal_line(line);
                    if (!seal) {
                        if (auto h = bad_line("malformed seal line: " + seal.error().message)) return std::move(*h);
                        break;
                    }
                    const bool durable = seal->seal.last_seq < pos->next_seq && audit_.segment.name != pos->current;
                    if (!durable) return out.size() - before;
                    if (audit_.episode) {
                        // Damage before the seal: good data resumes at the next segment's open line.
                        file.consume();
                        audit_.file.reset();
                        break;
                    }
                    emit_open_if_pending(out);
                    if (o_.chain_lines && seal->seal.last_seq >= audit_.filter_after) {
                        Event e;
                        e.stream = Stream::audit;
                        e.entry = EntryKind::seal;
                        e.position = seal->seal.last_seq;
                        e.epoch = seal->seal.epoch;
                        e.serial = seal->seal.serial;
                        e.host = o_.host;
                        e.time_ms = seal->seal.time_ms;
                        e.line = std::string(line);
                        e.event_id = make_event_id(e);
                        audit_.last_pos = e.position;
                        out.push_back(std::move(e));
                    }
                    file.consume();
                    audit_.file.reset();  // a seal ends its segment
                    break;
                }
                case mac::LineKind::unknown:
                    if (auto h = bad_line("a line that is no segment entry")) return std::move(*h);
                    break;
            }
        }
        return out.size() - before;
    }

    // ---- alerts and checkpoints -------------------------------------------------------------

    struct LineStream {
        std::string path;
        std::unique_ptr<FileFollower> file;
        std::uint64_t last = 0;  // the last line number handed out (or skipped)
        bool started = false;
        LineCounter counter;
    };

    Result<std::size_t> read_lines(LineStream& s, Stream stream, std::uint64_t after, std::size_t max,
                                   std::vector<Event>& out) {
        if (!s.started || after != s.last) {
            s.file.reset();
            s.started = true;
            s.last = 0;
        }
        if (!s.file) {
            auto f = FileFollower::open(s.path, nullptr);
            if (!f) return errno == ENOENT ? Result<std::size_t>(std::size_t{0}) : std::move(f).error();
            s.file = std::move(*f);
        }
        const std::size_t before = out.size();
        while (out.size() - before < max) {
            auto peeked = s.file->peek();
            if (!peeked) return std::move(peeked).error();
            if (!*peeked) break;
            const std::string_view line = **peeked;
            const std::uint64_t n = s.last + 1;
            if (n > after) {
                Event e;
                e.stream = stream;
                e.position = n;
                e.serial = o_.serial;
                e.host = o_.host;
                if (stream == Stream::alerts) {
                    auto a = parse_alert_line(line);
                    if (a) {
                        e.alert = std::move(*a);
                    } else {
                        e.alert.kind = "agent.unreadable_alert";
                        e.alert.message = std::string(line);
                    }
                    e.time_ms = e.alert.time_ms;
                } else {
                    e.checkpoint = std::string(line);
                    e.time_ms = checkpoint_time(line);
                }
                e.event_id = make_event_id(e);
                out.push_back(std::move(e));
            }
            s.file->consume();
            s.last = n;
        }
        return out.size() - before;
    }

    static std::int64_t checkpoint_time(std::string_view line) {
        const auto at = line.find(" time=");
        if (at == std::string_view::npos) return 0;
        auto rest = line.substr(at + 6);
        auto t = mac::parse_time(rest.substr(0, rest.find(' ')));
        return t ? *t : 0;
    }

    // ---- syslog spool -----------------------------------------------------------------------

    struct SpoolCursor {
        std::unique_ptr<FileFollower> file;
        std::uint64_t file_first = 0;
        std::uint64_t last = 0;
        bool started = false;
    };

    Result<std::size_t> read_spool(std::uint64_t after, std::size_t max, std::vector<Event>& out) {
        if (!spool_.started || after != spool_.last) {
            spool_ = SpoolCursor{};
            spool_.started = true;
            spool_.last = after;
        }
        const std::size_t before = out.size();
        while (out.size() - before < max) {
            if (!spool_.file) {
                const auto files = list_spool(spool_dir_);
                // The last file that starts at or before the next line; else the oldest after it
                // (lines deleted by the spool's quota are skipped).
                const std::pair<std::uint64_t, std::string>* pick = nullptr;
                for (const auto& f : files) {
                    if (f.first <= spool_.last + 1 || pick == nullptr) pick = &f;
                    if (f.first > spool_.last + 1) break;
                }
                if (pick == nullptr || (pick->first <= spool_.file_first && spool_.file_first != 0)) break;
                auto f = FileFollower::open(pick->second, nullptr, kMaxSpoolLineBytes);
                if (!f) return errno == ENOENT ? Result<std::size_t>(std::size_t{0}) : std::move(f).error();
                spool_.file = std::move(*f);
                spool_.file_first = pick->first;
            }
            auto peeked = spool_.file->peek();
            if (!peeked) return std::move(peeked).error();
            if (!*peeked) {
                // The writer starts a new file only after finishing this one.
                const auto files = list_spool(spool_dir_);
                if (!files.empty() && files.back().first > spool_.file_first) {
                    spool_.file.reset();
                    continue;
                }
                break;
            }
            const std::string_view line = **peeked;
            if (is_spool_header(line)) {
                spool_.file->consume();
                continue;
            }
            const auto fields = parse_spool_line(line);
            if (!fields) {
                ++skipped_;
                spool_.file->consume();
                continue;
            }
            const std::uint64_t n = fields->number;
            if (n > spool_.last) {
                Event e;
                e.stream = Stream::syslog;
                e.position = n;
                e.serial = o_.serial;
                e.host = o_.host;
                if (auto t = mac::parse_time(fields->time); t) e.received_ms = *t;
                e.time_ms = e.received_ms;
                const std::string_view rest = fields->payload;
                if (auto f = decode_syslog_payload(rest)) {
                    e.syslog = std::move(*f);
                    // The message's own time when its timestamp named its zone (RFC 3339).
                    if (e.syslog.time_us) e.time_ms = floor_div(*e.syslog.time_us, 1000);
                } else {
                    e.syslog.malformed = "not a spooled message";
                    e.syslog.raw = std::string(rest);
                    e.syslog.msg = e.syslog.raw;
                }
                e.event_id = make_event_id(e);
                out.push_back(std::move(e));
                spool_.last = n;
            }
            spool_.file->consume();
        }
        return out.size() - before;
    }

    struct AuditCursor {
        bool started = false;
        std::uint64_t filter_after = 0;
        std::uint64_t last_pos = 0;
        std::optional<std::uint64_t> next_epoch;  // open the first segment with epoch >= this
        std::unique_ptr<FileFollower> file;
        SegmentFile segment;
        std::string open_line;  // read, not yet delivered (it goes with the next entry)
        mac::OpenLine open;
        std::uint64_t expected = 0;      // the sequence number the next record must have (0: not known yet)
        std::optional<Episode> episode;  // damage met since the last good record
    };

    StoreSourceOptions o_;
    std::string audit_dir_;
    std::string spool_dir_;
    std::optional<mac::Bytes32> store_key_;
    AuditCursor audit_;
    std::array<LineStream, 2> lines_;
    SpoolCursor spool_;
    LineCounter spool_counter_;
    std::uint64_t skipped_ = 0;
    SourceHealth health_;
    std::set<std::pair<std::string, std::uint64_t>> seen_;  // damaged places counted in health_
};

}  // namespace

void StoreDamageLedger::skipped(const std::string& file, std::uint64_t offset, const std::string& message,
                                std::uint64_t seq) {
    // By file name: a segment keeps its name when the store moves it from current/ to ready_for_archive/.
    const Place place{fs::path(file).filename().string(), offset};
    std::string kind;
    {
        std::lock_guard lock(mutex_);
        if (alerted_.insert(place).second) {
            kind = "store.damaged";
        } else if (held_.count(place) != 0 && skip_alerted_.insert(place).second) {
            kind = "store.damage_skipped";
        } else {
            return;
        }
    }
    base::logger().error("{}", message);
    alerts_.alert(Alert{kind, Severity::critical, message, seq, now_ms_ ? now_ms_() : 0});
}

void StoreDamageLedger::held(const std::string& file, std::uint64_t offset, const std::string& message,
                             std::uint64_t seq) {
    const Place place{fs::path(file).filename().string(), offset};
    {
        std::lock_guard lock(mutex_);
        held_.insert(place);
        if (!alerted_.insert(place).second) return;
    }
    base::logger().error("{}", message);
    alerts_.alert(Alert{"store.damaged", Severity::critical, message, seq, now_ms_ ? now_ms_() : 0});
}

std::uint64_t StoreDamageLedger::places() const {
    std::lock_guard lock(mutex_);
    return alerted_.size();
}

std::unique_ptr<EventSource> make_store_event_source(StoreSourceOptions options) {
    return std::make_unique<StoreEventSource>(std::move(options));
}

Result<Alert> parse_alert_line(std::string_view line) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string())
        return make_error(errc::io_error, "not an alert line");
    Alert a;
    a.kind = j["kind"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) a.message = j["message"].get<std::string>();
    const std::string sev = j.contains("severity") && j["severity"].is_string() ? j["severity"].get<std::string>() : "";
    a.severity = sev == "critical" ? Severity::critical : sev == "info" ? Severity::info : Severity::warning;
    if (j.contains("seq") && j["seq"].is_number_unsigned()) a.seq = j["seq"].get<std::uint64_t>();
    if (j.contains("time") && j["time"].is_string())
        if (auto t = mac::parse_time(j["time"].get<std::string>()); t) a.time_ms = *t;
    return a;
}

}  // namespace hsmaudit::agent
