#include "collectors/syslog/file_follower.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "collectors/syslog/errc.h"

namespace hsmaudit::collectors::syslog {
namespace {

constexpr std::size_t kChunk = std::size_t{64} * 1024;

std::string read_prefix(int fd, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const auto r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
}

}  // namespace

FileFollower::FileFollower(std::filesystem::path path, SyslogSink& sink, Probe& probe, FollowerOptions options,
                           std::optional<FollowerPosition> resume)
    : path_(std::move(path)), sink_(sink), probe_(probe), options_(std::move(options)), resume_(std::move(resume)) {
    options_.max_line_bytes = std::max<std::size_t>(options_.max_line_bytes, 16);
    options_.max_bytes_per_poll = std::max<std::size_t>(options_.max_bytes_per_poll, kChunk);
}

FollowerPosition FileFollower::position() const {
    if (!fd_.valid() && resume_) return *resume_;
    return {device_, inode_, committed_offset_, head_};
}

bool FileFollower::head_matches() const {
    return head_.empty() || read_prefix(fd_.get(), head_.size()) == head_;
}

void FileFollower::update_head() {
    if (head_.size() >= kHeadBytes) return;
    head_ = read_prefix(fd_.get(), static_cast<std::size_t>(std::min<std::uint64_t>(kHeadBytes, read_offset_)));
}

bool FileFollower::open_at_path(bool use_resume) {
    // O_NONBLOCK: a FIFO put at the path must not block the open; only regular files are followed.
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) return false;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    fd_ = std::move(fd);
    device_ = static_cast<std::uint64_t>(st.st_dev);
    inode_ = static_cast<std::uint64_t>(st.st_ino);
    read_offset_ = committed_offset_ = 0;
    head_.clear();
    partial_.clear();
    discarding_ = false;
    if (use_resume && resume_ && resume_->device == device_ && resume_->inode == inode_ &&
        static_cast<std::uint64_t>(st.st_size) >= resume_->offset &&
        read_prefix(fd_.get(), resume_->head.size()) == resume_->head) {
        read_offset_ = committed_offset_ = resume_->offset;
        head_ = resume_->head;
    }
    resume_.reset();
    return true;
}

void FileFollower::deliver_line(std::string_view line, bool oversized) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() && !oversized) return;
    SyslogMessage m = parse_message(line);
    m.transport = Transport::file;
    m.peer = path_.string();
    m.oversized = oversized;
    Probe::add(probe_.received);
    if (m.malformed) Probe::add(probe_.malformed);
    if (m.oversized) Probe::add(probe_.oversized);
    sink_.on_message(std::move(m));
}

std::size_t FileFollower::flush_tail() {
    std::size_t n = 0;
    if (!partial_.empty() && !discarding_) {
        deliver_line(partial_, false);
        n = 1;
    }
    partial_.clear();
    discarding_ = false;
    return n;
}

Result<std::size_t> FileFollower::read_available(std::size_t& budget) {
    std::size_t delivered = 0;
    std::string chunk(kChunk, '\0');
    const std::size_t max = options_.max_line_bytes;
    while (budget > 0) {
        const auto r =
            ::pread(fd_.get(), chunk.data(), std::min(chunk.size(), budget), static_cast<off_t>(read_offset_));
        if (r < 0) {
            if (errno == EINTR) continue;
            Probe::add(probe_.read_errors);
            return make_error(errc::io_error, "read " + path_.string() + ": " + std::strerror(errno));
        }
        if (r == 0) break;
        const auto n = static_cast<std::size_t>(r);
        const std::string_view data(chunk.data(), n);
        std::size_t pos = 0;
        for (auto nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n', pos)) {
            const std::string_view seg = data.substr(pos, nl - pos);
            if (discarding_) {
                discarding_ = false;
            } else if (partial_.empty()) {
                deliver_line(seg.substr(0, max), seg.size() > max);
                ++delivered;
            } else {
                const bool oversized = partial_.size() + seg.size() > max;
                partial_.append(seg.substr(0, max - std::min(max, partial_.size())));
                deliver_line(partial_, oversized);
                partial_.clear();
                ++delivered;
            }
            pos = nl + 1;
            committed_offset_ = read_offset_ + pos;
        }
        if (!discarding_) {
            partial_.append(data.substr(pos));
            if (partial_.size() > max) {
                deliver_line(std::string_view(partial_).substr(0, max), true);
                ++delivered;
                partial_.clear();
                discarding_ = true;
            }
        }
        read_offset_ += n;
        budget -= std::min(budget, n);
        update_head();
    }
    return delivered;
}

