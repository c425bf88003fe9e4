#include "base/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace hsmaudit::base {
namespace {

class PosixFileSystem final : public FileSystem {
public:
    int open(const char* path, int flags, unsigned mode) override { return ::open(path, flags, mode); }
    ssize_t write(int fd, const void* data, std::size_t size) override { return ::write(fd, data, size); }
    ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset) override {
        return ::pwrite(fd, data, size, offset);
    }
    int fsync(int fd) override { return ::fsync(fd); }
    int fdatasync(int fd) override { return ::fdatasync(fd); }
    int rename(const char* from, const char* to) override { return std::rename(from, to); }
    int link(const char* from, const char* to) override { return ::link(from, to); }
    int ftruncate(int fd, off_t size) override { return ::ftruncate(fd, size); }
    int truncate(const char* path, off_t size) override { return ::truncate(path, size); }
    int unlink(const char* path) override { return ::unlink(path); }
    int fallocate(int fd, int mode, off_t offset, off_t length) override {
        return ::fallocate(fd, mode, offset, length);
    }
};

}  // namespace

FileSystem& posix_file_system() {
    static PosixFileSystem fs;  // stateless: no mutable global state
    return fs;
}

}  // namespace hsmaudit::base
