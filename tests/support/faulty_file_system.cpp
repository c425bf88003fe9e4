#include "tests/support/faulty_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace hsmaudit::testing {

std::string_view to_string(FsOp op) {
    switch (op) {
        case FsOp::open: return "open";
        case FsOp::write: return "write";
        case FsOp::pwrite: return "pwrite";
        case FsOp::fsync: return "fsync";
        case FsOp::fdatasync: return "fdatasync";
        case FsOp::rename: return "rename";
        case FsOp::link: return "link";
        case FsOp::truncate: return "truncate";
        case FsOp::unlink: return "unlink";
        case FsOp::fallocate: return "fallocate";
        case FsOp::kCount: break;
    }
    return "?";
}

void FaultyFileSystem::fail_nth(FsOp op, std::uint64_t nth, int error, std::string path_contains) {
    std::lock_guard lock(mutex_);
    rules_.push_back(Rule{op, std::max<std::uint64_t>(nth, 1), error, 0, std::move(path_contains)});
}

void FaultyFileSystem::short_write_nth(std::uint64_t nth, std::size_t bytes, std::string path_contains) {
    std::lock_guard lock(mutex_);
    rules_.push_back(Rule{FsOp::write, std::max<std::uint64_t>(nth, 1), 0, bytes, std::move(path_contains)});
}

void FaultyFileSystem::set_full(bool full, int error) {
    std::lock_guard lock(mutex_);
    full_ = full;
    full_error_ = error;
}

void FaultyFileSystem::clear() {
    std::lock_guard lock(mutex_);
    rules_.clear();
    full_ = false;
}

std::uint64_t FaultyFileSystem::calls(FsOp op) const {
    std::lock_guard lock(mutex_);
    return calls_[static_cast<std::size_t>(op)];
}

std::uint64_t FaultyFileSystem::injected() const {
    std::lock_guard lock(mutex_);
    return injected_;
}

std::string FaultyFileSystem::path_of(int fd) const {
    auto it = paths_.find(fd);
    return it == paths_.end() ? std::string() : it->second;
}

std::string FaultyFileSystem::path_of_locked(int fd) const {
    std::lock_guard lock(mutex_);
    return path_of(fd);
}

FaultyFileSystem::Decision FaultyFileSystem::decide(FsOp op, const std::string& path, bool creates) {
    ++calls_[static_cast<std::size_t>(op)];
    Decision d;
    const bool short_write_op = op == FsOp::write || op == FsOp::pwrite;
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
        const bool op_matches = it->op == op || (it->error == 0 && short_write_op && it->op == FsOp::write);
        if (!op_matches) continue;
        if (!it->path_contains.empty() && path.find(it->path_contains) == std::string::npos) continue;
        if (--it->countdown != 0) continue;
        if (it->error != 0)
            d.error = it->error;
        else
            d.short_bytes = it->short_bytes;
        rules_.erase(it);
        ++injected_;
        return d;
    }
    const bool consumes_space = short_write_op || op == FsOp::fsync || op == FsOp::fdatasync || op == FsOp::fallocate ||
                                op == FsOp::rename || op == FsOp::link || (op == FsOp::open && creates);
    if (full_ && consumes_space) {
        d.error = full_error_;
        ++injected_;
    }
    return d;
}

int FaultyFileSystem::open(const char* path, int flags, unsigned mode) {
    {
        std::lock_guard lock(mutex_);
        // As on Linux, a full disk refuses only an open that would create the file.
        const bool creates = (flags & O_CREAT) != 0 && ::access(path, F_OK) != 0;
        const Decision d = decide(FsOp::open, path, creates);
        if (d.error != 0) {
            errno = d.error;
            return -1;
        }
    }
    const int fd = base::posix_file_system().open(path, flags, mode);
    if (fd >= 0) {
        std::lock_guard lock(mutex_);
        paths_[fd] = path;
    }
    return fd;
}

template <class Real>
ssize_t FaultyFileSystem::call_write(FsOp op, int fd, std::size_t size, Real real) {
    Decision d;
    {
        std::lock_guard lock(mutex_);
        d = decide(op, path_of(fd), false);
    }
    if (d.error != 0) {
        errno = d.error;
        return -1;
    }
    if (d.short_bytes) size = std::min(size, *d.short_bytes);
    if (size == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real(size);
}

ssize_t FaultyFileSystem::write(int fd, const void* data, std::size_t size) {
    return call_write(FsOp::write, fd, size,
                      [&](std::size_t n) { return base::posix_file_system().write(fd, data, n); });
}

ssize_t FaultyFileSystem::pwrite(int fd, const void* data, std::size_t size, off_t offset) {
    return call_write(FsOp::pwrite, fd, size,
                      [&](std::size_t n) { return base::posix_file_system().pwrite(fd, data, n, offset); });
}

template <class Real>
int FaultyFileSystem::call(FsOp op, const std::string& path, Real real) {
    Decision d;
    {
        std::lock_guard lock(mutex_);
        d = decide(op, path, false);
    }
    if (d.error != 0) {
        errno = d.error;
        return -1;
    }
    return real();
}

int FaultyFileSystem::fsync(int fd) {
    return call(FsOp::fsync, path_of_locked(fd), [&] { return base::posix_file_system().fsync(fd); });
}
int FaultyFileSystem::fdatasync(int fd) {
    return call(FsOp::fdatasync, path_of_locked(fd), [&] { return base::posix_file_system().fdatasync(fd); });
}
int FaultyFileSystem::rename(const char* from, const char* to) {
    return call(FsOp::rename, std::string(from) + "\n" + to,
                [&] { return base::posix_file_system().rename(from, to); });
}
int FaultyFileSystem::link(const char* from, const char* to) {
    return call(FsOp::link, std::string(from) + "\n" + to, [&] { return base::posix_file_system().link(from, to); });
}
int FaultyFileSystem::ftruncate(int fd, off_t size) {
    return call(FsOp::truncate, path_of_locked(fd), [&] { return base::posix_file_system().ftruncate(fd, size); });
}
int FaultyFileSystem::truncate(const char* path, off_t size) {
    return call(FsOp::truncate, path, [&] { return base::posix_file_system().truncate(path, size); });
}
int FaultyFileSystem::fallocate(int fd, int mode, off_t offset, off_t length) {
    return call(FsOp::fallocate, path_of_locked(fd),
                [&] { return base::posix_file_system().fallocate(fd, mode, offset, length); });
}
int FaultyFileSystem::unlink(const char* path) {
    return call(FsOp::unlink, path, [&] { return base::posix_file_system().unlink(path); });
}

}  // namespace hsmaudit::testing
