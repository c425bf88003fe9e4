// The journal source inside SyslogIntake (syslog.journal.*): entries of the selected unit reach the syslog
// spool as JSON lines with their fields mapped; a stop and start resumes from the cursor (beside the
// followers' positions) with nothing lost or repeated; a SIGKILL between the spool's writes and the cursor
// save repeats entries, never loses one (journal_intake_crash_test.cpp).
#include "journal_intake_fixture.h"

namespace hsmaudit::agent {
namespace {

TEST_F(JournalIntakeTest, EntriesReachTheSpoolMappedAndARestartResumesFromTheCursor) {
    write("m", 0, 5);
    auto in = start(config());
    ASSERT_NE(in, nullptr);
    ASSERT_NE(in->journal_probe(), nullptr);
    ASSERT_TRUE(wait_for([&] { return messages().size() == 5; })) << messages().size();
    in->stop();
    const auto lines = spooled();
    ASSERT_EQ(lines.size(), 5U);
    const auto& f = lines[0];
    EXPECT_EQ(f.transport, "journal");
    EXPECT_EQ(f.format, "journal");
    EXPECT_EQ(f.msg, "m0");
    EXPECT_EQ(f.severity, 6);
    EXPECT_EQ(f.host, "luna1");
    EXPECT_EQ(f.timestamp, "2023-11-14T22:13:20.000000Z");
    EXPECT_EQ(f.time_us, 1'700'000'000'000'000) << "the entry's own time (UTC)";
    ASSERT_EQ(f.sd.size(), 1U);
    EXPECT_EQ(f.sd[0].first, "journal@32473");
    bool unit = false;
    for (const auto& [name, value] : f.sd[0].second) unit = unit || (name == "_SYSTEMD_UNIT" && value == "hsm.service");
    EXPECT_TRUE(unit);
    EXPECT_TRUE(fs::exists(JournalIntake::cursor_path((dir_ / "state").string())));

    write("m", 5, 8);
    auto again = start(config());
    ASSERT_NE(again, nullptr);
    ASSERT_TRUE(wait_for([&] { return messages().size() >= 8; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a repeat would arrive meanwhile
    again->stop();
    std::vector<std::string> expected;
    expected.reserve(8);
    for (int i = 0; i < 8; ++i) expected.push_back("m" + std::to_string(i));
    EXPECT_EQ(messages(), expected);
}

TEST_F(JournalIntakeTest, TheDocsExampleReadsTheAppliancesUnitsAtInfoAndAbove) {
    // docs/ARCHITECTURE.md, "The journal source", with a directory of journal files instead of the system's.
    std::ifstream doc(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/ARCHITECTURE.md");
    const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
    const auto begin = text.find("<!-- journal-example:begin -->\n```yaml\n");
    const auto end = text.find("```\n<!-- journal-example:end -->");
    ASSERT_NE(begin, std::string::npos);
    ASSERT_NE(end, std::string::npos);
    const auto from = text.find("```yaml\n", begin) + 8;
    const std::string yaml = text.substr(from, end - from) + "    directory: " + (dir_ / "journal").string() + "\n";
    auto c = base::Config::parse(yaml, "ARCHITECTURE.md", all_config_keys(exporters::component_config_keys()));
    ASSERT_TRUE(c.has_value()) << yaml << c.error().describe();

    ASSERT_EQ(append_journal(dir_ / "journal" / "a.journal",
                             {journal_entry("hsm started", kT0, "hsmcore.service", 5),
                              journal_entry("hsm debug", kT0 + 1, "hsmcore.service", 7),
                              journal_entry("cron ran", kT0 + 2, "cron.service", 6),
                              journal_entry("Accepted publickey for admin", kT0 + 3, "ssh.service", 6)}),
              0);
    auto in = start(*c);
    ASSERT_NE(in, nullptr);
    ASSERT_TRUE(wait_for([&] { return messages().size() >= 2 && in->journal_probe()->skipped.load() >= 1; }));
    in->stop();
    EXPECT_EQ(messages(), (std::vector<std::string>{"hsm started", "Accepted publickey for admin"}));
}

}  // namespace
}  // namespace hsmaudit::agent
