// The journal source's cursor file: where reading resumes after a restart. Its one owner (writer
// and parser) is this file. One line:
//   hsmaudit-journal-cursor v1 <cursor> <fnv1a64 of the cursor, 16 lowercase hex digits>
// The cursor is sd-journal's opaque text (printable ASCII, no spaces). The check value tells a file
// that was cut, edited or damaged on disk from one this collector wrote; written atomically
// (temp file, fsync, rename, directory fsync: base::write_file_atomic) through the FileSystem seam.
//
// Thread-safety: free functions; safe on distinct paths.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::collectors::journal {

/// The longest cursor accepted (sd-journal's are about 130 bytes).
inline constexpr std::size_t kMaxCursorBytes = 1024;

/// True if `cursor` may be stored: 1..kMaxCursorBytes printable ASCII characters, no space.
bool valid_cursor_text(std::string_view cursor) noexcept;
/// The file's whole content for `cursor` (with its LF).
std::string cursor_file_text(std::string_view cursor);
/// The cursor in a file's content; errc::cursor_damaged (naming what is wrong) for anything
/// cursor_file_text() did not produce.
Result<std::string> parse_cursor_file(std::string_view text);

/// The cursor saved in `path`: nullopt if there is no such file; errc::cursor_damaged if its
/// content is not a valid cursor file; errc::io_error if it cannot be read.
Result<std::optional<std::string>> read_cursor_file(const std::string& path);
/// Replaces `path` atomically with `cursor` (mode 0600). On failure the previous file is whole.
Status write_cursor_file(const std::string& path, std::string_view cursor,
                         base::FileSystem& fs = base::posix_file_system());

}  // namespace hsmaudit::collectors::journal
