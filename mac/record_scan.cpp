// TEMPORARY: the several-pass code behind the one-pass API, to pin its output first.
#include "mac/record_scan.h"

#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {

namespace {
thread_local std::string g_split, g_syntax;  // NOLINT
}

std::string RecordScan::split_error() const {
    return split_ok() ? std::string() : g_split;
}
std::string RecordScan::syntax_error() const {
    return syntax_ == Problem::none ? std::string() : g_syntax;
}

void scan_record_line(std::string_view line, RecordScan& out) {
    out = RecordScan{};
    auto rec = split_record_line(line);
    if (!rec) {
        out.split_ = RecordScan::Problem::no_mac_field;
        g_split = rec.error().message;
        return;
    }
    out.body = rec->body;
    out.seq = rec->seq;
    out.mac = rec->mac;
    auto syntax = validate_record_body(rec->body);
    if (syntax) {
        out.time_ms = *syntax;
        out.time_known = true;
        return;
    }
    out.syntax_ = RecordScan::Problem::time;
    g_syntax = syntax.error().message;
    const auto sp = rec->body.find(' ');
    if (sp != std::string_view::npos)
        if (auto t = parse_time(rec->body.substr(sp + 1, 24))) {
            out.time_ms = *t;
            out.time_known = true;
        }
}

}  // namespace hsmaudit::mac
