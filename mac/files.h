// File helpers for key material and segments: atomic writes with an explicit mode, and reads
// of secret files that refuse group- or world-accessible files.
//
// Thread-safety: free functions; safe to call concurrently on different paths.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "mac/result.h"

namespace hsmaudit::mac {

/// Writes `data` to `path` atomically (temp file, fsync, rename, fsync of the directory) with
/// file mode `mode`. With `exclusive`, fails if `path` already exists.
Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode, bool exclusive);

/// Writes all of `data` to `fd` (retrying short writes and EINTR); errors name `path`.
Status write_all(int fd, std::string_view data, const std::string& path);
/// fsyncs a directory, so the entries created or renamed in it are durable.
Status fsync_dir(const std::string& dir);

/// Reads a whole file of at most `max_bytes`.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes);

/// Reads a secret file (key, passphrase); refuses one that group or others may access, and
/// names the file and its mode in the error.
Result<std::string> read_secret_file(const std::string& path, std::size_t max_bytes = 64 * 1024);

}  // namespace hsmaudit::mac
