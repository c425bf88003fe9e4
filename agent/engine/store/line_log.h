// LineLog: an append-only file of lines, each fsynced before append() returns (alerts and
// checkpoints: rare, and each must survive a crash).
//
// Failures (issue 13): the log remembers its durable length. A failed write or fdatasync cuts
// the file back to it at once and re-opens it (never trusting an fsync retry on the same
// descriptor) through the path open() takes, which also cuts a torn last line left by a crash;
// so the file only ever holds whole lines and the next line never continues torn bytes. The
// failed line is kept (up to kMaxWaiting) and written, as the same bytes and before any later
// line, by the next append() or retry(): a reader that saw part of it reads the same bytes again.
//
// Space: the log keeps kReserveBytes allocated past its end (fallocate, size unchanged), so
// alerts and checkpoints are still written while the disk is full (about 800 alerts).
//
// Thread-safety: every member may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/file_system.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace hsmaudit::agent {

class LineLog {
public:
    /// Lines kept after failures, at most; beyond, append() refuses the new line (not kept).
    static constexpr std::size_t kMaxWaiting = 1024;
    /// Space kept allocated past the end of the file, for writes while the disk is full.
    static constexpr std::uint64_t kReserveBytes = std::uint64_t{256} * 1024;

    /// Opens (creating the directory and the file, mode 0600) `dir`/`name` for appending, cutting
    /// a torn last line.
    static Result<std::unique_ptr<LineLog>> open(const std::string& dir, const std::string& name,
                                                 base::FileSystem& fs = base::posix_file_system());
    ~LineLog() = default;
    LineLog(const LineLog&) = delete;
    LineLog& operator=(const LineLog&) = delete;

    /// Appends `line` and a LF, then fdatasync. On success it is durable, and so is every line
    /// kept from an earlier failure (they precede it). On failure the line is kept for the retry.
    Status append(std::string_view line);
    /// Writes the lines kept from failures, if any.
    Status retry();
    /// Lines kept from failures, not yet durable.
    [[nodiscard]] std::size_t waiting() const;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    LineLog(std::string path, base::FileSystem& fs) : path_(std::move(path)), fs_(fs) {}
    Status recover(bool create);
    Status reopen();
    Status write_waiting();
    Status fail(Error e);
    void reserve();

    std::string path_;
    base::FileSystem& fs_;
    mutable std::mutex mutex_;
    UniqueFd fd_;
    std::uint64_t durable_ = 0;       // bytes of the file known durable
    std::uint64_t reserved_end_ = 0;  // allocated through here (fallocate)
    bool broken_ = false;
    std::deque<std::string> waiting_;  // lines with their LF, in order
};

}  // namespace hsmaudit::agent
