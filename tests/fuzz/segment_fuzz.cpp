// libFuzzer target for everything that parses a segment file: the line parsers, the record
// parser, unescape, time parsing, and the whole verifier over files with a fixed key.
//
// Input: one segment file, or up to four separated by a line "%%" (to reach the rules between
// segments: ordering, duplicates, gaps, links). Properties checked besides "no crash":
// parse(encode(parse(x))) == parse(x) for records, unescape(escape(v)) == v, and the verifier's
// one-pass record scan agrees with split_record_line() + the syntax check it replaced
// (tests/unit/mac/record_oracle.h).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "mac/record.h"
#include "mac/record_scan.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "tests/fuzz/fuzz_keys.h"
#include "tests/unit/mac/record_oracle.h"

namespace {

using namespace hsmaudit;

struct State {
    std::string dir;
    mac::VerifyOptions with_key;
    mac::VerifyOptions with_pub;
};

State* g_state = nullptr;

/// The verifier's one-pass scan (mac/record_scan.h) says what split_record_line() then the
/// syntax check it replaced (oracle::validate_record_body) say, with the same messages, and reads
/// the time they read.
void check_scan(std::string_view line) {
    mac::RecordScan scan;
    mac::scan_record_line(line, scan);
    auto v = mac::split_record_line(line);
    if (v.has_value() != scan.split_ok()) std::abort();
    if (!v) {
        if (v.error().message != scan.split_error()) std::abort();
        return;
    }
    if (v->seq != scan.seq || v->mac != scan.mac || v->body.data() != scan.body.data() ||
        v->body.size() != scan.body.size())
        std::abort();
    auto syntax = mac::oracle::validate_record_body(v->body);
    if (syntax.has_value() != scan.syntax_ok()) std::abort();
    if (syntax && (!scan.time_known || *syntax != scan.time_ms)) std::abort();
    if (!syntax && syntax.error().message != scan.syntax_error()) std::abort();
}

void check_lines(std::string_view line) {
    (void)mac::classify_line(line);
    check_scan(line);
    if (auto v = mac::split_record_line(line)) (void)mac::parse_record_body(v->body);
    (void)mac::parse_open_line(line);
    if (auto s = mac::parse_seal_line(line)) {
        // The spans must be prefixes of the line.
        if (line.substr(0, s->signed_body.size()) != s->signed_body) std::abort();
        if (line.substr(0, s->mac_body.size()) != s->mac_body) std::abort();
    }
    if (line.size() >= 24) (void)mac::parse_time(line.substr(0, 24));
    if (auto r = mac::parse_record_body(line)) {
        std::string again;
        mac::encode_record_body(*r, again);
        auto back = mac::parse_record_body(again);
        if (!back || !(*back == *r)) std::abort();
    }
    if (auto u = mac::unescape(line)) {
        std::string e;
        mac::append_escaped(*u, e);
        auto back = mac::unescape(e);
        if (!back || *back != *u) std::abort();
    }
    std::string e;
    mac::append_escaped(line, e);
    auto back = mac::unescape(e);
    if (!back || *back != line) std::abort();
}

void write_file(const std::string& path, std::string_view data) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
    std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    static State state;
    char tmpl[] = "/tmp/hsmaudit_segment_fuzz_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    state.dir = tmpl;
    auto keys = fuzz::fixed_keys();
    state.with_key.key.emplace(keys.key);
    state.with_pub.pub.emplace(keys.key.pub());
    state.with_key.max_faults = state.with_pub.max_faults = 100;
    g_state = &state;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    for (std::size_t pos = 0; pos < input.size();) {
        const auto nl = input.find('\n', pos);
        const std::size_t end = nl == std::string_view::npos ? input.size() : nl;
        if (end - pos <= mac::kMaxLineBytes) check_lines(input.substr(pos, end - pos));
        pos = end + 1;
    }

    std::vector<std::string> paths;
    std::size_t pos = 0;
    while (paths.size() < 4) {
        const auto sep = input.find("\n%%\n", pos);
        const bool last = sep == std::string_view::npos || paths.size() == 3;
        const std::string_view part = last ? input.substr(pos) : input.substr(pos, sep + 1 - pos);
        const std::string path = g_state->dir + "/seg" + std::to_string(paths.size()) + ".log";
        write_file(path, part);
        paths.push_back(path);
        if (last) break;
        pos = sep + 4;
    }
    for (const auto* opt : {&g_state->with_key, &g_state->with_pub}) {
        auto report = mac::verify_paths(paths, *opt);
        if (report) {
            std::uint64_t sum = 0;
            for (auto c : report->fault_counts) sum += c;
            if (sum != report->faults_total) std::abort();
        }
    }
    for (const auto& p : paths) ::unlink(p.c_str());
    return 0;
}
