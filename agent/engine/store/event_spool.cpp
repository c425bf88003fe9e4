#include "agent/engine/store/event_spool.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "base/files.h"
#include "base/line_reader.h"
#include "base/logger.h"
#include "mac/record.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

// write_pending() writes in pieces of about this size, so a batch is not copied whole once more.
constexpr std::size_t kWriteChunk = std::size_t{1} << 20;

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

/// The spool's files, oldest first (a file whose name is not a spool file name is not one).
std::vector<fs::path> segments_of(const std::string& dir) {
    std::vector<std::pair<std::uint64_t, fs::path>> found;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (auto first = parse_spool_file_name(it->path().filename().string())) found.emplace_back(*first, it->path());
    std::sort(found.begin(), found.end());
    std::vector<fs::path> out;
    out.reserve(found.size());
    for (auto& f : found) out.push_back(std::move(f.second));
    return out;
}

mac::Bytes32 genesis(mac::Sha256& sha, std::string_view name) {
    return sha.compute(mac::as_bytes("hsmaudit/v1/spool/"), mac::as_bytes(name));
}

/// Splits "<n> <time> <payload> h=<hex>" into n, the hashed part and h (all present).
bool split_line(std::string_view line, std::uint64_t& n, std::string_view& body, mac::Bytes32& h) {
    const auto v = parse_spool_line(line);
    if (!v || !v->h) return false;
    n = v->number;
    body = v->hashed;
    h = *v->h;
    return true;
}

}  // namespace

std::string spool_file_name(std::uint64_t first_line) {
    char buf[40];
    (void)std::snprintf(buf, sizeof buf, "spool-%016llx.log", static_cast<unsigned long long>(first_line));
    return buf;
}

std::optional<std::uint64_t> parse_spool_file_name(std::string_view name) {
    constexpr std::string_view kPrefix = "spool-", kSuffix = ".log";
    if (name.size() != kPrefix.size() + 16 + kSuffix.size() || !name.starts_with(kPrefix) || !name.ends_with(kSuffix))
        return std::nullopt;
    std::uint64_t first = 0;
    for (char c : name.substr(kPrefix.size(), 16)) {
        const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        first = first << 4 | static_cast<std::uint64_t>(d);
    }
    return first;
}

std::string spool_header_line(std::string_view name, std::uint64_t first_line, const mac::Bytes32& prev) {
    std::string h = "@spool v=1 name=";
    h += name;
    h += " first=" + std::to_string(first_line) + " prev=" + mac::hex_encode(prev) + "\n";
    return h;
}

bool is_spool_header(std::string_view line) {
    return line.starts_with("@spool ");
}

std::optional<SpoolHeader> parse_spool_header(std::string_view line) {
    if (!line.starts_with("@spool v=1 name=")) return std::nullopt;
    const auto f = line.find(" first=");
    const auto p = line.find(" prev=");
    if (f == std::string_view::npos || p == std::string_view::npos || p < f) return std::nullopt;
    SpoolHeader h;
    if (!mac::parse_u64(line.substr(f + 7, p - f - 7), h.first_line) || !mac::hex_decode(line.substr(p + 6), h.prev))
        return std::nullopt;
    return h;
}

std::optional<SpoolLineView> parse_spool_line(std::string_view line) {
    const auto sp = line.find(' ');
    SpoolLineView v;
    if (sp == std::string_view::npos || !mac::parse_u64(line.substr(0, sp), v.number)) return std::nullopt;
    std::string_view rest = line.substr(sp + 1);
    const auto sp2 = rest.find(' ');
    v.time = rest.substr(0, sp2);
    rest = sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);
    const auto ph = rest.rfind(" h=");
    v.payload = ph == std::string_view::npos ? rest : rest.substr(0, ph);
    const auto hp = line.rfind(" h=");
    if (hp != std::string_view::npos && hp >= sp) {
        mac::Bytes32 h{};
        if (mac::hex_decode(line.substr(hp + 3), h)) {
            v.h = h;
            v.hashed = line.substr(0, hp);
        }
    }
    return v;
}

