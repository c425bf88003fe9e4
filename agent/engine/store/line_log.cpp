#include "agent/engine/store/line_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/api/errc.h"
#include "base/files.h"

namespace hsmaudit::agent {
namespace {

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<LineLog>> LineLog::open(const std::string& dir, const std::string& name, base::FileSystem& fs) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    std::unique_ptr<LineLog> log(new LineLog((std::filesystem::path(dir) / name).string(), fs));
    std::lock_guard lock(log->mutex_);
    HSMAUDIT_TRY(log->recover(/*create=*/true));
    return log;
}

/// Opens the file for appending and cuts whatever follows its last LF (a line torn by a crash or
/// a failed write); what is left is taken as durable.
Status LineLog::recover(bool create) {
    fd_.reset(fs_.open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600));
    if (!fd_.valid() && !create && errno == ENOENT)  // removed under us: start it again
        fd_.reset(fs_.open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_CREAT, 0600));
    if (!fd_.valid()) return io("cannot open " + path_);
    UniqueFd rd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!rd.valid() || ::fstat(rd.get(), &st) != 0) return io("cannot read " + path_);
    auto end = static_cast<std::uint64_t>(st.st_size);
    char buf[4096];
    std::uint64_t cut = 0;
    while (end > 0) {
        const std::uint64_t from = end > sizeof buf ? end - sizeof buf : 0;
        const ssize_t n = ::pread(rd.get(), buf, end - from, static_cast<off_t>(from));
        if (n < 0) return io("cannot read " + path_);
        if (n == 0) break;  // shrank under us: treat the rest as not there
        const std::string_view got(buf, static_cast<std::size_t>(n));
        if (const auto lf = got.rfind('\n'); lf != std::string_view::npos) {
            cut = from + lf + 1;
            break;
        }
        end = from;
    }
    if (cut < static_cast<std::uint64_t>(st.st_size) && fs_.ftruncate(fd_.get(), static_cast<off_t>(cut)) != 0) {
        fd_.reset();
        return io("cannot cut the torn last line of " + path_);
    }
    durable_ = cut;
    broken_ = false;
    reserve();
    return {};
}

/// Keeps kReserveBytes allocated past the end (FALLOC_FL_KEEP_SIZE: the size, and so what readers
/// see, is unchanged), so alerts and checkpoints can still be written when the disk is full,
/// which is when they matter. Best effort: a file system without fallocate, or a disk already
/// full, leaves less reserve.
void LineLog::reserve() {
    if (fs_.fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(durable_),
                      static_cast<off_t>(kReserveBytes)) == 0)
        reserved_end_ = durable_ + kReserveBytes;
}

/// After a failure: cut back to the durable length, then recover() as at start, on a new fd.
Status LineLog::reopen() {
    fd_.reset();
    if (fs_.truncate(path_.c_str(), static_cast<off_t>(durable_)) != 0 && errno != ENOENT)
        return io("cannot cut " + path_ + " back to its durable length");
    return recover(/*create=*/false);
}

Status LineLog::fail(Error e) {
    broken_ = true;
    // Cut the torn bytes now, so no reader sees them for long; if that fails too, the next
    // append() tries again first.
    (void)reopen();
    return e;
}

Status LineLog::write_waiting() {
    if (broken_) {
        if (auto st = reopen(); !st) {
            broken_ = true;
            return st;
        }
    }
    if (waiting_.empty()) return {};
    std::string data;
    for (const auto& l : waiting_) data += l;
    if (auto st = base::write_all(fd_.get(), data, path_, fs_); !st) return fail(std::move(st).error());
    if (fs_.fdatasync(fd_.get()) != 0) return fail(io("cannot fsync " + path_));
    durable_ += data.size();
    if (durable_ + kReserveBytes / 2 > reserved_end_) reserve();
    waiting_.clear();
    return {};
}

Status LineLog::append(std::string_view line) {
    std::string data(line);
    data += '\n';
    std::lock_guard lock(mutex_);
    if (waiting_.size() >= kMaxWaiting) {
        // Try to make room first; if the disk still fails, refuse this line (the kept ones keep
        // their place).
        HSMAUDIT_TRY(write_waiting());
    }
    waiting_.push_back(std::move(data));
    return write_waiting();
}

Status LineLog::retry() {
    std::lock_guard lock(mutex_);
    return write_waiting();
}

std::size_t LineLog::waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

}  // namespace hsmaudit::agent
