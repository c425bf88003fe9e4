// LineLog: an append-only file of lines, each fsynced before append() returns (alerts and
// checkpoints: rare, and each must survive a crash).
// Thread-safety: append() may be called from any thread (one mutex).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "mac/result.h"
#include "mac/unique_fd.h"

namespace hsmaudit::agent {

class LineLog {
public:
    /// Opens (creating the directory and the file, mode 0600) `dir`/`name` for appending.
    static Result<std::unique_ptr<LineLog>> open(const std::string& dir, const std::string& name);
    ~LineLog() = default;
    LineLog(const LineLog&) = delete;
    LineLog& operator=(const LineLog&) = delete;

    /// Appends `line` and a LF, then fdatasync.
    Status append(std::string_view line);
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    LineLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
    std::string path_;
    UniqueFd fd_;
    std::mutex mutex_;
};

}  // namespace hsmaudit::agent
