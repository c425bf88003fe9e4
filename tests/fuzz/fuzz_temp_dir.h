// A scratch directory for the fuzz targets whose parser under test reads a path: created once per
// process under $TMPDIR (or /tmp) as hsmaudit-fuzz-<pid>, removed at exit; a crashed run's
// directory (its process gone) is removed by the next run.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace hsmaudit::fuzz {

inline const std::filesystem::path& temp_dir() {
    // Never destroyed: the atexit handler below runs after function-local statics are destroyed.
    static const std::filesystem::path& dir = *new std::filesystem::path([] {
        const char* env = std::getenv("TMPDIR");
        const std::filesystem::path base = env != nullptr && *env != '\0' ? env : "/tmp";
        constexpr std::string_view kPrefix = "hsmaudit-fuzz-";
        std::error_code ec;
        for (std::filesystem::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.rfind(kPrefix, 0) != 0) continue;
            const std::string pid = name.substr(kPrefix.size());
            std::error_code e2;
            if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos &&
                !std::filesystem::exists("/proc/" + pid, e2))
                std::filesystem::remove_all(it->path(), e2);
        }
        const auto d = base / (std::string(kPrefix) + std::to_string(::getpid()));
        std::filesystem::remove_all(d, ec);
        if (!std::filesystem::create_directory(d, ec) || ec) std::abort();
        std::atexit([] {
            std::error_code e;
            std::filesystem::remove_all(temp_dir(), e);
        });
        return d;
    }());
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
