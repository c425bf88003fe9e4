#include "agent/store/event_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include "agent/errc.h"
#include "mac/files.h"
#include "mac/line_reader.h"
#include "mac/record.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

std::vector<fs::path> segments_of(const std::string& dir) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.starts_with("spool-") && name.ends_with(".log")) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());  // 16 fixed-width hex digits: name order is line order
    return out;
}

std::string segment_name(std::uint64_t first) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "spool-%016llx.log", static_cast<unsigned long long>(first));
    return buf;
}

mac::Bytes32 genesis(mac::Sha256& sha, std::string_view name) {
    return sha.compute(mac::as_bytes("hsmaudit/v1/spool/"), mac::as_bytes(name));
}

/// Parses "@spool v=1 name=N first=F prev=H".
bool parse_header(std::string_view line, std::uint64_t& first, mac::Bytes32& prev) {
    if (!line.starts_with("@spool v=1 name=")) return false;
    const auto f = line.find(" first=");
    const auto p = line.find(" prev=");
    if (f == std::string_view::npos || p == std::string_view::npos || p < f) return false;
    return mac::parse_u64(line.substr(f + 7, p - f - 7), first) && mac::hex_decode(line.substr(p + 6), prev);
}

/// Splits "<n> <time> <payload> h=<hex>" into n, the hashed part and h.
bool split_line(std::string_view line, std::uint64_t& n, std::string_view& body, mac::Bytes32& h) {
    const auto sp = line.find(' ');
    const auto hp = line.rfind(" h=");
    if (sp == std::string_view::npos || hp == std::string_view::npos || hp < sp) return false;
    if (!mac::parse_u64(line.substr(0, sp), n) || !mac::hex_decode(line.substr(hp + 3), h)) return false;
    body = line.substr(0, hp);
    return true;
}

}  // namespace

EventSpool::EventSpool(SpoolOptions options, std::int64_t (*now_ms)())
    : options_(std::move(options)), now_ms_(now_ms), sha_(*mac::Sha256::create()) {}

EventSpool::~EventSpool() {
    stop();
}

Result<std::unique_ptr<EventSpool>> EventSpool::open(SpoolOptions options, std::int64_t (*now_ms)()) {
    if (!mac::Sha256::create()) return make_error(errc::internal, "SHA-256 is unavailable");
    std::unique_ptr<EventSpool> s(new EventSpool(std::move(options), now_ms));
    HSMAUDIT_TRY(s->recover());
    return s;
}

Status EventSpool::recover() {
    std::error_code ec;
    fs::create_directories(options_.dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + options_.dir + ": " + ec.message());
    head_ = genesis(sha_, options_.name);
    const auto segs = segments_of(options_.dir);
    if (segs.empty()) return {};
    // Continue the newest segment: its last complete line gives the number and the hash.
    const fs::path last = segs.back();
    auto src = mac::FileSource::open(last.string());
    if (!src) return std::move(src).error();
    mac::LineReader reader(std::move(*src), 1 << 20);
    mac::Line line;
    std::uint64_t good_bytes = 0;
    bool header = true;
    for (;;) {
        auto got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got || !line.terminated || line.too_long) break;
        if (header) {
            std::uint64_t first = 0;
            if (!parse_header(line.text, first, head_)) break;
            next_line_ = first;
            header = false;
        } else {
            std::uint64_t n = 0;
            std::string_view body;
            mac::Bytes32 h{};
            if (!split_line(line.text, n, body, h) || n != next_line_) break;
            head_ = h;
            ++next_line_;
        }
        good_bytes = reader.bytes_consumed();
    }
    if (header) {
        // Not even a header survived: the segment never held a durable line. Start it again.
        fs::remove(last, ec);
        head_ = genesis(sha_, options_.name);
        if (segs.size() > 1)
            return make_error(errc::io_error, last.string() + " has no valid header; run 'hsmaudit fsck'");
        return {};
    }
    if (fs::file_size(last, ec) > good_bytes && ::truncate(last.c_str(), static_cast<off_t>(good_bytes)) != 0)
        return io("cannot cut the torn tail of " + last.string());
    fd_.reset(::open(last.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (!fd_.valid()) return io("cannot open " + last.string());
    segment_bytes_ = good_bytes;
    stats_.next_line = next_line_;
    return {};
}

Status EventSpool::open_segment() {
    if (fd_.valid()) ::fdatasync(fd_.get());  // the finished segment is durable before the next begins
    const std::string path = (fs::path(options_.dir) / segment_name(next_line_)).string();
    fd_.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!fd_.valid()) return io("cannot create " + path);
    const std::string header = "@spool v=1 name=" + options_.name + " first=" + std::to_string(next_line_) +
                               " prev=" + mac::hex_encode(head_) + "\n";
    HSMAUDIT_TRY(mac::write_all(fd_.get(), header, path));
    segment_bytes_ = header.size();
    return mac::fsync_dir(options_.dir);
}

