// Follows a plain-text syslog file across rotation (rename, truncation, inode reuse).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "collectors/syslog/backpressure.h"
#include "collectors/syslog/detail/thread_guard.h"
#include "collectors/syslog/message.h"
#include "collectors/syslog/parser.h"
#include "collectors/syslog/probe.h"

namespace hsmaudit::collectors::syslog {

/// Where a follower stands in the file it follows: persist it to resume after a restart without
/// re-reading or skipping lines. `head` (the file's first bytes) tells a file from another that got the
/// same inode number after the first was deleted. A value type.
struct FollowerPosition {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t offset = 0;  // bytes of complete lines delivered
    std::string head;          // up to kHeadBytes first bytes of the file
};

/// Bounds of a FileFollower. A value type, read once by the constructor.
struct FollowerOptions {
    std::size_t max_line_bytes = kDefaultMaxMessageBytes;           // longer lines are cut and flagged oversized
    std::size_t max_bytes_per_poll = std::size_t{4} * 1024 * 1024;  // bound on one poll()'s work (no stall)
    /// FollowerThread: an exception that escapes its thread (from the sink, or out of memory) stops
    /// the follower: counted in Probe::thread_failures and told here (the owner alerts).
    ThreadFailureHandler on_failure = {};
    /// FollowerThread: while it has no room the file is not read (its lines wait in the file).
    const Backpressure* backpressure = nullptr;
};

/// Reads new lines of one log file and delivers them, parsed, to a sink. The file is identified by its
/// (device, inode) and its first bytes, not by its name:
/// - rename (logrotate): the old file is read to its end, then the new file at the path from its start;
/// - truncation (copytruncate): reading restarts at offset 0;
/// - inode reuse (deleted, recreated with the same inode number, seen on resume): the head bytes differ,
///   so the file is read from its start.
/// A missing file is not an error (it may appear later). Partial last lines wait for their LF, except at
/// rotation, where the old file's unterminated tail is delivered as is.
/// Thread-safety: not thread-safe; the owner calls poll() from one thread (e.g. on a timer).
/// The sink and the probe must outlive the follower.
class FileFollower {
public:
    static constexpr std::size_t kHeadBytes = 64;

    FileFollower(std::filesystem::path path, SyslogSink& sink, Probe& probe, FollowerOptions options = {},
                 std::optional<FollowerPosition> resume = std::nullopt);

    /// Reads what is new and delivers it. Returns the number of lines delivered, or an I/O error other
    /// than the file being absent.
    Result<std::size_t> poll();
    /// The position to persist (complete lines only).
    [[nodiscard]] FollowerPosition position() const;

private:
    Result<std::size_t> read_available(std::size_t& budget);
    bool open_at_path(bool use_resume);
    bool head_matches() const;
    void update_head();
    void deliver_line(std::string_view line, bool oversized);
    std::size_t flush_tail();

    std::filesystem::path path_;
    SyslogSink& sink_;
    Probe& probe_;
    FollowerOptions options_;
    std::optional<FollowerPosition> resume_;

    UniqueFd fd_;
    std::uint64_t device_ = 0;
    std::uint64_t inode_ = 0;
    std::uint64_t read_offset_ = 0;       // bytes read from the file
    std::uint64_t committed_offset_ = 0;  // bytes of complete lines delivered
    std::string head_;
    std::string partial_;  // an unterminated line (bounded by max_line_bytes)
    bool discarding_ = false;
};

/// Runs one FileFollower on its own thread, polling every `interval` (the wait is interrupted by stop).
/// A poll error (e.g. the file became unreadable) is counted in the probe and retried next interval.
/// Thread-safety: position() and stop() may be called from any thread; the sink is called from the
/// follower thread only. The sink and the probe must outlive it.
class FollowerThread {
public:
    static Result<std::unique_ptr<FollowerThread>> start(std::filesystem::path path, SyslogSink& sink, Probe& probe,
                                                         std::chrono::milliseconds interval,
                                                         FollowerOptions options = {},
                                                         std::optional<FollowerPosition> resume = std::nullopt);
    ~FollowerThread();
    FollowerThread(const FollowerThread&) = delete;
    FollowerThread& operator=(const FollowerThread&) = delete;

    /// Stops and joins the thread; idempotent.
    void stop();
    /// The position after the last completed poll (persist it to resume).
    [[nodiscard]] FollowerPosition position() const;

private:
    FollowerThread(FileFollower follower, std::chrono::milliseconds interval, Probe& probe,
                   ThreadFailureHandler on_failure, const Backpressure* backpressure, std::string who);
    void run(const std::stop_token& stop);

    FileFollower follower_;  // follower thread only
    std::chrono::milliseconds interval_;
    Probe& probe_;
    ThreadFailureHandler on_failure_;
    const Backpressure* backpressure_;
    std::string who_;  // "syslog follower <path>", for the failure message
    mutable std::mutex mutex_;
    FollowerPosition position_;
    std::condition_variable_any cv_;
    std::jthread thread_;  // last: joined first
};

}  // namespace hsmaudit::collectors::syslog
