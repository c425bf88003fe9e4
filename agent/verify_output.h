// Rendering of a verification report for people (a short summary) and machines (--json), and
// the one UTF-8-safe JSON dump of the --json outputs.
// Thread-safety: free functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "mac/verifier.h"

namespace hsmaudit::agent {

/// The human summary: counts, ranges, the open tail, every fault kept, and the verdict line.
std::string render_report_text(const mac::VerifyReport& report);

/// The machine form; stable field names (docs/FORMAT.md, "Verifier output").
nlohmann::json render_report_json(const mac::VerifyReport& report);

/// The text of `j` (indented by `indent`, -1: one line) with every invalid UTF-8 sequence
/// replaced by U+FFFD: file names, lines and error messages in these reports come from disk or
/// the network, and nlohmann::json's default dump throws on such bytes. Every --json output and
/// every JSON file the daemon writes goes through this (or error_handler_t::replace).
std::string json_text(const nlohmann::json& j, int indent = 2);

}  // namespace hsmaudit::agent
