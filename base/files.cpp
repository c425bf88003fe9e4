#include "base/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/errc.h"
#include "base/unique_fd.h"

namespace hsmaudit::base {
namespace {

Error io(const std::string& what, const std::string& path) {
    return make_error(errc::io_error, what + " " + path + ": " + std::strerror(errno));
}

Result<std::string> read_fd(int fd, const std::string& path, std::size_t max_bytes) {
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io("cannot read", path);
        }
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > max_bytes)
            return make_error(errc::bad_format, path + " is larger than " + std::to_string(max_bytes) + " bytes");
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace

Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode, bool exclusive,
                         FileSystem& fs) {
    if (exclusive && ::access(path.c_str(), F_OK) == 0)
        return make_error(errc::invalid_argument, path + " already exists; refusing to overwrite it");
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    UniqueFd fd(fs.open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
    if (fd.get() < 0) return io("cannot create", tmp);
    // The umask may have narrowed the mode; secrets must be exactly `mode`, never wider.
    if (::fchmod(fd.get(), mode) != 0) {
        const Error e = io("cannot chmod", tmp);
        fs.unlink(tmp.c_str());
        return e;
    }
    if (auto st = write_all(fd.get(), data, tmp, fs); !st) {
        fs.unlink(tmp.c_str());
        return st;
    }
    if (fs.fsync(fd.get()) != 0) {
        const Error e = io("cannot fsync", tmp);
        fs.unlink(tmp.c_str());
        return e;
    }
    fd.reset();
    if (exclusive) {
        // link() fails if the target exists, closing the race between access() and rename().
        if (fs.link(tmp.c_str(), path.c_str()) != 0) {
            const Error e = io("cannot create", path);
            fs.unlink(tmp.c_str());
            return e;
        }
        fs.unlink(tmp.c_str());
    } else if (fs.rename(tmp.c_str(), path.c_str()) != 0) {
        const Error e = io("cannot rename onto", path);
        fs.unlink(tmp.c_str());
        return e;
    }
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    return fsync_dir(dir, fs);
}

Status write_all(int fd, std::string_view data, const std::string& path, FileSystem& fs) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = fs.write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io("cannot write", path);
        }
        if (n == 0) {  // no progress and no error: treat as a full disk rather than spin
            errno = ENOSPC;
            return io("cannot write", path);
        }
        off += static_cast<std::size_t>(n);
    }
    return {};
}

Status fsync_dir(const std::string& dir, FileSystem& fs) {
    UniqueFd fd(fs.open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
    if (!fd.valid()) return io("cannot open directory", dir);
    if (fs.fsync(fd.get()) != 0) return io("cannot fsync directory", dir);
    return {};
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return io("cannot open", path);
    return read_fd(fd.get(), path, max_bytes);
}

Result<std::string> read_secret_file(const std::string& path, std::size_t max_bytes) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return io("cannot open", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return io("cannot stat", path);
    if (!S_ISREG(st.st_mode)) return make_error(errc::invalid_argument, path + " is not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        (void)std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return make_error(errc::insecure_file, path + " has mode " + mode +
                                                   ": a secret file must not be accessible by group or others "
                                                   "(chmod 600 " +
                                                   path + ")");
    }
    return read_fd(fd.get(), path, max_bytes);
}

}  // namespace hsmaudit::base
