#include "hsmcore/ring/mapped_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "hsmcore/errc.h"

namespace hsmaudit::hsmcore::ring {
namespace {

Error io(const std::string& what, const std::string& path) {
    return make_error(errc::io_error, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path, Mode mode, bool lock) {
    const bool rw = mode == Mode::read_write;
    MappedFile m;
    m.path_ = path;
    m.fd_ = ::open(path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (m.fd_ < 0) return io("cannot open", path);
    if (lock && ::flock(m.fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return make_error(errc::invalid_state, path + " is in use by another module process (locked)");
        return io("cannot lock", path);
    }
    struct stat st {};
    if (::fstat(m.fd_, &st) != 0) return io("cannot stat", path);
    if (st.st_size <= 0) return make_error(errc::corrupt, path + " is empty");
    m.size_ = static_cast<std::size_t>(st.st_size);
    m.addr_ = ::mmap(nullptr, m.size_, rw ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, m.fd_, 0);
    if (m.addr_ == MAP_FAILED) {
        m.addr_ = nullptr;
        return io("cannot map", path);
    }
    return m;
}

Result<MappedFile> MappedFile::create(const std::string& path, std::size_t size, unsigned mode_bits) {
    MappedFile m;
    m.path_ = path;
    m.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode_bits);
    if (m.fd_ < 0) return io("cannot create", path);
    if (::fchmod(m.fd_, mode_bits) != 0) return io("cannot chmod", path);
    if (::ftruncate(m.fd_, static_cast<off_t>(size)) != 0) return io("cannot size", path);
    m.size_ = size;
    m.addr_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd_, 0);
    if (m.addr_ == MAP_FAILED) {
        m.addr_ = nullptr;
        return io("cannot map", path);
    }
    return m;
}

MappedFile::~MappedFile() {
    reset();
}

void MappedFile::reset() noexcept {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    if (fd_ >= 0) ::close(fd_);
    addr_ = nullptr;
    fd_ = -1;
    size_ = 0;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      addr_(std::exchange(o.addr_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = std::exchange(o.fd_, -1);
        addr_ = std::exchange(o.addr_, nullptr);
        size_ = std::exchange(o.size_, 0);
        path_ = std::move(o.path_);
    }
    return *this;
}

Status MappedFile::sync(std::size_t offset, std::size_t len) const {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t start = offset / page * page;
    const std::size_t end = std::min(size_, offset + len);
    if (end <= start) return {};
    if (::msync(data() + start, end - start, MS_SYNC) != 0) return io("cannot msync", path_);
    return {};
}

}  // namespace hsmaudit::hsmcore::ring
