// A scratch directory for the fuzz targets whose parser under test reads a path: created once per
// process under $TMPDIR (or /tmp), removed at exit.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace hsmaudit::fuzz {

inline const std::filesystem::path& temp_dir() {
    static const std::filesystem::path dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/hsmaudit-fuzz-XXXXXX";
        if (::mkdtemp(templ.data()) == nullptr) std::abort();
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(temp_dir(), ec);
        });
        return std::filesystem::path(templ);
    }();
    return dir;
}

/// Replaces `path` with `data`; aborts if it cannot (the harness's own failure, not the parser's).
inline void write_file(const std::filesystem::path& path, std::string_view data) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
    if (std::fclose(f) != 0) std::abort();
}

}  // namespace hsmaudit::fuzz