EventSpool::EventSpool(SpoolOptions options, std::int64_t (*now_ms)())
    : options_(std::move(options)),
      fs_(options_.fs != nullptr ? *options_.fs : base::posix_file_system()),
      now_ms_(now_ms),
      sha_(*mac::Sha256::create()),
      notices_{NoticeLimiter(options_.notify_interval), NoticeLimiter(options_.notify_interval),
               NoticeLimiter(options_.notify_interval)},
      room_(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)) {}  // readable: there is room

EventSpool::~EventSpool() {
    stop();
}

Result<std::unique_ptr<EventSpool>> EventSpool::open(SpoolOptions options, std::int64_t (*now_ms)()) {
    if (!mac::Sha256::create()) return make_error(errc::internal, "SHA-256 is unavailable");
    if (options.queue_max_bytes == 0 || options.queue_max == 0)
        return make_error(errc::invalid_argument, "the spool's queue bounds must not be 0");
    std::unique_ptr<EventSpool> s(new EventSpool(std::move(options), now_ms));
    if (!s->room_.valid()) return io("eventfd");
    std::lock_guard wl(s->write_mutex_);
    HSMAUDIT_TRY(s->recover());
    s->durable_head_ = s->head_;
    s->durable_next_ = s->next_line_;
    s->pending_head_ = s->head_;
    std::lock_guard lock(s->mutex_);
    s->stats_.next_line = s->next_line_;
    return s;
}

/// Finds the end of the newest segment's last complete, hash-valid line and cuts what follows;
/// opens it for appending. The path taken at start and after every failure. A newest segment
/// that holds not even a complete header (its creation failed, or recovery cut it back to
/// nothing) never held a durable line: it is emptied and its header is written again before its
/// first line, in the same file (a reader holding it open keeps following it); if its name does
/// not fit the segment before it, it is removed.
Status EventSpool::recover() {
    std::error_code ec;
    fs::create_directories(options_.dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + options_.dir + ": " + ec.message());
    fd_.reset();
    segment_path_.clear();
    segment_bytes_ = 0;
    segment_durable_ = 0;
    header_needed_ = false;
    dir_sync_needed_ = false;
    head_ = genesis(sha_, options_.name);
    next_line_ = 1;
    std::optional<fs::path> headless;  // the newest segment, if it has no complete header
    fs::path last;
    std::uint64_t good_bytes = 0;
    auto segs = segments_of(options_.dir);
    while (!segs.empty()) {
        const fs::path path = segs.back();
        segs.pop_back();
        auto src = base::FileSource::open(path.string());
        if (!src) return std::move(src).error();
        const std::uint64_t size = (*src)->size();
        base::LineReader reader(std::move(*src), 1 << 20);
        base::Line line;
        std::uint64_t good = 0;
        bool header = true;
        bool torn_header = false;
        mac::Bytes32 head{};
        std::uint64_t next = 0;
        for (;;) {
            auto got = reader.next(line);
            if (!got) return std::move(got).error();
            if (!*got || !line.terminated || line.too_long) {
                torn_header = header && (!*got || !line.terminated);
                break;
            }
            if (header) {
                if (auto hdr = parse_spool_header(line.text)) {
                    next = hdr->first_line;
                    head = hdr->prev;
                } else {
                    break;
                }
                header = false;
            } else {
                std::uint64_t n = 0;
                std::string_view body;
                mac::Bytes32 h{};
                if (!split_line(line.text, n, body, h) || n != next) break;
                if (sha_.compute(head, mac::as_bytes(body)) != h) break;
                head = h;
                ++next;
            }
            good = reader.bytes_consumed();
        }
        if (header) {
            if (!torn_header)
                return make_error(errc::io_error, path.string() + " has no valid header; run 'hsmaudit fsck'");
            if (!headless) {
                headless = path;
                continue;
            }
            // Only the newest can be headless; an older one is a leftover: remove it.
            if (fs_.unlink(path.c_str()) != 0 && errno != ENOENT) return io("cannot remove " + path.string());
            continue;
        }
        if (size > good && fs_.truncate(path.c_str(), static_cast<off_t>(good)) != 0)
            return io("cannot cut the torn tail of " + path.string());
        last = path;
        good_bytes = good;
        head_ = head;
        next_line_ = next;
        break;
    }
    if (headless) {
        if (headless->filename().string() == spool_file_name(next_line_)) {
            if (fs_.truncate(headless->c_str(), 0) != 0) return io("cannot cut " + headless->string());
            fd_.reset(fs_.open(headless->c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, 0));
            if (!fd_.valid()) return io("cannot open " + headless->string());
            segment_path_ = headless->string();
            header_needed_ = true;
            dir_sync_needed_ = true;  // its creation may not have reached the directory sync
            return {};
        }
        if (fs_.unlink(headless->c_str()) != 0 && errno != ENOENT) return io("cannot remove " + headless->string());
    }
    if (last.empty()) return {};
    fd_.reset(fs_.open(last.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, 0));
    if (!fd_.valid()) return io("cannot open " + last.string());
    segment_path_ = last.string();
    segment_bytes_ = good_bytes;
    segment_durable_ = good_bytes;
    return {};
}

