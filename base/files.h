// File helpers for key material and segments: atomic writes with an explicit mode, and reads
// of secret files that refuse group- or world-accessible files. Writes go through a FileSystem
// (base/file_system.h), the seam tests use to inject ENOSPC, EIO and short writes.
//
// Thread-safety: free functions; safe to call concurrently on different paths.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::base {

/// Writes `data` to `path` atomically (temp file, fsync, rename, fsync of the directory) with
/// file mode `mode`. With `exclusive`, fails if `path` already exists. On any failure the
/// target is untouched and the temporary file removed: safe to call again.
Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode, bool exclusive,
                         FileSystem& fs = posix_file_system());

/// Writes all of `data` to `fd` (continuing after short writes and EINTR); errors name `path`.
/// After an error an unknown prefix of `data` may be in the file: the caller must treat the file
/// as broken (cut it back to its last durable length) rather than write the rest again.
Status write_all(int fd, std::string_view data, const std::string& path, FileSystem& fs = posix_file_system());
/// fsyncs a directory, so the entries created or renamed in it are durable.
Status fsync_dir(const std::string& dir, FileSystem& fs = posix_file_system());

/// Reads a whole file of at most `max_bytes`.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

/// Reads a secret file (key, passphrase); refuses one that group or others may access, and
/// names the file and its mode in the error.
Result<std::string> read_secret_file(const std::string& path, std::size_t max_bytes = std::size_t{64} * 1024);

}  // namespace hsmaudit::base
