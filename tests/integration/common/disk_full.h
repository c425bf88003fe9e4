// A real full disk for end-to-end tests: a tmpfs of a given size mounted on a directory (needs root or
// CAP_SYS_ADMIN; `error()` says why it could not), and a ballast file written until the file system
// answers ENOSPC and kept topped up (whatever another writer frees is taken back within a few
// milliseconds), so the disk stays full until the ballast is released. Both undo themselves in their
// destructors: the ballast is removed, the tmpfs lazily unmounted.
//
// Thread-safety: TmpfsMount is single-threaded. Ballast owns one std::jthread (the top-up); its
// methods are for the owner's thread.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hsmaudit::testing {

/// Bytes available to an unprivileged writer on the file system holding `path` (0 on error).
inline std::uint64_t fs_available_bytes(const std::string& path) {
    struct statvfs v {};
    if (::statvfs(path.c_str(), &v) != 0) return 0;
    return static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
}
/// Bytes in use on the file system holding `path` (0 on error).
inline std::uint64_t fs_used_bytes(const std::string& path) {
    struct statvfs v {};
    if (::statvfs(path.c_str(), &v) != 0) return 0;
    return static_cast<std::uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
}

class TmpfsMount {
public:
    /// Mounts a tmpfs of `bytes` (mode 0700) on the existing directory `dir`.
    TmpfsMount(std::string dir, std::uint64_t bytes) : dir_(std::move(dir)) {
        const std::string opts = "size=" + std::to_string(bytes) + ",mode=0700";
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) == 0) {
            mounted_ = true;
        } else {
            const int err = errno;
            error_ = "mount(tmpfs, " + dir_ + ", " + opts + "): " + std::strerror(err) +
                     (err == EPERM ? " (needs root or CAP_SYS_ADMIN)" : "");
        }
    }
    ~TmpfsMount() { unmount(); }
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;

    [[nodiscard]] bool mounted() const { return mounted_; }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::string& dir() const { return dir_; }

    /// Lazy unmount, retried: a leftover tmpfs would outlive the test. True if nothing is mounted.
    bool unmount() {
        if (!mounted_) return true;
        int err = 0;
        for (int i = 0; i < 20; ++i) {
            if (::umount2(dir_.c_str(), MNT_DETACH) == 0) {
                mounted_ = false;
                return true;
            }
            err = errno;
            if (err == EINVAL) {  // not mounted (any more)
                mounted_ = false;
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        error_ = "umount2(" + dir_ + "): " + std::strerror(err);
        return false;
    }

private:
    std::string dir_;
    bool mounted_ = false;
    std::string error_;
};

class Ballast {
public:
    /// Creates `path` and writes it until ENOSPC (1 MiB writes, then 4 KiB ones); then a thread keeps
    /// writing 4 KiB pieces every `top_up` until release().
    explicit Ballast(std::string path, std::chrono::milliseconds top_up = std::chrono::milliseconds(10))
        : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
        if (fd_ < 0) {
            const int err = errno;
            error_ = "cannot create " + path_ + ": " + std::strerror(err);
            return;
        }
        int err = fill(1 << 20);
        if (err == ENOSPC) err = fill(4096);
        if (err != ENOSPC) {
            error_ = path_ + ": " + std::strerror(err);
            return;
        }
        thread_ = std::jthread([this, top_up](std::stop_token st) {
            while (!st.stop_requested()) {
                std::this_thread::sleep_for(top_up);
                (void)fill(4096);
            }
        });
    }
    ~Ballast() { release(); }
    Ballast(const Ballast&) = delete;
    Ballast& operator=(const Ballast&) = delete;

    [[nodiscard]] bool ok() const { return fd_ >= 0 && error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    /// Bytes written so far.
    [[nodiscard]] std::uint64_t bytes() const { return bytes_.load(); }
    /// Stops the top-up and removes the file: the space is free again.
    void release() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
            ::unlink(path_.c_str());
        }
    }

private:
    /// Writes `piece`-byte blocks until one fails; returns its errno (ENOSPC for a short write).
    int fill(std::size_t piece) {
        static const std::vector<char> block(1 << 20, 'B');
        for (;;) {
            const ssize_t n = ::write(fd_, block.data(), piece);
            if (n > 0) bytes_ += static_cast<std::uint64_t>(n);
            if (n == static_cast<ssize_t>(piece)) continue;
            if (n < 0 && errno == EINTR) continue;
            return n < 0 ? errno : ENOSPC;
        }
    }

    std::string path_;
    int fd_ = -1;
    std::string error_;  // written before the thread starts only
    std::atomic<std::uint64_t> bytes_{0};
    std::jthread thread_;
};

}  // namespace hsmaudit::testing
