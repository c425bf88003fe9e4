// LineReader: streams LF-terminated lines from a byte source with a fixed-size buffer, so a
// verifier reads gigabytes without holding them. Lines longer than kMaxLineBytes are reported
// as too long (and skipped up to the next LF) instead of growing the buffer.
//
// Thread-safety: one thread per reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hsmaudit::base {

/// Where bytes come from: a file (FileSource), a member of a tar archive (the archiver's
/// TarMemberSource), an encrypted segment's plaintext (mac::EncryptedFileSource).
class ByteSource {
public:
    virtual ~ByteSource() = default;
    /// Reads up to out.size() bytes; 0 at end of input.
    virtual Result<std::size_t> read(std::span<char> out) = 0;
    /// After the end of input: what cut it short (a torn or unauthentic encrypted chunk), if anything.
    [[nodiscard]] virtual std::optional<std::string> damage() const { return std::nullopt; }
};

/// A regular file opened read-only.
class FileSource final : public ByteSource {
public:
    static Result<std::unique_ptr<FileSource>> open(const std::string& path);
    ~FileSource() override;
    FileSource(const FileSource&) = delete;
    FileSource& operator=(const FileSource&) = delete;
    Result<std::size_t> read(std::span<char> out) override;
    [[nodiscard]] std::uint64_t size() const { return size_; }

private:
    FileSource(int fd, std::string path, std::uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
    int fd_;
    std::string path_;
    std::uint64_t size_;
};

struct Line {
    std::string_view text;     // without the LF; valid until the next call; empty if too_long
    std::uint64_t number = 0;  // 1-based
    bool terminated = true;    // false: the input ended without an LF (a torn line)
    bool too_long = false;     // longer than the limit (skipped)
};

class LineReader {
public:
    LineReader(std::unique_ptr<ByteSource> source, std::size_t max_line, std::size_t buffer_bytes = 1 << 20);
    /// Next line; false at end of input.
    Result<bool> next(Line& line);
    [[nodiscard]] std::uint64_t bytes_consumed() const { return consumed_; }

private:
    Result<bool> fill();
    Result<bool> skip_long_line(Line& line);

    std::unique_ptr<ByteSource> source_;
    std::size_t max_line_;
    // The buffer starts at one line's worth and grows to buffer_bytes once the input proves
    // larger; it is not value-initialised. Allocating and zeroing 1 MiB per file dominated the
    // cost of verifying many small segments.
    std::size_t target_size_;
    std::size_t buf_size_;
    std::unique_ptr<char[]> buf_;
    std::uint64_t read_total_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    bool eof_ = false;
    std::uint64_t number_ = 0;
    std::uint64_t consumed_ = 0;
};

}  // namespace hsmaudit::base
