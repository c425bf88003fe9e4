// Rendering of a verification report for people (a short summary) and machines (--json; dumped
// with base::json_text).
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

}  // namespace hsmaudit::agent
