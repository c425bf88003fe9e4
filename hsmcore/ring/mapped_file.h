// MappedFile: an open file descriptor and a MAP_SHARED mapping of the whole file, released together.
//
// Thread-safety: the object itself is not synchronised; what callers do with the mapped bytes is
// their protocol (see ring.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/result.h"

namespace hsmaudit::hsmcore::ring {

class MappedFile {
public:
    enum class Mode { read_only, read_write };

    /// Maps an existing file. With `lock`, takes an exclusive flock (fails if another process holds it).
    static Result<MappedFile> open(const std::string& path, Mode mode, bool lock = false);
    /// Creates `path` (must not exist) with `mode_bits`, sized `size` bytes of zeros, and maps it read-write.
    static Result<MappedFile> create(const std::string& path, std::size_t size, unsigned mode_bits);

    MappedFile() = default;
    ~MappedFile();
    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&& o) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    [[nodiscard]] std::uint8_t* data() const { return static_cast<std::uint8_t*>(addr_); }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] const std::string& path() const { return path_; }
    /// msync(MS_SYNC) of the pages covering [offset, offset + len).
    Status sync(std::size_t offset, std::size_t len) const;

private:
    void reset() noexcept;
    int fd_ = -1;
    void* addr_ = nullptr;
    std::size_t size_ = 0;
    std::string path_;
};

}  // namespace hsmaudit::hsmcore::ring
