// One pass over a record line (issue 18): what the chain verifier needs of it, found by one scan
// that splits the fields, checks the field syntax and decodes the MAC and the numbers together.
// It reports exactly what split_record_line() then the several-pass syntax check it replaced
// (kept as oracle::validate_record_body in tests/unit/mac/record_oracle.h) report (the same
// first problem, the same message) and the time the verifier falls back to for a record whose
// syntax was not checked or broke; tests/unit/mac/record_scan_test.cpp compares them with the
// several-pass code on thousands of damaged lines, tests/fuzz/segment_fuzz.cpp on every input.
//
// It allocates nothing and fills nothing: on a line that parses, the result is a few views and
// integers; an error keeps what it found (a code, the field, a view of the token) and renders its
// message only when asked (a fault is being reported).
//
// Thread-safety: a free function on values; a RecordScan belongs to its caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mac/keys.h"

namespace hsmaudit::mac {

/// What scan_record_line() found in one record line. A value owned by its caller (the verifier
/// reuses one); its views point into the line scanned.
struct RecordScan {
    /// Set when split_ok(): the line without " mac=<hex>" (what the MAC covers), the sequence
    /// number and the MAC as written.
    std::string_view body;
    std::uint64_t seq = 0;
    Mac mac{};
    /// The record's time in ms since 1970: the validated time when syntax_ok(), else as far as the
    /// 24 bytes after the first space parse as a time (time_known false if they do not).
    std::int64_t time_ms = 0;
    /// The boot counter (`boot=`), when syntax_ok().
    std::uint32_t boot = 0;
    bool time_known = false;

    /// The line ends with " mac=<64 lowercase hex>" and starts with a sequence number (what
    /// split_record_line() accepts).
    [[nodiscard]] bool split_ok() const { return split_ == Problem::none; }
    /// split_ok() and the body keeps the field syntax (what validate_record_body() accepts).
    [[nodiscard]] bool syntax_ok() const { return split_ok() && syntax_ == Problem::none; }
    /// split_record_line()'s message for a line that does not split ("" if it splits).
    [[nodiscard]] std::string split_error() const;
    /// validate_record_body()'s message for a body that breaks the syntax ("" if it keeps it).
    [[nodiscard]] std::string syntax_error() const;

    /// What went wrong, first (internal to record_scan.cpp; public for its helpers).
    enum class Problem : std::uint8_t {
        none,
        // split
        no_mac_field,
        mac_not_hex,
        no_sequence,
        // syntax (validate_record_body's order)
        trailing_space,
        time,            // detail_: parse_time's message
        expected_field,  // field_ expected, token_ found
        bad_value,       // field_ holds detail_
        bad_number,      // field_
        unknown_role,    // token_
        unknown_class,   // token_
        result_shape,
        result_hex,
        detail_no_eq,
        detail_key,
        detail_value,  // detail_
    };
    Problem split_ = Problem::none;
    Problem syntax_ = Problem::none;
    const char* field_ = "";
    const char* detail_ = "";
    std::string_view token_;
};

/// Scans a record line (without LF) into `out`. The members split_ok(), syntax_ok() and
/// time_known say are set are this line's; the others may hold an earlier line's (nothing is
/// cleared that is not set).
void scan_record_line(std::string_view line, RecordScan& out);

}  // namespace hsmaudit::mac
