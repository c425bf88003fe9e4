#include "collectors/journal/cursor_file.h"

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "base/files.h"
#include "collectors/journal/errc.h"

namespace hsmaudit::collectors::journal {
namespace {

constexpr std::string_view kMagic = "hsmaudit-journal-cursor v1 ";
constexpr std::size_t kCheckDigits = 16;

std::uint64_t fnv1a64(std::string_view s) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string hex16(std::uint64_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(kCheckDigits, '0');
    for (std::size_t i = 0; i < kCheckDigits; ++i) out[kCheckDigits - 1 - i] = kDigits[(v >> (4 * i)) & 0xF];
    return out;
}

Error damaged(std::string why) {
    return make_error(errc::cursor_damaged, std::move(why));
}

}  // namespace

bool valid_cursor_text(std::string_view cursor) noexcept {
    if (cursor.empty() || cursor.size() > kMaxCursorBytes) return false;
    for (const char c : cursor)
        if (c <= ' ' || c > '~') return false;
    return true;
}

std::string cursor_file_text(std::string_view cursor) {
    std::string out(kMagic);
    out += cursor;
    out += ' ';
    out += hex16(fnv1a64(cursor));
    out += '\n';
    return out;
}

Result<std::string> parse_cursor_file(std::string_view text) {
    if (text.substr(0, kMagic.size()) != kMagic) return damaged("it does not start with '" + std::string(kMagic) + "'");
    text.remove_prefix(kMagic.size());
    if (text.empty() || text.back() != '\n') return damaged("it does not end with a line feed (cut short?)");
    text.remove_suffix(1);
    const auto space = text.rfind(' ');
    if (space == std::string_view::npos) return damaged("no check value after the cursor");
    const std::string_view cursor = text.substr(0, space);
    const std::string_view check = text.substr(space + 1);
    if (!valid_cursor_text(cursor)) return damaged("the cursor is empty, too long or not printable text");
    if (check != hex16(fnv1a64(cursor))) return damaged("the check value does not match the cursor");
    return std::string(cursor);
}

Result<std::optional<std::string>> read_cursor_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        if (ec && ec != std::errc::no_such_file_or_directory)
            return make_error(errc::io_error, "cannot read " + path + ": " + ec.message());
        return std::optional<std::string>{};
    }
    const std::size_t limit = kMagic.size() + kMaxCursorBytes + kCheckDigits + 2;
    auto text = base::read_file(path, limit);
    if (!text) {
        if (const auto size = std::filesystem::file_size(path, ec); !ec && size > limit)
            return damaged(path + " is larger than any cursor file");
        return make_error(errc::io_error, "cannot read " + path + ": " + text.error().describe());
    }
    auto cursor = parse_cursor_file(*text);
    if (!cursor) return damaged(path + ": " + cursor.error().describe());
    return std::optional<std::string>(std::move(*cursor));
}

Status write_cursor_file(const std::string& path, std::string_view cursor, base::FileSystem& fs) {
    if (!valid_cursor_text(cursor)) return make_error(errc::invalid_argument, "not a cursor: refusing to save it");
    if (auto st = base::write_file_atomic(path, cursor_file_text(cursor), 0600, false, fs); !st)
        return make_error(errc::io_error, "cannot save the journal cursor in " + path + ": " + st.error().describe());
    return {};
}

}  // namespace hsmaudit::collectors::journal
