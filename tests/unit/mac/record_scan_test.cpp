// Issue 18: the chain verifier's record path parses each line in one pass (mac/record_scan.h).
// These tests pin that it reports exactly what the several-pass code before it reported, on
// thousands of damaged record lines (byte changes, insertions, deletions, truncations, swapped,
// deleted and duplicated fields, bad hex, bad times, overlong numbers and keys, bad escapes and
// UTF-8):
//  - against an oracle: the previous split_record_line(), validate_record_body() and the
//    verifier's time fallback, kept verbatim in record_oracle.cpp (namespace `oracle`), line by line;
//  - through ChainVerifier (with the audit secret, re-MAC'd as a hostile module would; with it,
//    unchanged; with the public key only): the faults (kind, line, sequence, message, order),
//    the record observer's calls and the segment totals, compared with the output of the code
//    before the change, kept in record_scan_expected.txt (a sample in full, the rest as SHA-256).
//
// Regenerate the expectations only from a build whose record path is known good:
//   HSMAUDIT_RECORD_SCAN_REGENERATE=1 build/ci/tests/unit/mac/mac_record_scan_test
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mac/chain_verifier.h"
#include "mac/chain_writer.h"
#include "mac/errc.h"
#include "mac/record.h"
#include "mac/record_scan.h"
#include "mac/segment_format.h"
#include "tests/fuzz/fuzz_keys.h"
#include "tests/unit/mac/record_oracle.h"
#include "tests/unit/mac/test_support.h"

#ifndef HSMAUDIT_RECORD_SCAN_EXPECTED
#error "HSMAUDIT_RECORD_SCAN_EXPECTED must name tests/unit/mac/record_scan_expected.txt"
#endif