/// After a failure: cut the segment back to what was made durable, then recover() as at start.
/// What is on disk must then end exactly where the kept lines begin.
Status EventSpool::reopen() {
    fd_.reset();
    if (!segment_path_.empty() && fs_.truncate(segment_path_.c_str(), static_cast<off_t>(segment_durable_)) != 0 &&
        errno != ENOENT)
        return io("cannot cut " + segment_path_ + " back to its durable length");
    HSMAUDIT_TRY(recover());
    if (next_line_ != durable_next_ || head_ != durable_head_)
        return make_error(errc::io_error, "the spool in " + options_.dir + " ends at line " +
                                              std::to_string(next_line_ - 1) + " where line " +
                                              std::to_string(durable_next_ - 1) +
                                              " was durable; it was damaged or changed: run 'hsmaudit fsck'");
    written_ = 0;
    broken_ = false;
    std::lock_guard lock(mutex_);
    ++stats_.recoveries;
    return {};
}

Status EventSpool::fail(Error e) {
    broken_ = true;
    fd_.reset();  // never fsync this descriptor again: recovery opens a new one
    std::uint64_t errors = 0;
    {
        std::lock_guard lock(mutex_);
        ++stats_.write_errors;
        stats_.broken = true;
        stats_.last_error = e.describe();
        stats_.waiting = pending_.size();
        errors = stats_.write_errors;
    }
    ++errors_since_notice_;
    if (notice_due(0)) {
        notify("spool.write_failed",
               e.describe() + " (" + std::to_string(errors_since_notice_) + " failure(s) since the last notice, " +
                   std::to_string(errors) + " in all; " + std::to_string(pending_.size()) +
                   " line(s) kept for the retry)",
               Severity::critical);
        errors_since_notice_ = 0;
        failing_noticed_ = true;
    }
    return e;
}

bool EventSpool::notice_due(std::size_t kind) {
    return notices_[kind].due();
}

void EventSpool::notify(std::string_view kind, const std::string& message, Severity severity) {
    try {
        if (options_.alerts != nullptr) {
            std::int64_t time_ms = 0;
            try {
                time_ms = now_ms_();
            } catch (...) {
                // The clock is what failed (see start()): the alert still goes out.
            }
            options_.alerts->alert(Alert{std::string(kind), severity, message, 0, time_ms});
            return;
        }
        auto& log = base::logger();
        switch (severity) {
            case Severity::info: log.info("{}: {}", kind, message); break;
            case Severity::warning: log.warn("{}: {}", kind, message); break;
            case Severity::critical: log.error("{}: {}", kind, message); break;
        }
    } catch (...) {
        // The owner's hook failed: the spool keeps going (the counters still tell).
    }
}