Status EventSpool::enforce_quota() {
    auto segs = segments_of(options_.dir);
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& p : segs) total += fs::file_size(p, ec);
    // Never delete the segment being written.
    for (std::size_t i = 0; i + 1 < segs.size() && total > options_.quota_bytes; ++i) {
        const std::uint64_t size = fs::file_size(segs[i], ec);
        fs::remove(segs[i], ec);
        if (ec) return make_error(errc::io_error, "cannot delete " + segs[i].string() + ": " + ec.message());
        total -= size;
        std::lock_guard lock(mutex_);
        ++stats_.deleted_segments;
    }
    return {};
}

bool EventSpool::push(std::string payload) {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_max) {
        ++stats_.dropped;
        return false;
    }
    queue_.push_back(std::move(payload));
    cv_.notify_one();
    return true;
}

Status EventSpool::flush() {
    std::deque<std::string> work;
    {
        std::lock_guard lock(mutex_);
        work.swap(queue_);
    }
    if (work.empty()) return {};
    std::string out;
    std::uint64_t written = 0;
    for (auto& payload : work) {
        if (!fd_.valid() || segment_bytes_ + out.size() >= options_.segment_max_bytes) {
            if (!out.empty()) {
                HSMAUDIT_TRY(mac::write_all(fd_.get(), out, options_.dir));
                segment_bytes_ += out.size();
                out.clear();
            }
            HSMAUDIT_TRY(open_segment());
        }
        for (char& c : payload)
            if (c == '\n' || c == '\r') c = ' ';  // one line per event, whatever the payload held
        const std::size_t start = out.size();
        out += std::to_string(next_line_);
        out += ' ';
        mac::append_time(now_ms_(), out);
        out += ' ';
        out += payload;
        head_ = sha_.compute(head_, mac::as_bytes(std::string_view(out).substr(start)));
        out += " h=";
        mac::hex_append(head_, out);
        out += '\n';
        ++next_line_;
        ++written;
    }
    HSMAUDIT_TRY(mac::write_all(fd_.get(), out, options_.dir));
    segment_bytes_ += out.size();
    if (::fdatasync(fd_.get()) != 0) return io("cannot fsync the spool");
    {
        std::lock_guard lock(mutex_);
        stats_.appended += written;
        stats_.next_line = next_line_;
    }
    return enforce_quota();
}

void EventSpool::start() {
    writer_ = std::jthread([this](std::stop_token stop) {
        while (!stop.stop_requested()) {
            {
                std::unique_lock lock(mutex_);
                cv_.wait_for(lock, options_.flush_interval, [&] { return stop.stop_requested(); });
            }
            if (!flush()) {
                std::lock_guard lock(mutex_);
                ++stats_.write_errors;
            }
        }
    });
}

void EventSpool::stop() {
    if (writer_.joinable()) {
        writer_.request_stop();
        cv_.notify_all();
        writer_.join();
    }
    (void)flush();
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
        auto src = mac::FileSource::open(path.string());
        if (!src) return std::move(src).error();
        mac::LineReader reader(std::move(*src), 1 << 20);
        mac::Line line;
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
                if (!parse_header(line.text, first, prev)) {
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
