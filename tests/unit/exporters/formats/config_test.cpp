// The format keys: defaults, every option read, and bad values refused with the key named.
#include <gtest/gtest.h>

#include <string>

#include "base/config/config.h"
#include "exporters/formats/formatter.h"
#include "tests/unit/exporters/formats/test_events.h"

namespace hsmaudit::exporters::formats {
namespace {

Result<base::Config> parse(const std::string& yaml) {
    return base::Config::parse(yaml, "test.yaml", format_config_keys());
}

/// The error make_formatter (or the config parser before it) gives for `key: value` on destination siem.
std::string error_for(const std::string& key, const std::string& value) {
    auto c = parse("exporters:\n  siem:\n    " + key + ": \"" + value + "\"\n");
    if (!c) return c.error().message;
    auto f = make_formatter(*c, "siem");
    if (!f) return f.error().message;
    return "";
}

TEST(FormatKeys, EveryKeyIsAnInstanceKeyWithTypeDefaultAndDescription) {
    const auto keys = format_config_keys();
    ASSERT_EQ(keys.size(), 10u);
    for (const auto& k : keys) {
        EXPECT_EQ(k.key.rfind("exporters.*.", 0), 0u) << k.key;
        EXPECT_FALSE(k.description.empty()) << k.key;
    }
    // Every default is valid: an instance that sets nothing gets a working RFC 5424 formatter.
    auto c = parse("exporters:\n  siem:\n    format: rfc5424\n");
    ASSERT_TRUE(c.has_value()) << c.error().message;
    auto o = read_format_options(*c, "siem");
    ASSERT_TRUE(o.has_value()) << o.error().message;
    EXPECT_EQ(o->kind, FormatKind::rfc5424);
    EXPECT_EQ(o->pen, 32473u);
    EXPECT_FALSE(o->bom);
    EXPECT_EQ(o->app_name, "hsmaudit");
    EXPECT_EQ(o->facility, 19);
    EXPECT_EQ(o->leef_delimiter, '^');
    EXPECT_EQ(o->hec_sourcetype, "hsmaudit:json");
    EXPECT_EQ(o->hec_index, "");
    EXPECT_EQ(o->max_message_bytes, 8192u);
}

TEST(FormatKeys, EveryOptionIsRead) {
    auto c = parse(
        "exporters:\n"
        "  qradar:\n    format: leef\n    leef_delimiter: tab\n    max_message_bytes: 4KiB\n"
        "  splunk:\n    format: hec\n    hec_sourcetype: luna:audit\n    hec_index: hsm-audit\n"
        "  arcsight:\n    format: cef\n"
        "  rsyslog:\n    pen: 99999\n    bom: true\n    app_name: luna-audit\n    facility: logaudit\n");
    ASSERT_TRUE(c.has_value()) << c.error().message;
    auto q = read_format_options(*c, "qradar");
    ASSERT_TRUE(q.has_value()) << q.error().message;
    EXPECT_EQ(q->kind, FormatKind::leef);
    EXPECT_EQ(q->leef_delimiter, '\t');
    EXPECT_EQ(q->max_message_bytes, 4096u);
    auto s = read_format_options(*c, "splunk");
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->kind, FormatKind::hec);
    EXPECT_EQ(s->hec_sourcetype, "luna:audit");
    EXPECT_EQ(s->hec_index, "hsm-audit");
    auto r = read_format_options(*c, "rsyslog");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->pen, 99999u);
    EXPECT_TRUE(r->bom);
    EXPECT_EQ(r->app_name, "luna-audit");
    EXPECT_EQ(r->facility, 13);
    auto f = make_formatter(*c, "arcsight");
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ((*f)->name(), "cef");
}

TEST(FormatKeys, BadValuesAreErrorsNamingTheKey) {
    const std::pair<std::string, std::string> bad[] = {
        {"format", "xml"},
        {"pen", "0"},
        {"pen", "4294967296"},
        {"pen", "abc"},
        {"bom", "yes please"},
        {"app_name", ""},
        {"app_name", "two words"},
        {"app_name", std::string(49, 'a')},
        {"app_name", "caf\xC3\xA9"},
        {"facility", "local8"},
        {"leef_delimiter", ""},
        {"leef_delimiter", "ab"},
        {"leef_delimiter", "="},
        {"leef_delimiter", "|"},
        {"leef_delimiter", "a"},
        {"leef_delimiter", " "},
        {"hec_sourcetype", ""},
        {"hec_sourcetype", "has space"},
        {"hec_index", "Main"},
        {"hec_index", "_internal"},
        {"hec_index", "a/b"},
        {"max_message_bytes", "1000"},
        {"max_message_bytes", "1GiB"},
        {"max_message_bytes", "lots"},
    };
    for (const auto& [key, value] : bad) {
        const std::string err = error_for(key, value);
        EXPECT_NE(err.find("exporters.siem." + key), std::string::npos)
            << key << "=" << value << " gave: '" << err << "'";
        EXPECT_NE(err.find("test.yaml"), std::string::npos) << err;
    }
    // and good ones pass
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"leef_delimiter", "^"},
                                     {"leef_delimiter", "tab"},
                                     {"leef_delimiter", "~"},
                                     {"hec_index", "main"},
                                     {"facility", "local7"},
                                     {"max_message_bytes", "1KiB"}}) {
        EXPECT_EQ(error_for(key, value), "") << key << "=" << value;
    }
}

}  // namespace
}  // namespace hsmaudit::exporters::formats