/// fdatasync of the current segment; on success the lines written to it are durable.
Status EventSpool::sync_current() {
    if (fs_.fdatasync(fd_.get()) != 0) return fail(io("cannot fsync " + segment_path_));
    segment_durable_ = segment_bytes_;
    if (written_ > 0) {
        durable_head_ = pending_[written_ - 1].head;
        durable_next_ += written_;
        std::uint64_t cost = 0;
        for (std::size_t i = 0; i < written_; ++i) cost += pending_[i].cost;
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(written_));
        std::lock_guard lock(mutex_);
        release(cost);
        stats_.appended += written_;
        stats_.next_line = durable_next_;
        stats_.waiting = pending_.size();
        written_ = 0;
    }
    return {};
}

Status EventSpool::open_segment() {
    // The caller made the previous segment durable: this one begins at the first kept line.
    const std::string path = (fs::path(options_.dir) / spool_file_name(durable_next_)).string();
    fd_.reset(fs_.open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!fd_.valid()) return fail(io("cannot create " + path));
    segment_path_ = path;
    segment_bytes_ = 0;
    segment_durable_ = 0;  // a header not yet synced is cut by recovery, and written again
    header_needed_ = true;
    dir_sync_needed_ = true;
    return write_header();
}

/// The segment's header, then the directory sync that makes the new file durable.
Status EventSpool::write_header() {
    const std::string header = spool_header_line(options_.name, durable_next_, durable_head_);
    if (auto st = base::write_all(fd_.get(), header, segment_path_, fs_); !st) return fail(std::move(st).error());
    segment_bytes_ = header.size();
    header_needed_ = false;
    if (dir_sync_needed_) {
        if (auto st = base::fsync_dir(options_.dir, fs_); !st) return fail(std::move(st).error());
        dir_sync_needed_ = false;
    }
    return {};
}

/// Writes every kept line (starting new segments as they fill) and syncs.
Status EventSpool::write_pending() {
    std::string out;
    std::size_t in_out = 0;
    auto write_out = [&]() -> Status {
        if (out.empty()) return {};
        if (auto st = base::write_all(fd_.get(), out, segment_path_, fs_); !st) return fail(std::move(st).error());
        segment_bytes_ += out.size();
        written_ += in_out;
        out.clear();
        in_out = 0;
        return {};
    };
    while (written_ + in_out < pending_.size()) {
        if (header_needed_) {
            HSMAUDIT_TRY(write_header());  // a segment recovery emptied
        } else if (!fd_.valid() || segment_bytes_ + out.size() >= options_.segment_max_bytes) {
            HSMAUDIT_TRY(write_out());
            if (fd_.valid()) HSMAUDIT_TRY(sync_current());  // durable before the next segment begins
            HSMAUDIT_TRY(open_segment());
        }
        out += pending_[written_ + in_out].text;
        ++in_out;
        if (out.size() >= kWriteChunk) HSMAUDIT_TRY(write_out());  // no second copy of a whole batch
    }
    HSMAUDIT_TRY(write_out());
    return sync_current();
}

void EventSpool::enforce_quota() {
    auto segs = segments_of(options_.dir);
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& p : segs) total += fs::file_size(p, ec);
    // Never delete the segment being written.
    for (std::size_t i = 0; i + 1 < segs.size() && total > options_.quota_bytes; ++i) {
        const std::uint64_t size = fs::file_size(segs[i], ec);
        if (fs_.unlink(segs[i].c_str()) != 0) {
            if (notice_due(2))
                notify("spool.quota_failed", io("cannot delete " + segs[i].string()).describe(), Severity::warning);
            return;
        }
        total -= size;
        std::lock_guard lock(mutex_);
        ++stats_.deleted_segments;
    }
}

