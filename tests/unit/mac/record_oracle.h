// The record path before issue 18's one-pass scan (mac/record_scan.h), kept verbatim as the
// reference the scan is compared with: mac_record_scan_test line by line on thousands of damaged
// lines, segment_fuzz on every input. Test code only: the product checks records with the scan.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac::oracle {

/// The field syntax check of FORMAT.md 2.1, 2.2 and 2.5 as mac/record.cpp had it: the record's
/// time, or an error naming the first problem.
Result<std::int64_t> validate_record_body(std::string_view body);
/// split_record_line() as mac/segment_format.cpp had it.
Result<RecordLineView> split_record_line(std::string_view line);
/// ChainVerifier's time of a record whose syntax was not validated (or broke): as far as it parses.
std::optional<std::int64_t> fallback_time(std::string_view body);

}  // namespace hsmaudit::mac::oracle
