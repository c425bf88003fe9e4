// FileSystem: the one seam under every durable writer of the project. Each open for writing,
// write, pwrite, fsync, fdatasync, rename, link, truncate and unlink that a writer makes (the audit
// store and its position file, the syslog spool, alerts, checkpoints, cursors, status.json,
// archives, write_file_atomic) goes through a FileSystem, so a test can make any one of them fail
// with ENOSPC or EIO, or write short, at the Nth call, without root
// (tests/support/faulty_file_system.h). Production code uses posix_file_system().
//
// The calls mirror the system calls: they return what the system call returns and set errno as
// it does, so a writer reads the same with either.
//
// Thread-safety: posix_file_system() is stateless and safe from any thread; a test double states
// its own.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace hsmaudit::base {

class FileSystem {
public:
    virtual ~FileSystem() = default;
    virtual int open(const char* path, int flags, unsigned mode) = 0;
    virtual ssize_t write(int fd, const void* data, std::size_t size) = 0;
    virtual ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset) = 0;
    virtual int fsync(int fd) = 0;
    virtual int fdatasync(int fd) = 0;
    virtual int rename(const char* from, const char* to) = 0;
    virtual int link(const char* from, const char* to) = 0;
    virtual int ftruncate(int fd, off_t size) = 0;
    virtual int truncate(const char* path, off_t size) = 0;
    virtual int unlink(const char* path) = 0;
    /// fallocate(2): `mode` 0 or FALLOC_FL_KEEP_SIZE (space reserved past the end, size unchanged).
    virtual int fallocate(int fd, int mode, off_t offset, off_t length) = 0;
};

/// The real file system: each call is the system call of the same name.
FileSystem& posix_file_system();

}  // namespace hsmaudit::base