namespace hsmaudit::mac {

namespace {

using namespace hsmaudit::mac::testing;

std::string hex_of(ByteView b) {
    return hex_encode(b);
}

/// One honest segment of the fixed test chain: its open line and record bodies (no LF), and K_0.
struct Honest {
    std::string open;
    std::vector<std::string> bodies;
    Bytes32 key{};
    Mac prev{};  // the open line's prev
};

const fuzz::FixedKeys& keys() {
    static const fuzz::FixedKeys k = fuzz::fixed_keys();
    return k;
}

const Honest& honest() {
    static const Honest h = [] {
        Honest out;
        auto w = ChainWriter::create(keys().key.chain(), "150123", 7, keys().signer, genesis_head(keys().key));
        EXPECT_TRUE(w.has_value());
        TestWorkload load(11, 1'795'500'000'000);
        auto open = w->open_segment(load.now_ms());
        EXPECT_TRUE(open.has_value());
        out.open = open->substr(0, open->size() - 1);
        AuditRecord rec;
        for (int i = 0; i < 6; ++i) {
            load.next(rec);
            if (i == 2) rec.details.push_back({"note", "caf\xc3\xa9 \\ \x01 \xf0\x9f\x98\x80 end"});
            if (i == 4) rec.event_class = "failure", rec.role = "PSO", rec.result = 0xdeadbeef;
            std::string line;
            EXPECT_TRUE(w->append(rec, line).has_value());
            out.bodies.push_back(line.substr(0, line.size() - 70));  // " mac=" + 64 + LF
        }
        auto parsed = parse_open_line(out.open);
        EXPECT_TRUE(parsed.has_value());
        EpochKeyDeriver d(keys().key);
        out.key = d.key_for(parsed->epoch);
        out.prev = parsed->prev;
        return out;
    }();
    return h;
}

/// body + " mac=" + HMAC(K, body || prev).
std::string with_mac(std::string_view body, const Mac& mac) {
    std::string s(body);
    s += " mac=";
    s += hex_of(mac);
    return s;
}

struct Case {
    std::string name;
    std::size_t index = 0;            // which record of the segment is damaged
    std::string body;                 // the damaged body (remac: MAC'd again, as a hostile module would)
    std::optional<std::string> line;  // or the damaged whole line (used as is)
    bool terminated = true;
    bool too_long = false;
};

std::vector<std::string> tokens(std::string_view body) {
    std::vector<std::string> t;
    std::size_t pos = 0;
    for (;;) {
        const auto sp = body.find(' ', pos);
        t.emplace_back(body.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos));
        if (sp == std::string_view::npos) break;
        pos = sp + 1;
    }
    return t;
}

std::string join(const std::vector<std::string>& t) {
    std::string s;
    for (std::size_t i = 0; i < t.size(); ++i) s += (i == 0 ? "" : " ") + t[i];
    return s;
}

/// Every damaged line of the test: deterministic, several thousand.
std::vector<Case> make_cases() {
    const Honest& h = honest();
    std::vector<Case> cases;
    const std::vector<unsigned char> bytes = {' ',  '\\', 0x00, 0x09, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc3,
                                              0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff, '=',  'A',  '0',  '9',
                                              'x',  'g',  '-',  '_',  '.',  ':',  'Z',  'T',  's',  'n'};
    for (std::size_t idx : {std::size_t{2}, std::size_t{4}}) {
        const std::string& b = h.bodies[idx];
        for (std::size_t p = 0; p < b.size(); ++p) {
            for (unsigned char v : bytes) {
                if (static_cast<unsigned char>(b[p]) == v) continue;
                std::string m = b;
                m[p] = static_cast<char>(v);
                cases.push_back({"set " + std::to_string(p) + " " + std::to_string(v), idx, m, {}});
            }
            std::string del = b;
            del.erase(p, 1);
            cases.push_back({"delete " + std::to_string(p), idx, del, {}});
            for (unsigned char v : {' ', '\\', 'x', '\xc3'}) {
                std::string ins = b;
                ins.insert(p, 1, static_cast<char>(v));
                cases.push_back({"insert " + std::to_string(p) + " " + std::to_string(v), idx, ins, {}});
            }
            cases.push_back({"truncate body " + std::to_string(p), idx, b.substr(0, p), {}});
        }
    }
    // Whole fields: swapped, deleted, duplicated, values and keys replaced.
    const std::vector<std::string> values = {"",
                                             "0",
                                             "00",
                                             "01",
                                             "7",
                                             "4294967295",
                                             "4294967296",
                                             "18446744073709551615",
                                             "18446744073709551616",
                                             "99999999999999999999999",
                                             "-1",
                                             "+1",
                                             "1a",
                                             std::string(45, 'q'),
                                             std::string(45, '7'),
                                             "\\",
                                             "a\\",
                                             "\\x",
                                             "\\x4",
                                             "\\x4G",
                                             "\\xA1",
                                             "\\x41",
                                             "\\x4g",
                                             "\\q",
                                             "\\s\\t\\n\\r\\\\",
                                             "\xc3\xa9",
                                             "\xc3",
                                             "\xc1\x81",
                                             "\xe0\x80\x80",
                                             "\xe0\xa0\x80",
                                             "\xed\xa0\x80",
                                             "\xed\x9f\xbf",
                                             "\xf0\x8f\xbf\xbf",
                                             "\xf4\x90\x80\x80",
                                             "\xf4\x8f\xbf\xbf",
                                             "\xf0\x9f\x98\x80",
                                             "\xf0\x9f\x98",
                                             "a\x7f",
                                             "a\tb",
                                             "0x0000000a",
                                             "0x0000000A",
                                             "0x000000000",
                                             "0x0000000",
                                             "0X00000000",
                                             "0x",
                                             "SO",
                                             "XX",
                                             "PSO",
                                             "-",
                                             "usage",
                                             "Usage",
                                             "keymanage",
                                             "a=b",
                                             "=",
                                             "2026-11-24T06:15:17.123Z"};
    const std::vector<std::string> keys_ = {"",
                                            "Serial",
                                            "seria",
                                            "serialx",
                                            "boot",
                                            "a",
                                            "k_9",
                                            "9k",
                                            "_k",
                                            "K",
                                            std::string(32, 'k'),
                                            std::string(33, 'k'),
                                            "k-k",
                                            "k.k"};
    for (std::size_t idx : {std::size_t{1}, std::size_t{4}}) {
        const auto t = tokens(h.bodies[idx]);
        for (std::size_t a = 0; a < t.size(); ++a) {
            for (std::size_t b2 = a + 1; b2 < t.size(); ++b2) {
                auto s = t;
                std::swap(s[a], s[b2]);
                cases.push_back({"swap " + std::to_string(a) + " " + std::to_string(b2), idx, join(s), {}});
            }
            auto d = t;
            d.erase(d.begin() + static_cast<std::ptrdiff_t>(a));
            cases.push_back({"drop field " + std::to_string(a), idx, join(d), {}});
            auto u = t;
            u.insert(u.begin() + static_cast<std::ptrdiff_t>(a), t[a]);
            cases.push_back({"dup field " + std::to_string(a), idx, join(u), {}});
            const auto eq = t[a].find('=');
            for (std::size_t v = 0; v < values.size(); ++v) {
                auto r = t;
                r[a] = (eq == std::string::npos ? std::string() : t[a].substr(0, eq + 1)) + values[v];
                cases.push_back({"value " + std::to_string(a) + " " + std::to_string(v), idx, join(r), {}});
            }
            if (eq != std::string::npos) {
                for (std::size_t k = 0; k < keys_.size(); ++k) {
                    auto r = t;
                    r[a] = keys_[k] + t[a].substr(eq);
                    cases.push_back({"key " + std::to_string(a) + " " + std::to_string(k), idx, join(r), {}});
                }
            }
        }
    }
    // Times, whole.
    const std::vector<std::string> times = {
        "2026-11-24T06:15:17.123Z",  "2026-13-01T00:00:00.000Z",  "2026-02-30T00:00:00.000Z",
        "2026-00-10T00:00:00.000Z",  "2026-01-00T00:00:00.000Z",  "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",  "2026-11-24T24:00:00.000Z",  "2026-11-24T23:60:00.000Z",
        "2026-11-24T23:59:60.000Z",  "2026-11-24 06:15:17.123Z",  "2026-11-24T06:15:17.123",
        "2026-11-24T06:15:17.1234Z", "2026-11-24T06:15:17.123Zx", "0000-01-01T00:00:00.000Z",
        "9999-12-31T23:59:59.999Z",  "2024-02-29T12:00:00.000Z",  "2023-02-29T12:00:00.000Z",
        "2O26-11-24T06:15:17.123Z",  "2026/11/24T06:15:17.123Z",  "2026-11-24T06:15:17,123Z",
        "2026-11-24t06:15:17.123Z",  "2026-11-24T06:15:17.123z",  "",
        "2026-11-24T06:15:17.-12Z",  "+026-11-24T06:15:17.123Z"};
    for (std::size_t i = 0; i < times.size(); ++i) {
        for (std::size_t idx : {std::size_t{1}, std::size_t{3}}) {
            auto t = tokens(h.bodies[idx]);
            t[1] = times[i];
            cases.push_back({"time " + std::to_string(i), idx, join(t), {}});
        }
    }
    // Sequence numbers: gaps, duplicates, reordering, malformed.
    for (const std::string& s : std::vector<std::string>{"0", "01", "2", "3", "5", "9", "18446744073709551615",
                                                         "18446744073709551616", "1a", ""}) {
        auto t = tokens(h.bodies[3]);
        t[0] = s;
        cases.push_back({"seq " + s, 3, join(t), {}});
    }
    // Appended details and spacing.
    for (const std::string& s : std::vector<std::string>{" k=v", " k", " =v", " K=v", " k==v", " k=", " ", "  k=v",
                                                         " k=v ", " k=\\xzz", " k=a\\", " k=\\x0", " k=\xff"}) {
        cases.push_back({"append '" + s + "'", 2, h.bodies[2] + s, {}});
    }
    // The MAC field and the line as a whole (not MAC'd again).
    const std::string line3 = with_mac(h.bodies[3], Mac{});
    const std::string mac_hex(64, '0');
    for (std::size_t p = 0; p < 69; p += 4) {
        for (char v : {'g', 'A', ' ', '0'}) {
            Case c{"mac byte " + std::to_string(p) + " " + std::string(1, v), 3, {}, {}};
            std::string l = h.bodies[3] + " mac=" + mac_hex;
            l[h.bodies[3].size() + p] = v;
            c.line = l;
            cases.push_back(c);
        }
    }
    for (const std::string& tail : std::vector<std::string>{
             std::string(" mac=") + std::string(63, '0'), std::string(" mac=") + std::string(65, '0'),
             std::string(" MAC=") + mac_hex, std::string(" mac:") + mac_hex, std::string("  mac=") + mac_hex,
             std::string("mac=") + mac_hex, std::string(" mac=") + mac_hex + " ", std::string(""),
             std::string(" mac=").append(mac_hex).append(" mac=").append(mac_hex)}) {
        Case c{"tail " + std::to_string(cases.size()), 3, {}, {}};
        c.line = h.bodies[3] + tail;
        cases.push_back(c);
    }
    for (const std::string& whole :
         std::vector<std::string>{"", "0 x mac=" + mac_hex, "@open v=1", "@seal v=1", "1", "1 mac=" + mac_hex,
                                  " mac=" + mac_hex, "1  mac=" + mac_hex, "x"}) {
        Case c{"whole " + std::to_string(cases.size()), 3, {}, {}};
        c.line = whole;
        cases.push_back(c);
    }
    for (std::size_t p = 0; p < line3.size(); p += 7) {
        Case c{"truncate line " + std::to_string(p), 3, {}, {}};
        c.line = line3.substr(0, p);
        cases.push_back(c);
    }
    {
        Case c{"torn", 3, h.bodies[3], {}};
        c.terminated = false;
        cases.push_back(c);
        Case l{"too long", 3, h.bodies[3], {}};
        l.too_long = true;
        cases.push_back(l);
    }
    return cases;
}

enum class Mode { remac, asis, pub };

/// What ChainVerifier reports for the honest segment with record `c.index` replaced by the damaged one.
std::string verify_case(const Case& c, Mode mode) {
    const Honest& h = honest();
    std::ostringstream out;
    const AuditPub pub = keys().key.pub();
    ChainVerifier cv(mode == Mode::pub ? nullptr : &keys().key, mode == Mode::pub ? &pub : nullptr, [&](Fault&& f) {
        out << to_string(f.kind) << ' ' << f.file << ':' << f.line << " #" << f.seq << ' ' << f.message << '\n';
    });
    cv.set_record_observer([&](std::uint64_t seq, const Mac& mac, std::uint64_t line) {
        out << "obs " << seq << '@' << line << ' ' << hex_of(mac).substr(0, 8) << '\n';
    });
    auto open = parse_open_line(h.open);
    EXPECT_TRUE(open.has_value());
    EXPECT_TRUE(cv.begin_segment(*open, h.open, "seg", 1));
    auto hmac = HmacSha256::create(h.key);
    Mac prev = h.prev;
    for (std::size_t i = 0; i < h.bodies.size(); ++i) {
        std::string line;
        bool terminated = true, too_long = false;
        if (i == c.index) {
            if (c.line) {
                line = *c.line;
            } else {
                // A hostile module MACs what it writes; as is, the damaged body keeps the honest MAC.
                const Mac m = mode == Mode::asis ? hmac->compute(as_bytes(h.bodies[i]), prev)
                                                 : hmac->compute(as_bytes(c.body), prev);
                line = with_mac(c.body, m);
            }
            terminated = c.terminated;
            too_long = c.too_long;
        } else {
            line = with_mac(h.bodies[i], hmac->compute(as_bytes(h.bodies[i]), prev));
        }
        if (auto v = oracle::split_record_line(line)) prev = v->mac;
        cv.line(too_long ? std::string_view() : std::string_view(line), i + 2, terminated, too_long);
    }
    const SegmentTotals t = cv.end_segment(true);
    out << "totals " << t.records << ' ' << t.first_seq << '-' << t.last_seq << ' ' << t.first_time_ms << '-'
        << t.last_time_ms << (t.authenticated ? " auth" : "") << (cv.wrong_key() ? " wrongkey" : "") << '\n';
    return out.str();
}

std::string mode_name(Mode m) {
    return m == Mode::remac ? "remac" : m == Mode::asis ? "asis" : "pub";
}

/// Bytes below 0x20 and from 0x7F as \xHH: the expectations file stays text.
std::string printable(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7F) {
            out += ch;
        } else {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

std::string sha256_hex(const std::string& s) {
    auto sha = Sha256::create();
    return hex_of(sha->compute(as_bytes(s)));
}

/// The line a Case feeds the verifier (remac mode), for the function-level comparisons.
std::string case_line(const Case& c) {
    if (c.line) return *c.line;
    const Honest& h = honest();
    auto hmac = HmacSha256::create(h.key);
    return with_mac(c.body, hmac->compute(as_bytes(c.body), h.prev));
}

TEST(RecordScan, MatchesTheSeveralPassOracleOnDamagedLines) {
    const auto cases = make_cases();
    ASSERT_GT(cases.size(), 5000u);
    std::size_t split_ok = 0, syntax_ok = 0;
    for (const Case& c : cases) {
        const std::string line = case_line(c);
        SCOPED_TRACE(c.name + ": " + line);
        const auto old_split = oracle::split_record_line(line);
        const auto cur_split = split_record_line(line);
        RecordScan scan;
        scan_record_line(line, scan);
        ASSERT_EQ(old_split.has_value(), cur_split.has_value());
        ASSERT_EQ(old_split.has_value(), scan.split_ok());
        if (!old_split) {
            EXPECT_EQ(old_split.error().message, cur_split.error().message);
            EXPECT_EQ(old_split.error().message, scan.split_error());
            continue;
        }
        ++split_ok;
        EXPECT_EQ(old_split->seq, scan.seq);
        EXPECT_EQ(old_split->body, scan.body);
        EXPECT_EQ(old_split->body.data(), scan.body.data());
        EXPECT_EQ(old_split->mac, scan.mac);
        EXPECT_EQ(cur_split->seq, scan.seq);
        const auto old_syntax = oracle::validate_record_body(old_split->body);
        ASSERT_EQ(old_syntax.has_value(), scan.syntax_ok());
        if (old_syntax) {
            ++syntax_ok;
            EXPECT_TRUE(scan.time_known);
            EXPECT_EQ(*old_syntax, scan.time_ms);
        } else {
            EXPECT_EQ(old_syntax.error().message, scan.syntax_error());
            const auto t = oracle::fallback_time(old_split->body);
            EXPECT_EQ(t.has_value(), scan.time_known);
            if (t && scan.time_known) {
                EXPECT_EQ(*t, scan.time_ms);
            }
        }
    }
    // The cases reach every stage: lines that do not split, split but break the syntax, and pass.
    EXPECT_GT(split_ok, cases.size() / 2);
    EXPECT_GT(syntax_ok, 100u);
    EXPECT_LT(syntax_ok, split_ok / 2);
}

TEST(RecordScan, TimesAsParseTimeReadsThem) {
    // Every month and day number around the calendar's edges, leap years, clock limits: the
    // scan's own date arithmetic against parse_time() (std::chrono).
    const std::string rest = " serial=150123 boot=1 part=1 role=CO sess=1 event=E class=usage result=0x00000000";
    const std::string mac = " mac=" + std::string(64, '0');
    std::size_t n = 0;
    for (int y : {0, 1, 4, 100, 400, 1900, 1969, 1970, 1971, 1972, 2000, 2023, 2024, 2026, 2100, 2400, 9999}) {
        for (int mo = 0; mo <= 13; ++mo) {
            for (int d = 0; d <= 32; ++d) {
                for (const char* clock :
                     {"00:00:00.000", "23:59:59.999", "24:00:00.000", "12:60:00.000", "12:00:60.000", "1a:00:00.000"}) {
                    char t[64];
                    (void)std::snprintf(t, sizeof t, "%04d-%02d-%02dT%sZ", y, mo, d, clock);
                    std::string line = "1 ";
                    line.append(t).append(rest).append(mac);
                    RecordScan scan;
                    scan_record_line(line, scan);
                    ASSERT_TRUE(scan.split_ok()) << line;
                    const auto want = parse_time(t);
                    ASSERT_EQ(want.has_value(), scan.time_known) << t;
                    ASSERT_EQ(want.has_value(), scan.syntax_ok()) << t;
                    if (want) {
                        ASSERT_EQ(*want, scan.time_ms) << t;
                    } else {
                        ASSERT_EQ(want.error().message, scan.syntax_error()) << t;
                    }
                    ++n;
                }
            }
        }
    }
    EXPECT_EQ(n, 17u * 14 * 33 * 6);
}

TEST(RecordScan, TheVerifierSharesItsScanOfTheLastRecord) {
    // What the drain's boot and clock watch can take instead of scanning the line again.
    const Honest& h = honest();
    ChainVerifier cv(&keys().key, nullptr, [](Fault&&) {});
    auto open = parse_open_line(h.open);
    ASSERT_TRUE(open.has_value());
    EXPECT_EQ(cv.last_record(), nullptr);
    ASSERT_TRUE(cv.begin_segment(*open, h.open, "seg", 1));
    auto hmac = HmacSha256::create(h.key);
    const std::string line = with_mac(h.bodies[0], hmac->compute(as_bytes(h.bodies[0]), h.prev));
    cv.line(line, 2);
    const RecordScan* r = cv.last_record();
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->syntax_ok());
    EXPECT_EQ(r->seq, 1u);
    EXPECT_EQ(r->boot, 7u);  // the writer's boot counter
    const auto sp = line.find(' ');
    EXPECT_EQ(r->time_ms, *parse_time(std::string_view(line).substr(sp + 1, 24)));
    cv.line("not a record", 3);
    EXPECT_EQ(cv.last_record(), nullptr);
    cv.line("2 x mac=zz", 4);
    EXPECT_EQ(cv.last_record(), nullptr);
}

TEST(RecordScan, ChainVerifierReportsWhatTheSeveralPassCodeReported) {
    const auto cases = make_cases();
    // The expectations: a sample of cases in full (readable, diffable), every case as one SHA-256 per mode.
    std::ostringstream sample;
    std::ostringstream digests;
    for (Mode mode : {Mode::remac, Mode::asis, Mode::pub}) {
        std::string all;
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const std::string got = verify_case(cases[i], mode);
            all += cases[i].name + '\n' + got;
            if (i % 331 == 0) {  // the observer's lines only in the digest
                sample << "== " << mode_name(mode) << ' ' << cases[i].name << '\n';
                std::istringstream lines(got);
                for (std::string l; std::getline(lines, l);)
                    if (!l.starts_with("obs ")) sample << printable(l) << '\n';
            }
        }
        digests << "sha256 " << mode_name(mode) << ' ' << cases.size() << ' ' << sha256_hex(all) << '\n';
    }
    const std::string expected_now = sample.str() + digests.str();
    if (std::getenv("HSMAUDIT_RECORD_SCAN_REGENERATE") != nullptr) {
        std::ofstream f(HSMAUDIT_RECORD_SCAN_EXPECTED, std::ios::binary | std::ios::trunc);
        f << expected_now;
        ASSERT_TRUE(f.good());
        GTEST_SKIP() << "wrote " << HSMAUDIT_RECORD_SCAN_EXPECTED;
    }
    const std::string pinned = read_all(HSMAUDIT_RECORD_SCAN_EXPECTED);
    ASSERT_FALSE(pinned.empty()) << "missing " << HSMAUDIT_RECORD_SCAN_EXPECTED;
    // Line by line first (the sample names the case that differs), then the digests of every case.
    std::istringstream a(pinned), b(expected_now);
    std::string la, lb;
    std::size_t n = 0;
    while (std::getline(a, la)) {
        ++n;
        ASSERT_TRUE(std::getline(b, lb)) << "output ends at line " << n;
        ASSERT_EQ(la, lb) << "line " << n << " of " << HSMAUDIT_RECORD_SCAN_EXPECTED;
    }
    EXPECT_FALSE(std::getline(b, lb)) << "more output than pinned: " << lb;
}

}  // namespace
}  // namespace hsmaudit::mac
