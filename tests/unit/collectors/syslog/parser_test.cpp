#include "collectors/syslog/parser.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/unit/collectors/syslog/test_sink.h"

namespace hsmaudit::collectors::syslog {
namespace {

using namespace std::chrono;

sys_time<microseconds> utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int us = 0) {
    return sys_days{year{y} / mo / d} + hours{h} + minutes{mi} + seconds{s} + microseconds{us};
}

TEST(Rfc5424, ParsesTheRfcExampleWithStructuredDataAndBom) {
    const auto m = parse_message(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][b@1 x=\"a\\\"b\\]c\\\\d\\e\"] "
        "\xEF\xBB\xBF"
        "An application event log entry");
    EXPECT_FALSE(m.malformed) << m.malformed_reason;
    EXPECT_EQ(m.format, SyslogFormat::rfc5424);
    EXPECT_EQ(m.facility, 20);
    EXPECT_EQ(m.severity, 5);
    EXPECT_EQ(m.timestamp, utc(2003, 10, 11, 22, 14, 15, 3000));
    EXPECT_EQ(m.hostname, "mymachine.example.com");
    EXPECT_EQ(m.app_name, "evntslog");
    EXPECT_EQ(m.procid, "");
    EXPECT_EQ(m.msgid, "ID47");
    ASSERT_EQ(m.structured_data.size(), 2u);
    EXPECT_EQ(m.structured_data[0].id, "exampleSDID@32473");
    ASSERT_EQ(m.structured_data[0].params.size(), 3u);
    EXPECT_EQ(m.structured_data[0].params[1].name, "eventSource");
    EXPECT_EQ(m.structured_data[0].params[1].value, "Application");
    EXPECT_EQ(m.structured_data[1].params[0].value, "a\"b]c\\d\\e");
    EXPECT_EQ(m.msg, "An application event log entry");
    EXPECT_TRUE(m.timestamp_has_zone);
}

TEST(Rfc5424, OffsetsBecomeUtcAndNilValuesStayEmpty) {
    const auto m = parse_message("<13>1 2003-08-24T05:14:15.000003-07:00 - - - - -");
    EXPECT_FALSE(m.malformed) << m.malformed_reason;
    EXPECT_EQ(m.timestamp, utc(2003, 8, 24, 12, 14, 15, 3));
    EXPECT_TRUE(m.hostname.empty());
    EXPECT_TRUE(m.msg.empty());
    const auto nil = parse_message("<13>1 - host app 1 - - hello\n");
    EXPECT_FALSE(nil.malformed);
    EXPECT_FALSE(nil.timestamp);
    EXPECT_EQ(nil.msg, "hello");
    EXPECT_EQ(nil.raw, "<13>1 - host app 1 - - hello\n") << "raw is the received bytes, its line end too";
}

TEST(Rfc5424, MalformedHeadersSayWhatIsWrong) {
    const struct {
        const char* in;
        const char* reason;
    } cases[] = {
        {"<13>1 2012-02-30T00:00:00Z h a p m -", "TIMESTAMP"},
        {"<13>1 2012-02-01t00:00:00z h a p m -", "TIMESTAMP"},
        {"<13>1 2012-02-01T00:00:00 h a p m -", "TIMESTAMP"},
        {"<13>1 2026-11-24T06:29:00Z host", "header ends before APP-NAME"},
        {"<13>1 2026-11-24T06:29:00Z host app 1 ID", "header ends before STRUCTURED-DATA"},
        {"<13>1 - h a p m [id x=\"1\"", "not closed by ']'"},
        {"<13>1 - h a p m [id x=\"1]", "not closed by '\"'"},
        {"<13>1 - h a p m [id x=1]", "lacks =\"value\""},
        {"<13>1 - h a p m oops", "neither '-' nor '['"},
        {"<13>1 - h a p m -oops", "no space between"},
        {"<13>1 - h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa p m -", "APP-NAME"},
        {"<13>2 - h a p m -", "VERSION 2"},
    };
    for (const auto& c : cases) {
        const auto m = parse_message(c.in);
        EXPECT_TRUE(m.malformed) << c.in;
        EXPECT_NE(m.malformed_reason.find(c.reason), std::string::npos) << c.in << " -> " << m.malformed_reason;
        EXPECT_EQ(m.raw, c.in);
    }
}

TEST(Pri, BadPrisAreMalformedAndKeptRaw) {
    const struct {
        const char* in;
        const char* reason;
    } cases[] = {
        {"<192>1 - - - - - -", "out of range 0..191"},
        {"<999>x", "out of range"},
        {"<1234>x", "1 to 3 digits"},
        {"<>x", "1 to 3 digits"},
        {"<abc>x", "1 to 3 digits"},
        {"<13", "1 to 3 digits"},
        {"<013>1 - - - - - -", "leading zero"},
        {"<-1>x", "1 to 3 digits"},
    };
    for (const auto& c : cases) {
        const auto m = parse_message(c.in);
        EXPECT_TRUE(m.malformed) << c.in;
        EXPECT_NE(m.malformed_reason.find(c.reason), std::string::npos) << c.in << " -> " << m.malformed_reason;
        EXPECT_EQ(m.raw, c.in);
        EXPECT_EQ(m.facility, -1);
    }
    const auto zero = parse_message("<0>1 - - - - - -");
    EXPECT_FALSE(zero.malformed) << zero.malformed_reason;
    EXPECT_EQ(zero.facility, 0);
    const auto max = parse_message("<191>1 - - - - - -");
    EXPECT_FALSE(max.malformed);
    EXPECT_EQ(max.facility, 23);
    EXPECT_EQ(max.severity, 7);
}

TEST(Rfc3164, ParsesClassicLinesAndVariants) {
    const auto m = parse_message("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
    EXPECT_FALSE(m.malformed);
    EXPECT_EQ(m.format, SyslogFormat::rfc3164);
    EXPECT_EQ(m.facility, 4);
    EXPECT_EQ(m.severity, 2);
    EXPECT_EQ(m.timestamp_text, "Oct 11 22:14:15");
    EXPECT_FALSE(m.timestamp);  // no year in RFC 3164
    EXPECT_EQ(m.hostname, "mymachine");
    EXPECT_EQ(m.app_name, "su");
    EXPECT_EQ(m.msg, "'su root' failed for lonvick on /dev/pts/8");

    const auto pid = parse_message("<13>Feb  5 01:02:03 host sshd[4242]: Accepted publickey");
    EXPECT_EQ(pid.timestamp_text, "Feb  5 01:02:03");
    EXPECT_EQ(pid.app_name, "sshd");
    EXPECT_EQ(pid.procid, "4242");
    EXPECT_EQ(pid.msg, "Accepted publickey");

    const auto fwd = parse_message("<174>2026-11-24T06:29:00.5+01:00 myLuna NTLS[1234]: info : 0 : hi");
    EXPECT_EQ(fwd.timestamp, utc(2026, 11, 24, 5, 29, 0, 500000));
    EXPECT_EQ(fwd.app_name, "NTLS");

    // No timestamp: RFC 3164 4.3.2 makes the whole the MSG (not malformed).
    const auto bare = parse_message("<13>just some text");
    EXPECT_FALSE(bare.malformed);
    EXPECT_EQ(bare.msg, "just some text");
}

TEST(ApplianceLines, ParsesTheFactsSamples) {
    const auto ntls =
        parse_message("2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: info : 0 : Starting up NTLS........");
    EXPECT_FALSE(ntls.malformed) << ntls.malformed_reason;
    EXPECT_EQ(ntls.format, SyslogFormat::luna_file);
    EXPECT_EQ(ntls.timestamp, utc(2012, 2, 29, 12, 5, 1));
    EXPECT_EQ(ntls.hostname, "myLuna");
    EXPECT_EQ(ntls.facility, 21);
    EXPECT_EQ(ntls.severity, 6);
    EXPECT_EQ(ntls.app_name, "NTLS");
    EXPECT_EQ(ntls.procid, "1234");
    EXPECT_EQ(ntls.msg, "info : 0 : Starting up NTLS........");

    const auto sh = parse_message(
        "2012 Feb 29 12:05:01 myLuna local5 warn lunash [1234]: HSM Admin Login: incorrect password or PED key");
    EXPECT_EQ(sh.severity, 4);
    EXPECT_EQ(sh.app_name, "lunash");
    EXPECT_EQ(sh.msg, "HSM Admin Login: incorrect password or PED key");

    const auto kern = parse_message(
        "2017 Apr 17 11:00:45 local_host kern info kernel: k7pf0: [HSM] ALM2006: HSM decommissioned by FW");
    EXPECT_FALSE(kern.malformed);
    EXPECT_EQ(kern.facility, 0);
    EXPECT_EQ(kern.app_name, "kernel");
    EXPECT_EQ(kern.procid, "");
    EXPECT_EQ(kern.msg, "k7pf0: [HSM] ALM2006: HSM decommissioned by FW");

    // 2013 had no Feb 29: not a timestamp, so no format matches.
    const auto bad = parse_message("2013 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: x");
    EXPECT_TRUE(bad.malformed);
    EXPECT_EQ(bad.raw, "2013 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: x");

    const auto plain = parse_message("Nov 24 06:29:00 myLuna cbs[77]: wrote hsm_123_0000002a.log");
    EXPECT_EQ(plain.format, SyslogFormat::plain_file);
    EXPECT_EQ(plain.app_name, "cbs");
    const auto file5424 = parse_message("2026-11-24T06:29:00.123456+00:00 myLuna NTLS[1234]: up");
    EXPECT_EQ(file5424.format, SyslogFormat::plain_file);
    EXPECT_EQ(file5424.timestamp, utc(2026, 11, 24, 6, 29, 0, 123456));
    EXPECT_TRUE(parse_message("hello world").malformed);
    EXPECT_TRUE(parse_message("").malformed);
}

TEST(SafeText, InvalidUtf8AndControlsAreEscapedReversibly) {
    const std::string in =
        std::string("ok \xC3\xA9 \xE2\x82\xAC bad:\xFF\xC0\xAF\xED\xA0\x80 nul:") + '\0' + "\x1b[31m back\\slash\ttab";
    bool escaped = false;
    const std::string out = to_safe_text(in, &escaped);
    EXPECT_TRUE(escaped);
    EXPECT_NE(out.find("\xC3\xA9"), std::string::npos);  // valid UTF-8 kept
    EXPECT_NE(out.find("\\xFF\\xC0\\xAF\\xED\\xA0\\x80"), std::string::npos) << out;
    EXPECT_NE(out.find("\\x00"), std::string::npos);
    EXPECT_NE(out.find("\\x1B[31m"), std::string::npos);
    EXPECT_NE(out.find("back\\\\slash\ttab"), std::string::npos);
    EXPECT_EQ(testing::unescape(out), in);
    EXPECT_EQ(to_safe_text("plain \\ text", &escaped), "plain \\ text");
    EXPECT_FALSE(escaped);
}

TEST(Faithful, FieldsKeepTheReceivedBytesExactly) {
    // Invalid UTF-8, control characters, NUL, CR and LF inside, backslashes and a literal "\x0A":
    // nothing is escaped by the collector (each format escapes once, when it renders).
    const std::string msg = std::string("caf\xC3\xA9 \xFE\xFF C:\\dir\\ \\x0A line1\r\nline2\n") + '\0' + "end";
    const std::string in = "<13>1 2026-11-24T06:29:00Z h a p m [x@1 k=\"a\\\"b\nc\\x\"] " + msg;
    const auto m = parse_message(in);
    EXPECT_FALSE(m.malformed) << m.malformed_reason;
    EXPECT_EQ(m.raw, in);
    EXPECT_EQ(m.msg, msg);
    ASSERT_EQ(m.structured_data.size(), 1u);
    EXPECT_EQ(m.structured_data[0].params[0].value, "a\"b\nc\\x");
    // One line end at the very end is the sender's terminator: in raw, not in the MSG.
    for (const std::string& end : {std::string("\n"), std::string("\r\n"), std::string(1, '\0')}) {
        const auto t = parse_message("<13>1 - h a p m - two\nlines" + end);
        EXPECT_EQ(t.msg, "two\nlines");
        EXPECT_EQ(t.raw, "<13>1 - h a p m - two\nlines" + end);
    }
}

TEST(Faithful, SdElementsAndParamsKeepTheirOrderAndDuplicates) {
    const auto m = parse_message("<13>1 - h a p m [z@1 b=\"1\" a=\"2\" b=\"3\"][a@1 x=\"4\"][z@1 c=\"5\"] m");
    ASSERT_FALSE(m.malformed) << m.malformed_reason;
    ASSERT_EQ(m.structured_data.size(), 3u);
    EXPECT_EQ(m.structured_data[0].id, "z@1");
    EXPECT_EQ(m.structured_data[1].id, "a@1");
    EXPECT_EQ(m.structured_data[2].id, "z@1");
    ASSERT_EQ(m.structured_data[0].params.size(), 3u);
    EXPECT_EQ(m.structured_data[0].params[0].name, "b");
    EXPECT_EQ(m.structured_data[0].params[1].name, "a");
    EXPECT_EQ(m.structured_data[0].params[2].name, "b");
    EXPECT_EQ(m.structured_data[0].params[2].value, "3");
}

TEST(Faithful, OnlyTimestampsWithAZoneAreTheMessagesTime) {
    EXPECT_TRUE(parse_message("<13>1 2026-11-24T06:29:00+02:00 h a p m -").timestamp_has_zone);
    EXPECT_TRUE(parse_message("<13>2026-11-24T06:29:00Z host app: x").timestamp_has_zone);
    EXPECT_TRUE(parse_message("2026-11-24T06:29:00Z myLuna NTLS[1]: up").timestamp_has_zone);
    const auto bsd = parse_message("<13>Nov 24 06:29:00 host app: x");
    EXPECT_FALSE(bsd.timestamp_has_zone);
    EXPECT_FALSE(bsd.timestamp);
    const auto luna = parse_message("2026 Nov 24 06:29:00 myLuna local5 info NTLS [1234]: x");
    EXPECT_TRUE(luna.timestamp.has_value());
    EXPECT_FALSE(luna.timestamp_has_zone) << "the appliance's file time has no zone: not the event time";
    EXPECT_FALSE(parse_message("<13>1 - h a p m -").timestamp_has_zone);
}

TEST(Hostile, RandomBinaryNeverCrashesAndRawRoundTrips) {
    std::mt19937_64 rng(1234);
    for (int i = 0; i < 3000; ++i) {
        std::string in(rng() % 300, '\0');
        for (auto& c : in) c = static_cast<char>(rng());
        if (i % 3 == 0 && !in.empty()) in[0] = '<';
        if (i % 6 == 0 && in.size() > 5) in.replace(1, 4, "13>1");
        const auto m = parse_message(in);
        EXPECT_EQ(m.raw, in);
        // The MSG is a slice of the input, ending where the input ends (less one line end).
        const std::string_view body = without_line_end(in);
        EXPECT_TRUE(body.ends_with(m.msg));
    }
}

TEST(Hostile, OneMebibyteMessageParses) {
    std::string big = "<13>1 - h a p m - ";
    big.append(1 << 20, 'x');
    const auto m = parse_message(big);
    EXPECT_FALSE(m.malformed);
    EXPECT_EQ(m.msg.size(), std::size_t{1} << 20);
    std::string junk(1 << 20, '[');
    EXPECT_TRUE(parse_message("<13>1 - h a p m " + junk).malformed);
}

TEST(Rfc3339, EdgeCases) {
    EXPECT_EQ(parse_rfc3339("1985-04-12T23:20:50.52Z"), utc(1985, 4, 12, 23, 20, 50, 520000));
    EXPECT_EQ(parse_rfc3339("2026-11-24T06:29:00.123456789Z"), utc(2026, 11, 24, 6, 29, 0, 123456));
    EXPECT_EQ(parse_rfc3339("2026-01-01T00:30:00+01:00"), utc(2025, 12, 31, 23, 30, 0));
    EXPECT_FALSE(parse_rfc3339("2026-11-24T06:29:00.Z"));
    EXPECT_FALSE(parse_rfc3339("2026-11-24T24:00:00Z"));
    EXPECT_FALSE(parse_rfc3339("2026-13-01T00:00:00Z"));
    EXPECT_FALSE(parse_rfc3339("2026-11-24T06:29:00+1:00"));
    EXPECT_FALSE(parse_rfc3339("2026-11-24T06:29:00Zjunk"));
    EXPECT_FALSE(parse_rfc3339("2026-11-24T06:29:00.1234567890Z"));
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