bool EventSpool::push(std::string payload) {
    const std::uint64_t cost = payload.size() + kLineOverhead;
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_max || stats_.held_bytes + cost > 2 * options_.queue_max_bytes) {
        ++stats_.dropped;
        return false;
    }
    queue_.push_back(std::move(payload));
    queued_bytes_ += cost;
    stats_.held_bytes += cost;
    if (stats_.held_bytes >= options_.queue_max_bytes && !stats_.full) {
        // Full: the eventfd is emptied (unreadable) so the held-back sources sleep in poll.
        std::uint64_t v = 0;
        [[maybe_unused]] auto n = ::read(room_.get(), &v, sizeof v);
        stats_.full = true;
        ++stats_.full_spells;
        full_.store(true, std::memory_order_release);
    }
    if (writer_wanted()) cv_.notify_one();
    return true;
}

bool EventSpool::writer_wanted() const {
    return writer_early_ && queued_bytes_ >= options_.queue_max_bytes / 2;
}

void EventSpool::release(std::uint64_t bytes) {
    stats_.held_bytes -= std::min(bytes, stats_.held_bytes);
    // Room again at 3/4 of the bound, not at once: the sources resume with room for a good batch.
    if (stats_.full && stats_.held_bytes <= options_.queue_max_bytes / 4 * 3) {
        stats_.full = false;
        full_.store(false, std::memory_order_release);
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(room_.get(), &one, sizeof one);
    }
}

Status EventSpool::flush() {
    std::lock_guard wl(write_mutex_);
    if (broken_) {
        if (auto st = reopen(); !st) return fail(std::move(st).error());
    }
    // Lines kept from a failed write go first; new ones are taken only once they are durable,
    // so the queue (not this list) is what fills while the disk is full.
    if (!pending_.empty()) HSMAUDIT_TRY(write_pending());
    std::deque<std::string> work;
    {
        std::lock_guard lock(mutex_);
        work.swap(queue_);
        queued_bytes_ = 0;  // still held (stats_.held_bytes) until durable
    }
    for (auto& payload : work) {
        const std::uint64_t cost = payload.size() + kLineOverhead;
        for (char& c : payload)
            if (c == '\n' || c == '\r') c = ' ';  // one line per event, whatever the payload held
        Pending p;
        p.text = std::to_string(durable_next_ + pending_.size());
        p.text += ' ';
        mac::append_time(now_ms_(), p.text);
        p.text += ' ';
        p.text += payload;
        p.head = sha_.compute(pending_head_, mac::as_bytes(p.text));
        p.text += " h=";
        mac::hex_append(p.head, p.text);
        p.text += '\n';
        p.cost = cost;
        std::string().swap(payload);  // freed as it is copied: the batch is not held twice
        pending_head_ = p.head;
        pending_.push_back(std::move(p));
    }
    const bool wrote = !pending_.empty();
    if (wrote) HSMAUDIT_TRY(write_pending());
    {
        std::lock_guard lock(mutex_);
        stats_.broken = false;
        stats_.waiting = 0;
    }
    if (wrote && options_.on_durable) options_.on_durable();
    if (failing_noticed_) {
        failing_noticed_ = false;
        notify("spool.recovered", "the spool in " + options_.dir + " is written again", Severity::info);
    }
    enforce_quota();
    return {};
}

void EventSpool::report_drops() {
    std::uint64_t dropped = 0;
    {
        std::lock_guard lock(mutex_);
        dropped = stats_.dropped;
    }
    if (dropped == dropped_noticed_ || !notice_due(1)) return;
    notify("spool.dropped",
           std::to_string(dropped - dropped_noticed_) + " syslog line(s) dropped since the last notice (" +
               std::to_string(dropped) + " in all): the spool's queue (" + std::to_string(options_.queue_max) +
               " lines, " + std::to_string(options_.queue_max_bytes) + " bytes) is full",
           Severity::critical);
    dropped_noticed_ = dropped;
}

