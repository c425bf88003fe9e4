// Record encoding, escaping, time and number parsing, and the control lines of a segment.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mac/crypto.h"
#include "mac/errc.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {
namespace {

std::string escaped(std::string_view v) {
    std::string out;
    append_escaped(v, out);
    return out;
}

/// True if `s` is valid UTF-8 with no space, no control byte and no DEL.
bool is_clean_field(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c <= 0x20 || c == 0x7F) return false;
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (n == 0 || c > 0xF4 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

std::string hostile_values_blob() {
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    return all;
}

TEST(Escape, KnownEscapes) {
    EXPECT_EQ(escaped("a b"), "a\\sb");
    EXPECT_EQ(escaped("a\\b"), "a\\\\b");
    EXPECT_EQ(escaped("\t\n\r"), "\\t\\n\\r");
    EXPECT_EQ(escaped(std::string("\0\x01\x7f", 3)), "\\x00\\x01\\x7f");
    EXPECT_EQ(escaped("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9\\s\xE2\x82\xAC");  // valid UTF-8 stays
    EXPECT_EQ(escaped("\xFF"), "\\xff");
    EXPECT_EQ(escaped("\xC0\x80"), "\\xc0\\x80");                    // overlong NUL
    EXPECT_EQ(escaped("\xED\xA0\x80"), "\\xed\\xa0\\x80");           // surrogate
    EXPECT_EQ(escaped("\xF4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
    EXPECT_EQ(escaped("\xE2\x82"), "\\xe2\\x82");                    // truncated sequence
    EXPECT_EQ(escaped(""), "");
}

TEST(Escape, RoundTripsHostileValues) {
    const std::string values[] = {
        "",
        " ",
        "\\",
        "\\\\s",
        "\\x41",
        "trailing\\",
        "a b\tc\nd\re",
        hostile_values_blob(),
        "\xF0\x9F\x98\x80 emoji",
        "\x80\x80\xC2",
        std::string(65536, ' '),
        std::string(65536, '\\'),
        std::string(65536, '\xFF'),
    };
    for (const auto& v : values) {
        const std::string e = escaped(v);
        EXPECT_TRUE(is_clean_field(e)) << "escaped form of a " << v.size() << "-byte value is not clean";
        auto back = unescape(e);
        ASSERT_TRUE(back.has_value()) << back.error().message;
        EXPECT_EQ(*back, v);
    }
}

TEST(Escape, UnescapeRejectsMalformedInput) {
    for (const std::string& bad : std::vector<std::string>{"\\", "abc\\", "\\q", "\\x", "\\x4", "\\xZZ", "\\xAB", "a b",
                                                           "a\tb", std::string("a\0b", 3), "\x7f"}) {
        auto r = unescape(bad);
        EXPECT_FALSE(r.has_value()) << "accepted '" << bad << "'";
        if (!r) {
            EXPECT_EQ(r.error().code, errc::bad_format);
        }
    }
}

AuditRecord sample_record() {
    AuditRecord r;
    r.seq = 42;
    r.time_ms = 1'795'500'000'123;
    r.serial = "150123";
    r.boot = 3;
    r.partition = 1;
    r.role = "CO";
    r.session = 17;
    r.event = "LUNA_SIGN";
    r.event_class = "usage";
    r.result = 0;
    r.details = {{"key", "101"}, {"mech", "CKM_ECDSA_SHA256"}};
    return r;
}

TEST(Record, EncodesTheDocumentedLine) {
    std::string body;
    encode_record_body(sample_record(), body);
    EXPECT_EQ(body,
              "42 2026-11-24T06:00:00.123Z serial=150123 boot=3 part=1 role=CO sess=17 event=LUNA_SIGN class=usage "
              "result=0x00000000 key=101 mech=CKM_ECDSA_SHA256");
}

TEST(Record, ParseInvertsEncodeWithHostileValues) {
    AuditRecord r = sample_record();
    r.seq = UINT64_MAX;
    r.session = UINT64_MAX;
    r.boot = UINT32_MAX;
    r.partition = UINT32_MAX;
    r.result = 0xFFFFFFFF;
    r.time_ms = 253402300799999;  // 9999-12-31T23:59:59.999Z
    r.role = "";
    r.event = "a=b c\\d";
    r.event_class = hostile_values_blob();
    r.details = {{"label", "issuing CA 1"},           {"empty", ""},
                 {"bin", hostile_values_blob()},      {"eq", "x=y=z"},
                 {"big", std::string(65536, '\x01')}, {"k_9", "\xC3\x28 invalid utf-8"}};
    std::string body;
    encode_record_body(r, body);
    auto back = parse_record_body(body);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(*back, r);

    AuditRecord minimal;
    minimal.seq = 1;
    body.clear();
    encode_record_body(minimal, body);
    back = parse_record_body(body);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(*back, minimal);
}

TEST(Record, ParseRejectsMalformedBodies) {
    std::string good;
    encode_record_body(sample_record(), good);
    ASSERT_TRUE(parse_record_body(good).has_value());
    const std::string bad[] = {
        "",
        "0 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000",
        "042 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000",
        "1 2026-11-24T06:00:00.123Z serial=1 part=0 boot=0 role=- sess=0 event=E class=c result=0x00000000",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=4294967296 part=0 role=- sess=0 event=E class=c result=0x00000000",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x0000000A",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x000000",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000 nokey",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000 Key=1",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000 k=\\q",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000 ",
        "1 2026-11-24T06:00:00.123Z serial=1 boot=0 part=0 role=- sess=0 event=E class=c",
        "1 2026-11-24 serial=1 boot=0 part=0 role=- sess=0 event=E class=c result=0x00000000",
    };
    for (const auto& b : bad) {
        auto r = parse_record_body(b);
        EXPECT_FALSE(r.has_value()) << "accepted: " << b;
        if (!r) {
            EXPECT_EQ(r.error().code, errc::bad_format);
        }
    }
}

TEST(Time, FormatsAndParsesKnownInstants) {
    EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_time(1'795'500'000'123), "2026-11-24T06:00:00.123Z");
    EXPECT_EQ(format_time(951'782'400'000), "2000-02-29T00:00:00.000Z");
    EXPECT_EQ(format_time(253402300799999), "9999-12-31T23:59:59.999Z");
    // Out-of-range values are clamped rather than producing a malformed field.
    EXPECT_EQ(format_time(-5), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_time(INT64_MAX), "9999-12-31T23:59:59.999Z");
    for (std::int64_t t : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999}, std::int64_t{86'399'999},
                           std::int64_t{1'709'164'800'000} /*2024-02-29*/, std::int64_t{1'795'500'000'123},
                           std::int64_t{253402300799999}}) {
        auto back = parse_time(format_time(t));
        ASSERT_TRUE(back.has_value()) << format_time(t) << ": " << back.error().message;
        EXPECT_EQ(*back, t);
    }
}

TEST(Time, ParseIsStrict) {
    for (const char* bad : {"", "2026-11-24T06:40:00.123", "2026-11-24T06:40:00.123z", "2026-11-24 06:40:00.123Z",
                            "2026-11-24T06:40:00Z", "2026-11-24T06:40:00.1234Z", "2026-02-30T00:00:00.000Z",
                            "2023-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-00-01T00:00:00.000Z",
                            "2026-11-24T24:00:00.000Z", "2026-11-24T06:60:00.000Z", "2026-11-24T06:40:60.000Z",
                            "1969-12-31T23:59:59.999Z", "2026-11-2xT06:40:00.123Z", "+026-11-24T06:40:00.123Z"}) {
        auto r = parse_time(bad);
        EXPECT_FALSE(r.has_value()) << "accepted '" << bad << "'";
    }
}

TEST(Numbers, ParseU64IsStrict) {
    std::uint64_t v = 0;
    EXPECT_TRUE(parse_u64("0", v));
    EXPECT_EQ(v, 0u);
    EXPECT_TRUE(parse_u64("18446744073709551615", v));
    EXPECT_EQ(v, UINT64_MAX);
    for (const char* bad :
         {"", "00", "01", "-1", "+1", " 1", "1 ", "18446744073709551616", "99999999999999999999", "1a", "0x10"})
        EXPECT_FALSE(parse_u64(bad, v)) << "accepted '" << bad << "'";
}

TEST(Hex, StrictLowercase) {
    std::array<std::uint8_t, 2> out{};
    EXPECT_TRUE(hex_decode("0aff", out));
    EXPECT_EQ(out[0], 0x0a);
    EXPECT_EQ(out[1], 0xff);
    EXPECT_FALSE(hex_decode("0AFF", out));
    EXPECT_FALSE(hex_decode("0af", out));
    EXPECT_FALSE(hex_decode("0aff00", out));
    EXPECT_FALSE(hex_decode("0agf", out));
    EXPECT_EQ(hex_encode(out), "0aff");
}

TEST(SegmentLines, OpenLineRoundTrip) {
    OpenLine o;
    o.chain.fill(0xab);
    o.serial = "150123";
    o.epoch = 7;
    o.boot = 2;
    o.first_seq = 701;
    o.time_ms = 1'795'500'000'123;
    o.prev.fill(0x11);
    o.mac.fill(0x22);
    const std::string line = o.line();
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.rfind("@open v=1 chain=abababababababababababababababab serial=150123 epoch=7 boot=2 first=701 "
                         "time=2026-11-24T06:00:00.123Z prev=",
                         0),
              0u);
    auto p = parse_open_line(std::string_view(line).substr(0, line.size() - 1));
    ASSERT_TRUE(p.has_value()) << p.error().message;
    EXPECT_EQ(p->chain, o.chain);
    EXPECT_EQ(p->serial, o.serial);
    EXPECT_EQ(p->epoch, o.epoch);
    EXPECT_EQ(p->boot, o.boot);
    EXPECT_EQ(p->first_seq, o.first_seq);
    EXPECT_EQ(p->time_ms, o.time_ms);
    EXPECT_EQ(p->prev, o.prev);
    EXPECT_EQ(p->mac, o.mac);
    EXPECT_EQ(p->body(), o.body());
    // Strictness: version, trailing data, first=0, uppercase hex.
    std::string s = line.substr(0, line.size() - 1);
    EXPECT_FALSE(parse_open_line(s + " x=1").has_value());
    EXPECT_FALSE(parse_open_line(s + " ").has_value());
    std::string v2 = s;
    v2.replace(v2.find("v=1"), 3, "v=2");
    EXPECT_FALSE(parse_open_line(v2).has_value());
    std::string first0 = s;
    first0.replace(first0.find("first=701"), 9, "first=0");
    EXPECT_FALSE(parse_open_line(first0).has_value());
    std::string upper = s;
    upper.replace(upper.find("chain=ab"), 8, "chain=AB");
    EXPECT_FALSE(parse_open_line(upper).has_value());
}

TEST(SegmentLines, SealLineRoundTripAndSpans) {
    SealLine s;
    s.chain.fill(0x01);
    s.serial = "150123";
    s.epoch = 3;
    s.records = 100;
    s.first_seq = 301;
    s.last_seq = 400;
    s.time_ms = 1'795'500'000'000;
    s.final_mac.fill(0x33);
    s.digest.fill(0x44);
    s.mac.fill(0x55);
    s.sig.fill(0x66);
    const std::string line = s.line();
    const std::string_view text = std::string_view(line).substr(0, line.size() - 1);
    auto p = parse_seal_line(text);
    ASSERT_TRUE(p.has_value()) << p.error().message;
    EXPECT_EQ(p->mac_body, s.mac_body());
    EXPECT_EQ(p->signed_body, s.signed_body());
    EXPECT_EQ(p->seal.records, 100u);
    EXPECT_EQ(p->seal.first_seq, 301u);
    EXPECT_EQ(p->seal.last_seq, 400u);
    EXPECT_EQ(p->seal.final_mac, s.final_mac);
    EXPECT_EQ(p->seal.digest, s.digest);
    EXPECT_EQ(p->seal.mac, s.mac);
    EXPECT_EQ(p->seal.sig, s.sig);
    EXPECT_FALSE(parse_seal_line(std::string(text) + " extra=1").has_value());
    EXPECT_FALSE(parse_seal_line(std::string(text) + " ").has_value());
    EXPECT_FALSE(parse_seal_line(text.substr(0, text.size() - 2)).has_value());
}

TEST(SegmentLines, SplitRecordLineAndClassify) {
    const std::string mac(64, 'a');
    const std::string line = "12 body mac=" + mac;
    auto v = split_record_line(line);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->seq, 12u);
    EXPECT_EQ(v->body, "12 body");
    for (const std::string& bad :
         std::vector<std::string>{"12 body mac=" + mac.substr(1), "12 body mac=" + std::string(64, 'A'),
                                  "12 body MAC=" + mac, "0 body mac=" + mac, "body mac=" + mac, "12mac=" + mac, ""})
        EXPECT_FALSE(split_record_line(bad).has_value()) << bad;
    EXPECT_EQ(classify_line("1 x"), LineKind::record);
    EXPECT_EQ(classify_line("0 x"), LineKind::unknown);
    EXPECT_EQ(classify_line("@open v=1"), LineKind::open);
    EXPECT_EQ(classify_line("@seal v=1"), LineKind::seal);
    EXPECT_EQ(classify_line("@sealv=1"), LineKind::unknown);
    EXPECT_EQ(classify_line(""), LineKind::unknown);
}

TEST(SegmentLines, FileNames) {
    EXPECT_EQ(segment_file_name("150123", 42), "hsm_150123_0000002a.log");
    EXPECT_EQ(segment_file_name("a.b_c-d", 0), "hsm_a_b_c-d_00000000.log");
    EXPECT_EQ(segment_file_name("x", 0x1'0000'0000ULL), "hsm_x_100000000.log");
}

// The roles and classes of FORMAT.md 2.5, exactly: each accepted, near misses refused.
TEST(RecordSyntax, RolesAndClassesExactly) {
    for (const char* r : {"SO", "AU", "PSO", "CO", "LCO", "CU", "BO", "-"}) EXPECT_TRUE(valid_role(r)) << r;
    for (const char* r : {"", "so", "S", "SO ", "PS", "PSOO", "--", "LC", "XX", "AUD"})
        EXPECT_FALSE(valid_role(r)) << r;
    for (const char* c :
         {"failure", "success", "access", "manage", "keymanage", "usage", "first", "external", "logmanage"})
        EXPECT_TRUE(valid_event_class(c)) << c;
    for (const char* c : {"", "Usage", "usagE", "firsts", "manag", "keymanag", "logmanagE", "externals", "all"})
        EXPECT_FALSE(valid_event_class(c)) << c;
}

}  // namespace
}  // namespace hsmaudit::mac
