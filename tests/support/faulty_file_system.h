// FaultyFileSystem: a base::FileSystem for tests that passes every call to the real file system
// until a rule says otherwise: fail the Nth call of an operation with an errno (ENOSPC, EIO, ...),
// write only part of the Nth write, or fail every call while the "disk" is full. Rules may be
// limited to paths containing a string (descriptors are mapped to the path they were opened with).
//
// Thread-safety: every member may be called from any thread (one mutex); writers on their own
// threads (the spool, the runners) can be faulted while a test thread arms rules.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/file_system.h"

namespace hsmaudit::testing {

enum class FsOp : std::uint8_t {
    open,
    write,
    pwrite,
    fsync,
    fdatasync,
    rename,
    link,
    truncate,
    unlink,
    fallocate,
    kCount
};
std::string_view to_string(FsOp op);

class FaultyFileSystem final : public base::FileSystem {
public:
    /// The `nth` call of `op` from now (1 = the next one) fails with `error`. With `path_contains`,
    /// only calls on a path containing it are counted.
    void fail_nth(FsOp op, std::uint64_t nth, int error, std::string path_contains = {});
    /// The `nth` write (or pwrite) from now writes only `bytes` of what it is given and reports that.
    void short_write_nth(std::uint64_t nth, std::size_t bytes, std::string path_contains = {});
    /// While full, every write, pwrite, fsync, fdatasync, fallocate, creating open, rename and link fails with
    /// ENOSPC (or `error`): a disk that filled up. Reads and truncation still work, as on Linux.
    void set_full(bool full, int error = 28 /* ENOSPC */);
    /// Forgets every rule and the full state (counters are kept).
    void clear();

    /// Calls of `op` so far (including the failed ones).
    [[nodiscard]] std::uint64_t calls(FsOp op) const;
    /// Faults injected so far.
    [[nodiscard]] std::uint64_t injected() const;

    int open(const char* path, int flags, unsigned mode) override;
    ssize_t write(int fd, const void* data, std::size_t size) override;
    ssize_t pwrite(int fd, const void* data, std::size_t size, off_t offset) override;
    int fsync(int fd) override;
    int fdatasync(int fd) override;
    int rename(const char* from, const char* to) override;
    int link(const char* from, const char* to) override;
    int ftruncate(int fd, off_t size) override;
    int truncate(const char* path, off_t size) override;
    int unlink(const char* path) override;
    int fallocate(int fd, int mode, off_t offset, off_t length) override;

private:
    struct Rule {
        FsOp op;
        std::uint64_t countdown;  // calls left until it fires (1: the next matching one)
        int error;                // 0 for a short write
        std::size_t short_bytes;
        std::string path_contains;
    };
    struct Decision {
        int error = 0;                           // != 0: fail with this errno
        std::optional<std::size_t> short_bytes;  // a short write of this many bytes
    };
    Decision decide(FsOp op, const std::string& path, bool creates);
    std::string path_of(int fd) const;         // with mutex_ held
    std::string path_of_locked(int fd) const;  // takes mutex_
    template <class Real>
    int call(FsOp op, const std::string& path, Real real);
    /// write/pwrite: the rule's error, or a short write of what `real(bytes)` is given.
    template <class Real>
    ssize_t call_write(FsOp op, int fd, std::size_t size, Real real);

    mutable std::mutex mutex_;
    std::vector<Rule> rules_;
    std::map<int, std::string> paths_;
    std::array<std::uint64_t, static_cast<std::size_t>(FsOp::kCount)> calls_{};
    std::uint64_t injected_ = 0;
    bool full_ = false;
    int full_error_ = 28;
};

}  // namespace hsmaudit::testing