Result<std::size_t> FileFollower::poll() {
    std::size_t budget = options_.max_bytes_per_poll;
    std::size_t delivered = 0;
    if (!fd_.valid() && !open_at_path(true)) return delivered;  // absent for now
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
        Probe::add(probe_.read_errors);
        return make_error(errc::io_error, "fstat " + path_.string() + ": " + std::strerror(errno));
    }
    if (static_cast<std::uint64_t>(st.st_size) < read_offset_ || !head_matches()) {
        // Truncated (copytruncate) or rewritten in place: start again from the beginning.
        read_offset_ = committed_offset_ = 0;
        head_.clear();
        partial_.clear();
        discarding_ = false;
    }
    auto r = read_available(budget);
    if (!r) return std::move(r).error();
    delivered += *r;
    struct stat at_path {};
    if (::stat(path_.c_str(), &at_path) == 0 && (static_cast<std::uint64_t>(at_path.st_dev) != device_ ||
                                                 static_cast<std::uint64_t>(at_path.st_ino) != inode_)) {
        if (budget == 0) return delivered;  // the old file is not drained yet: continue next poll
        delivered += flush_tail();
        if (open_at_path(false)) {
            auto r2 = read_available(budget);
            if (!r2) return std::move(r2).error();
            delivered += *r2;
        }
    }
    return delivered;
}

Result<std::unique_ptr<FollowerThread>> FollowerThread::start(std::filesystem::path path, SyslogSink& sink,
                                                              Probe& probe, std::chrono::milliseconds interval,
                                                              FollowerOptions options,
                                                              std::optional<FollowerPosition> resume) {
    if (interval.count() < 1) return make_error(errc::invalid_argument, "follower interval must be at least 1 ms");
    if (path.empty()) return make_error(errc::invalid_argument, "follower path is empty");
    ThreadFailureHandler on_failure = options.on_failure;
    const Backpressure* backpressure = options.backpressure;
    std::string who = "syslog follower " + path.string();
    std::unique_ptr<FollowerThread> t(
        new FollowerThread(FileFollower(std::move(path), sink, probe, std::move(options), std::move(resume)), interval,
                           probe, std::move(on_failure), backpressure, std::move(who)));
    t->thread_ = std::jthread([raw = t.get()](const std::stop_token& st) { raw->run(st); });
    return t;
}

FollowerThread::FollowerThread(FileFollower follower, std::chrono::milliseconds interval, Probe& probe,
                               ThreadFailureHandler on_failure, const Backpressure* backpressure, std::string who)
    : follower_(std::move(follower)),
      interval_(interval),
      probe_(probe),
      on_failure_(std::move(on_failure)),
      backpressure_(backpressure),
      who_(std::move(who)),
      position_(follower_.position()) {}

FollowerThread::~FollowerThread() {
    stop();
}

void FollowerThread::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

FollowerPosition FollowerThread::position() const {
    std::lock_guard lock(mutex_);
    return position_;
}

void FollowerThread::run(const std::stop_token& stop) {
    // Last resort: an exception (from the sink, or out of memory) stops this follower, not the
    // process; position() keeps the last completed poll's position.
    detail::run_guarded(
        [&] {
            std::mutex wait_mutex;
            while (!stop.stop_requested()) {
                // A full sink: the lines wait in the file (the next round reads them).
                if (backpressure_ == nullptr || backpressure_->has_room())
                    (void)follower_.poll();  // errors are counted in the probe; the next round retries
                {
                    std::lock_guard lock(mutex_);
                    position_ = follower_.position();
                }
                std::unique_lock lock(wait_mutex);
                cv_.wait_for(lock, stop, interval_, [] { return false; });
            }
        },
        who_, probe_.thread_failures, on_failure_);
}

}  // namespace hsmaudit::collectors::syslog
