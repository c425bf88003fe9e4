// A journal entry mapped to a syslog message: every field, binary and multi-line MESSAGE kept exactly
// (recoverable from the escaped text), missing and malformed fields.
#include "collectors/journal/entry_mapping.h"

#include <gtest/gtest.h>

#include <string>

namespace hsmaudit::collectors::journal {
namespace {

namespace sl = collectors::syslog;

const sl::SdParam* sd_param(const sl::SyslogMessage& m, const std::string& name) {
    for (const auto& e : m.structured_data)
        if (e.id == kSdId)
            for (const auto& p : e.params)
                if (p.name == name) return &p;
    return nullptr;
}

TEST(JournalMapping, EveryMappedFieldGoesWhereItBelongs) {
    RawEntry e;
    e.realtime_usec = 1'700'000'000'123'456ULL;
    e.fields = {{"MESSAGE", "login ok for admin"},
                {"PRIORITY", "5"},
                {"SYSLOG_FACILITY", "10"},
                {"SYSLOG_IDENTIFIER", "sshd"},
                {"_COMM", "sshd-session"},
                {"_PID", "4242"},
                {"_HOSTNAME", "luna1"},
                {"_SYSTEMD_UNIT", "ssh.service"},
                {"MESSAGE_ID", "8d45620c1a4348dbb17410da57c60c66"},
                {"CODE_FILE", "auth.c"}};
    const auto m = map_entry(e, MappingOptions{});
    EXPECT_EQ(m.transport, sl::Transport::journal);
    EXPECT_EQ(m.format, sl::SyslogFormat::journal);
    EXPECT_STREQ(sl::to_string(m.transport), "journal");
    EXPECT_EQ(m.severity, 5);
    EXPECT_EQ(m.facility, 10);
    EXPECT_EQ(m.app_name, "sshd");
    EXPECT_EQ(m.procid, "4242");
    EXPECT_EQ(m.hostname, "luna1");
    EXPECT_EQ(m.msg, "login ok for admin");
    ASSERT_TRUE(m.timestamp.has_value());
    EXPECT_EQ(m.timestamp->time_since_epoch().count(), 1'700'000'000'123'456LL);
    EXPECT_EQ(m.timestamp_text, "2023-11-14T22:13:20.123456Z");
    ASSERT_NE(sd_param(m, "_SYSTEMD_UNIT"), nullptr);
    EXPECT_EQ(sd_param(m, "_SYSTEMD_UNIT")->value, "ssh.service");
    ASSERT_NE(sd_param(m, "MESSAGE_ID"), nullptr);
    EXPECT_EQ(sd_param(m, "MESSAGE_ID")->value, "8d45620c1a4348dbb17410da57c60c66");
    ASSERT_NE(sd_param(m, "CODE_FILE"), nullptr);
    EXPECT_EQ(sd_param(m, "PRIORITY"), nullptr) << "a valid PRIORITY is the severity, not structured data";
    EXPECT_FALSE(m.malformed);
    EXPECT_FALSE(m.oversized);
    EXPECT_TRUE(m.timestamp_has_zone) << "__REALTIME_TIMESTAMP is UTC: the event's own time";
}

TEST(JournalMapping, ABinaryMessageIsKeptExactlyAndFlagged) {
    const std::string bytes("key\x00\x01\xff\xfe tail \\x41 \\ end", 23);
    ASSERT_EQ(bytes.substr(19), " end");
    RawEntry e;
    e.fields = {{"MESSAGE", bytes}};
    MappingNotes notes;
    const auto m = map_entry(e, MappingOptions{}, &notes);
    EXPECT_TRUE(notes.escaped);
    EXPECT_EQ(m.msg, bytes) << "the exact bytes (the spool keeps them, base64 where not UTF-8)";
    EXPECT_EQ(m.raw, bytes);
}

TEST(JournalMapping, AMultiLineMessageStaysOneMessage) {
    const std::string text = "Traceback (most recent call last):\n  File \"x.py\", line 1\r\nValueError: é\n";
    RawEntry e;
    e.fields = {{"MESSAGE", text}, {"PRIORITY", "3"}};
    const auto m = map_entry(e, MappingOptions{});
    EXPECT_EQ(m.msg, text) << "one message, line breaks kept";
    EXPECT_NE(m.msg.find("é"), std::string::npos) << "valid UTF-8 is kept as it is";
    EXPECT_EQ(m.severity, 3);
}

TEST(JournalMapping, MissingFieldsStayUnknownAndCommAndSyslogPidAreFallbacks) {
    RawEntry none;
    const auto empty = map_entry(none, MappingOptions{});
    EXPECT_EQ(empty.severity, -1);
    EXPECT_EQ(empty.facility, -1);
    EXPECT_TRUE(empty.msg.empty());
    EXPECT_TRUE(empty.app_name.empty());
    EXPECT_TRUE(empty.hostname.empty());
    EXPECT_FALSE(empty.timestamp.has_value());
    EXPECT_TRUE(empty.timestamp_text.empty());
    EXPECT_TRUE(empty.structured_data.empty());
    EXPECT_FALSE(empty.malformed);

    RawEntry e;
    e.fields = {{"_COMM", "hsmd"}, {"SYSLOG_PID", "77"}, {"MESSAGE", "m"}};
    const auto m = map_entry(e, MappingOptions{});
    EXPECT_EQ(m.app_name, "hsmd");
    EXPECT_EQ(m.procid, "77");
}

TEST(JournalMapping, APriorityOrFacilityOutOfRangeIsKeptAsStructuredData) {
    for (const char* bad : {"8", "-1", "3 ", "", "03x", "1000", "x"}) {
        RawEntry e;
        e.fields = {{"PRIORITY", bad}, {"SYSLOG_FACILITY", "24"}};
        const auto m = map_entry(e, MappingOptions{});
        EXPECT_EQ(m.severity, -1) << bad;
        EXPECT_EQ(m.facility, -1);
        ASSERT_NE(sd_param(m, "PRIORITY"), nullptr) << bad;
        EXPECT_EQ(sd_param(m, "PRIORITY")->value, bad);
        ASSERT_NE(sd_param(m, "SYSLOG_FACILITY"), nullptr);
    }
    EXPECT_EQ(parse_priority("0"), 0);
    EXPECT_EQ(parse_priority("7"), 7);
    EXPECT_EQ(parse_priority("007"), 7);
}

TEST(JournalMapping, ALongMessageIsCutAtTheMaximumAndFlagged) {
    RawEntry e;
    e.fields = {{"MESSAGE", std::string(1000, 'a') + "TAIL"}};
    MappingOptions o;
    o.max_message_bytes = 1000;
    MappingNotes notes;
    const auto m = map_entry(e, o, &notes);
    EXPECT_TRUE(m.oversized);
    EXPECT_TRUE(notes.oversized);
    EXPECT_EQ(m.msg, std::string(1000, 'a'));
}

TEST(JournalMapping, Rfc3339KeepsMicrosecondsInUtc) {
    EXPECT_EQ(rfc3339_usec(0), "1970-01-01T00:00:00.000000Z");
    EXPECT_EQ(rfc3339_usec(951'782'400'000'001ULL), "2000-02-29T00:00:00.000001Z");
}

}  // namespace
}  // namespace hsmaudit::collectors::journal
