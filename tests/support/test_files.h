// Small file helpers shared by the tests (header-only).
// Thread-safety: free functions; safe on distinct paths.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hsmaudit::testing {

/// The whole content of `p` ("" if it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace hsmaudit::testing
