#include "agent/export/store_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "agent/errc.h"
#include "agent/store/audit_store.h"
#include "mac/encrypted_file.h"
#include "mac/segment_format.h"
#include "mac/unique_fd.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kReadBytes = 1 << 20;

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

/// Follows one file as it grows (plaintext, or encrypted at rest chunk by chunk) and hands out
/// complete lines. It holds the file open, so a rename (current/ -> ready_for_archive/) does not
/// disturb it.
class FileFollower {
public:
    static Result<std::unique_ptr<FileFollower>> open(const std::string& path, const mac::Bytes32* store_key) {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) return io("cannot open " + path);
        return std::unique_ptr<FileFollower>(new FileFollower(path, std::move(fd), store_key));
    }

    /// The next complete line (without LF), or nullopt if there is none yet. The view is valid
    /// until the next call.
    Result<std::optional<std::string_view>> peek() {
        for (;;) {
            const auto lf = buf_.find('\n', pos_);
            if (lf != std::string::npos) {
                peeked_ = lf + 1 - pos_;
                return std::optional<std::string_view>(std::string_view(buf_).substr(pos_, lf - pos_));
            }
            if (buf_.size() - pos_ > mac::kMaxLineBytes)
                return make_error(errc::io_error,
                                  path_ + ": a line longer than " + std::to_string(mac::kMaxLineBytes) + " bytes");
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
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::uint64_t lines_consumed() const { return lines_; }

private:
    FileFollower(std::string path, UniqueFd fd, const mac::Bytes32* store_key)
        : path_(std::move(path)), fd_(std::move(fd)), store_key_(store_key) {}

    /// Reads what the file holds beyond what was read; false if nothing new.
    Result<bool> fill() {
        if (pos_ > 0) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        if (!kind_known_) {
            char head[mac::kEncryptedHeaderBytes];
            const ssize_t n = ::pread(fd_.get(), head, sizeof head, 0);
            if (n < 0) return io("cannot read " + path_);
            const std::string_view h(head, static_cast<std::size_t>(n));
            if (h.size() < mac::kEncryptedMagic.size()) {
                // Too short to tell: a plaintext file whose first line is not complete either.
                if (h.find('\n') == std::string_view::npos) return false;
            } else if (mac::is_encrypted(h)) {
                if (store_key_ == nullptr)
                    return make_error(errc::io_error, path_ + " is encrypted at rest and no audit key is loaded");
                if (h.size() < mac::kEncryptedHeaderBytes) return false;
                mac::Salt salt{};
                std::memcpy(salt.data(), head + mac::kEncryptedMagic.size(), salt.size());
                opener_.emplace(*store_key_, salt);
                raw_off_ = mac::kEncryptedHeaderBytes;
            }
            kind_known_ = true;
        }
        if (!opener_) {
            const std::size_t old = buf_.size();
            buf_.resize(old + kReadBytes);
            const ssize_t n = ::pread(fd_.get(), buf_.data() + old, kReadBytes, static_cast<off_t>(raw_off_));
            if (n < 0) {
                buf_.resize(old);
                return io("cannot read " + path_);
            }
            buf_.resize(old + static_cast<std::size_t>(n));
            raw_off_ += static_cast<std::uint64_t>(n);
            return n > 0;
        }
        bool any = false;
        while (buf_.size() < kReadBytes) {
            unsigned char len_bytes[4];
            const ssize_t n = ::pread(fd_.get(), len_bytes, 4, static_cast<off_t>(raw_off_));
            if (n < 0) return io("cannot read " + path_);
            if (n < 4) break;  // the next chunk is not (fully) written yet
            std::uint32_t len = 0;
            for (unsigned char c : len_bytes) len = (len << 8) | c;
            if (len == 0 || len > mac::kMaxChunkBytes)
                return make_error(errc::io_error,
                                  path_ + ": chunk " + std::to_string(chunk_) + " has a bad length (damaged)");
            std::string sealed(len + 16, '\0');
            const ssize_t m = ::pread(fd_.get(), sealed.data(), sealed.size(), static_cast<off_t>(raw_off_ + 4));
            if (m < 0) return io("cannot read " + path_);
            if (static_cast<std::size_t>(m) < sealed.size()) break;  // being written
            auto plain = opener_->open(chunk_, sealed);
            if (!plain) return make_error(errc::io_error, path_ + ": " + plain.error().message);
            buf_ += *plain;
            raw_off_ += 4 + sealed.size();
            ++chunk_;
            any = true;
        }
        return any;
    }

    std::string path_;
    UniqueFd fd_;
    const mac::Bytes32* store_key_;
    bool kind_known_ = false;
    std::optional<mac::ChunkOpener> opener_;
    std::uint64_t raw_off_ = 0;
    std::uint64_t chunk_ = 0;
    std::string buf_;
    std::size_t pos_ = 0;
    std::size_t peeked_ = 0;
    std::uint64_t lines_ = 0;
};

struct SegmentFile {
    std::uint64_t epoch = 0;
    std::string name;
    std::string path;
    bool ready = false;  // in ready_for_archive/
};

/// Segments in ready_for_archive/ and current/, in epoch order (a file in both: the sealed copy).
std::vector<SegmentFile> list_segments(const std::string& audit_dir) {
    std::vector<SegmentFile> out;
    std::error_code ec;
    for (const char* sub : {"ready_for_archive", "current"}) {
        const fs::path dir = fs::path(audit_dir) / sub;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const auto epoch = mac::segment_file_epoch(name);
            if (!epoch) continue;
            if (std::any_of(out.begin(), out.end(), [&](const SegmentFile& s) { return s.epoch == *epoch; })) continue;
            out.push_back(SegmentFile{*epoch, name, it->path().string(), std::string_view(sub) == "ready_for_archive"});
        }
        ec.clear();
    }
    std::sort(out.begin(), out.end(), [](const SegmentFile& a, const SegmentFile& b) { return a.epoch < b.epoch; });
    return out;
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
        if (!name.starts_with("spool-") || !name.ends_with(".log") || name.size() != 6 + 16 + 4) continue;
        std::uint64_t first = 0;
        bool ok = true;
        for (char c : std::string_view(name).substr(6, 16)) {
            const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
            if (d < 0) ok = false;
            first = first << 4 | static_cast<std::uint64_t>(d < 0 ? 0 : d);
        }
        if (ok) out.emplace_back(first, it->path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

SyslogFields syslog_fields(const nlohmann::json& j) {
    SyslogFields f;
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
    if (j.contains("facility") && j["facility"].is_number_integer()) f.facility = j["facility"].get<int>();
    if (j.contains("severity") && j["severity"].is_number_integer()) f.severity = j["severity"].get<int>();
    f.timestamp = str("timestamp");
    f.host = str("host");
    f.app = str("app");
    f.procid = str("procid");
    f.msgid = str("msgid");
    f.msg = str("msg");
    f.transport = str("transport");
    f.peer = str("peer");
    f.malformed = str("malformed");
    f.raw = str("raw");
    if (j.contains("sd") && j["sd"].is_object()) {
        for (const auto& [id, params] : j["sd"].items()) {
            std::vector<std::pair<std::string, std::string>> ps;
            if (params.is_object())
                for (const auto& [name, value] : params.items())
                    ps.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
            f.sd.emplace_back(id, std::move(ps));
        }
    }
    return f;
}

class StoreEventSource final : public EventSource {
public:
    explicit StoreEventSource(StoreSourceOptions o)
        : o_(std::move(o)), audit_dir_(audit_dir_of(o_.state_dir)), spool_dir_(spool_dir_of(o_.state_dir)) {
        if (o_.key != nullptr) store_key_ = mac::store_key(*o_.key);
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
        // delivered again), or at the oldest.
        for (const auto& seg : list_segments(audit_dir_)) {
            const auto first = first_seq_of(seg);
            if (!first) continue;
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

    Result<std::size_t> read_audit(std::uint64_t after, std::size_t max, std::vector<Event>& out) {
        if (!audit_.started || after != audit_.last_pos) reposition_audit(after);
        auto pos = read_store_position(audit_dir_);
        if (!pos) return std::move(pos).error();
        const std::size_t before = out.size();
        while (out.size() - before < max) {
            if (!audit_.file) {
                bool opened = false;
                HSMAUDIT_TRY(open_next_segment(opened));
                if (!opened) break;
            }
            auto peeked = audit_.file->peek();
            if (!peeked) return std::move(peeked).error();
            if (!*peeked) {
                // Nothing more now. A segment the store moved to ready_for_archive without a seal
                // (the module never sealed it) is complete once a later one exists.
                if (unsealed_but_complete(*pos)) {
                    audit_.file.reset();
                    continue;
                }
                break;
            }
            const std::string_view line = **peeked;
            switch (mac::classify_line(line)) {
                case mac::LineKind::open: {
                    auto open = mac::parse_open_line(line);
                    if (!open)
                        return make_error(errc::io_error,
                                          audit_.file->path() + ": malformed open line: " + open.error().message);
                    audit_.open = *open;
                    audit_.open_line = std::string(line);
                    audit_.file->consume();
                    break;
                }
                case mac::LineKind::record: {
                    auto split = mac::split_record_line(line);
                    if (!split)
                        return make_error(errc::io_error,
                                          audit_.file->path() + ": malformed record line: " + split.error().message);
                    if (split->seq >= pos->next_seq) return out.size() - before;  // not durable yet
                    if (split->seq > audit_.filter_after) {
                        auto rec = mac::parse_record_body(split->body);
                        if (!rec)
                            return make_error(errc::io_error, audit_.file->path() + ": malformed record " +
                                                                  std::to_string(split->seq) + ": " +
                                                                  rec.error().message);
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
                    audit_.file->consume();
                    break;
                }
                case mac::LineKind::seal: {
                    auto seal = mac::parse_seal_line(line);
                    if (!seal)
                        return make_error(errc::io_error,
                                          audit_.file->path() + ": malformed seal line: " + seal.error().message);
                    const bool durable = seal->seal.last_seq < pos->next_seq && audit_.segment.name != pos->current;
                    if (!durable) return out.size() - before;
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
                    audit_.file->consume();
                    audit_.file.reset();  // a seal ends its segment
                    break;
                }
                case mac::LineKind::unknown:
                    ++skipped_;
                    audit_.file->consume();
                    break;
            }
        }
        return out.size() - before;
    }

    bool unsealed_but_complete(const StorePosition& pos) {
        if (!audit_.segment.ready || audit_.segment.name == pos.current) return false;
        for (const auto& seg : list_segments(audit_dir_))
            if (seg.epoch > audit_.segment.epoch) return true;
        return false;
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
                auto f = FileFollower::open(pick->second, nullptr);
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
            if (line.starts_with("@spool ")) {
                spool_.file->consume();
                continue;
            }
            const auto sp1 = line.find(' ');
            std::uint64_t n = 0;
            if (sp1 == std::string_view::npos || !mac::parse_u64(line.substr(0, sp1), n)) {
                ++skipped_;
                spool_.file->consume();
                continue;
            }
            if (n > spool_.last) {
                Event e;
                e.stream = Stream::syslog;
                e.position = n;
                e.serial = o_.serial;
                e.host = o_.host;
                std::string_view rest = line.substr(sp1 + 1);
                const auto sp2 = rest.find(' ');
                if (auto t = mac::parse_time(rest.substr(0, sp2)); t) e.time_ms = *t;
                rest = sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);
                const auto h = rest.rfind(" h=");
                if (h != std::string_view::npos) rest = rest.substr(0, h);
                const auto j = nlohmann::json::parse(rest, nullptr, false);
                if (j.is_object()) {
                    e.syslog = syslog_fields(j);
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
};

}  // namespace

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