void EventSpool::writer_loop(const std::stop_token& stop) {
    auto delay = options_.flush_interval;
    while (!stop.stop_requested()) {
        {
            // Woken early when the queue reaches half the byte bound (never while backing off,
            // when a full queue is the normal state): a flood is written in batches of that size.
            std::unique_lock lock(mutex_);
            cv_.wait_for(lock, delay, [&] { return stop.stop_requested() || writer_wanted(); });
        }
        if (stop.stop_requested()) break;  // stop() writes the rest
        const bool ok = static_cast<bool>(flush());
        if (ok) {
            delay = options_.flush_interval;
        } else {
            // Back off while the disk is full or failing: no spinning, and the kept lines wait.
            delay = std::min(std::max(delay * 2, options_.flush_interval), options_.retry_max);
        }
        {
            std::lock_guard lock(mutex_);
            writer_early_ = ok;
        }
        report_drops();
    }
}

void EventSpool::start() {
    writer_ = std::jthread([this](std::stop_token stop) {
        // Last resort: no exception ends the daemon. The spool stops writing (pushes then fill
        // the queue and are counted as dropped), says so once, and stop() still tries a flush.
        const auto failed = detail::run_catching([&] { writer_loop(stop); });
        if (!failed) return;
        const std::string& why = *failed;
        {
            std::lock_guard lock(mutex_);
            stats_.broken = true;
            stats_.last_error = "the spool writer stopped: " + why;
        }
        notify("spool.writer_stopped", "the spool writer in " + options_.dir + " stopped: " + why, Severity::critical);
    });
}

void EventSpool::stop() {
    if (writer_.joinable()) {
        writer_.request_stop();
        cv_.notify_all();
        writer_.join();
    }
    try {
        if (auto st = flush(); !st) {
            std::lock_guard lock(mutex_);
            base::logger().error("the spool in {} stops with {} line(s) not durable: {}", options_.dir,
                                 queue_.size() + stats_.waiting, st.error().describe());
        }
    } catch (const std::exception& e) {
        base::logger().error("the spool in {} failed to stop cleanly: {}", options_.dir, e.what());
    } catch (...) {
        base::logger().error("the spool in {} failed to stop cleanly", options_.dir);
    }
}

SpoolStats EventSpool::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

Result<SpoolCheck> check_spool(const std::string& dir) {
    SpoolCheck c;
    auto sha = mac::Sha256::create();
    if (!sha) return std::move(sha).error();
    std::optional<mac::Bytes32> head;
    std::uint64_t expect = 0;
    for (const auto& path : segments_of(dir)) {
        ++c.segments;
        auto src = base::FileSource::open(path.string());
        if (!src) return std::move(src).error();
        base::LineReader reader(std::move(*src), 1 << 20);
        base::Line line;
        bool header = true;
        for (;;) {
            auto got = reader.next(line);
            if (!got) return std::move(got).error();
            if (!*got) break;
            const std::string where = path.string() + ":" + std::to_string(line.number) + ": ";
            if (!line.terminated) {
                c.faults.push_back(where + "torn last line");
                break;
            }
            if (header) {
                header = false;
                std::uint64_t first = 0;
                mac::Bytes32 prev{};
                if (auto hdr = parse_spool_header(line.text)) {
                    first = hdr->first_line;
                    prev = hdr->prev;
                } else {
                    c.faults.push_back(where + "not a spool segment header");
                    break;
                }
                if (head && (prev != *head || first != expect))
                    c.faults.push_back(where + "does not continue the previous segment (lines or a segment missing)");
                head = prev;
                expect = first;
                if (c.first_line == 0) c.first_line = first;
                continue;
            }
            std::uint64_t n = 0;
            std::string_view body;
            mac::Bytes32 h{};
            if (!split_line(line.text, n, body, h)) {
                c.faults.push_back(where + "malformed line");
                continue;
            }
            if (n != expect)
                c.faults.push_back(where + "line " + std::to_string(n) + " where " + std::to_string(expect) +
                                   " was expected");
            const mac::Bytes32 want = sha->compute(*head, mac::as_bytes(body));
            if (want != h) c.faults.push_back(where + "hash chain broken: the line was edited, inserted or reordered");
            head = h;
            expect = n + 1;
            c.last_line = n;
            ++c.lines;
        }
    }
    return c;
}

}  // namespace hsmaudit::agent
