// The one UTF-8-safe JSON dump of every --json output and every JSON file the daemon writes.
// Thread-safety: a free function.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace hsmaudit::base {

/// The text of `j` (indented by `indent`, -1: one line) with every invalid UTF-8 sequence
/// replaced by U+FFFD: file names, lines and error messages come from disk or the network, and
/// nlohmann::json's default dump throws on such bytes.
inline std::string json_text(const nlohmann::json& j, int indent = 2) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hsmaudit::base
