#include "base/line_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/errc.h"

namespace hsmaudit::base {

Result<std::unique_ptr<FileSource>> FileSource::open(const std::string& path) {
    // O_NONBLOCK: opening a FIFO without a writer would otherwise block forever; it is refused
    // below like any other non-regular file. Regular files ignore the flag; it is cleared anyway.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return make_error(errc::io_error, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(errc::io_error, path + " is not a readable regular file");
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<FileSource>(new FileSource(fd, path, static_cast<std::uint64_t>(st.st_size)));
}

FileSource::~FileSource() {
    if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> FileSource::read(std::span<char> out) {
    for (;;) {
        const ssize_t n = ::read(fd_, out.data(), out.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno != EINTR) return make_error(errc::io_error, "cannot read " + path_ + ": " + std::strerror(errno));
    }
}

LineReader::LineReader(std::unique_ptr<ByteSource> source, std::size_t max_line, std::size_t buffer_bytes)
    : source_(std::move(source)),
      max_line_(max_line),
      target_size_(std::max(buffer_bytes, max_line + 1)),
      buf_size_(max_line + 1),
      buf_(std::make_unique_for_overwrite<char[]>(buf_size_)) {}

Result<bool> LineReader::fill() {
    if (eof_) return false;
    if (begin_ > 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (buf_size_ < target_size_ && read_total_ >= buf_size_) {
        // A large input: switch to the full-size buffer once.
        auto bigger = std::make_unique_for_overwrite<char[]>(target_size_);
        std::memcpy(bigger.get(), buf_.get(), end_);
        buf_ = std::move(bigger);
        buf_size_ = target_size_;
    }
    if (end_ == buf_size_) return true;
    auto n = source_->read({buf_.get() + end_, buf_size_ - end_});
    if (!n) return std::move(n).error();
    if (*n == 0) {
        eof_ = true;
        return false;
    }
    end_ += *n;
    read_total_ += *n;
    return true;
}

Result<bool> LineReader::next(Line& line) {
    std::size_t scanned = 0;  // bytes of the current line already searched for LF
    for (;;) {
        const char* start = buf_.get() + begin_;
        const std::size_t avail = end_ - begin_;
        const void* nl = avail > scanned ? std::memchr(start + scanned, '\n', avail - scanned) : nullptr;
        if (nl != nullptr) {
            const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
            line.number = ++number_;
            line.terminated = true;
            line.too_long = len > max_line_;
            line.text = line.too_long ? std::string_view() : std::string_view(start, len);
            begin_ += len + 1;
            consumed_ += len + 1;
            return true;
        }
        scanned = avail;
        if (avail > max_line_) return skip_long_line(line);
        auto more = fill();  // keeps the unscanned tail; `scanned` stays valid after the move
        if (!more) return std::move(more).error();
        if (!*more) {
            if (end_ == begin_) return false;
            const std::size_t len = end_ - begin_;
            line.number = ++number_;
            line.terminated = false;
            line.too_long = false;
            line.text = std::string_view(buf_.get() + begin_, len);
            begin_ = end_;
            consumed_ += len;
            return true;
        }
    }
}

Result<bool> LineReader::skip_long_line(Line& line) {
    line.number = ++number_;
    line.too_long = true;
    line.terminated = true;
    line.text = std::string_view();
    for (;;) {
        const void* p = std::memchr(buf_.get() + begin_, '\n', end_ - begin_);
        if (p != nullptr) {
            const auto skip = static_cast<std::size_t>(static_cast<const char*>(p) - (buf_.get() + begin_)) + 1;
            begin_ += skip;
            consumed_ += skip;
            return true;
        }
        consumed_ += end_ - begin_;
        begin_ = end_ = 0;
        auto more = fill();
        if (!more) return std::move(more).error();
        if (!*more) {
            line.terminated = false;
            return true;
        }
    }
}

}  // namespace hsmaudit::base
