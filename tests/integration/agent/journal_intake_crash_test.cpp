// A SIGKILL of the journal intake between the spool's writes and its first cursor save: after the restart the
// entries are read again (repeats), none is lost, and the second run resumes at a cursor. Its own executable
// with the label `crash` (a forked child that starts threads: not for the tsan preset).
#include <signal.h>
#include <sys/wait.h>

#include "journal_intake_fixture.h"

namespace hsmaudit::agent {
namespace {

TEST_F(JournalIntakeTest, AKillBetweenTheSpoolAndTheCursorSaveRepeatsEntriesNeverLosesOne) {
    constexpr int kEntries = 20'000;
    write("m", 0, kEntries);
    const auto c = config("60s");  // no timed save: only a caught-up source saves its cursor
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto in = SyslogIntake::start(c, (dir_ / "state").string());
        if (!in) ::_exit(3);
        for (;;) ::pause();  // killed by the parent
    }
    // Killed as soon as the first lines are in the spool: the first cursor save waits until the source has
    // caught up (or a minute), so the kill falls between the spool's writes and that save.
    const bool some =
        wait_for([&] { return spool_text().find("\"raw\":\"m") != std::string::npos; }, std::chrono::seconds(60));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(some);
    const auto before = messages().size();
    const bool cursor_saved = fs::exists(JournalIntake::cursor_path((dir_ / "state").string()));

    auto in = start(config());
    ASSERT_NE(in, nullptr);
    // Entries arrive in order; the spool's payload keeps a journal MESSAGE as `raw` (docs/FORMAT.md
    // section 11), a JSON string for this text.
    const std::string last = "\"raw\":\"m" + std::to_string(kEntries - 1) + "\"";
    ASSERT_TRUE(wait_for([&] { return spool_text().find(last) != std::string::npos; }, std::chrono::seconds(60)));
    std::map<std::string, int> seen;
    for (const auto& m : messages()) ++seen[m];
    in->stop();
    const auto after = messages();
    std::size_t repeated = after.size() - static_cast<std::size_t>(kEntries);
    std::cout << "[ figures  ] spooled before the kill: " << before << ", cursor saved then: " << cursor_saved
              << ", repeated after the restart: " << repeated << "\n";
    // Every entry once at least; a repeat only of what the killed run spooled after its last saved cursor.
    EXPECT_LE(repeated, before);
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(kEntries));
    for (int i = 0; i < kEntries; ++i) ASSERT_EQ(seen.count("m" + std::to_string(i)), 1U) << i;
    EXPECT_FALSE(cursor_saved) << "the kill came after the first cursor save: nothing was left to repeat";
    EXPECT_GT(repeated, 0U) << "the killed run's spooled entries are read again";
    // The second run's entries are one run in journal order: it resumed at a cursor, not anywhere.
    for (std::size_t k = before + 1; k < after.size(); ++k)
        ASSERT_EQ(std::stoi(after[k].substr(1)), std::stoi(after[k - 1].substr(1)) + 1) << k;
}

}  // namespace
}  // namespace hsmaudit::agent
