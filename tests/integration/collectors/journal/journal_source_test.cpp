// JournalSource against real journal files (systemd-journal-remote writes them; sd-journal reads them):
// entries mapped, followed as they are appended, resumed from the saved cursor after a stop with no loss
// and no duplicate, after a failed cursor save (a crash between the sink's commit and the save) with
// duplicates and no loss, a damaged cursor file read again from the head with an alert, and vacuumed
// files alerted as a possible gap.
#include "collectors/journal/journal_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "collectors/journal/cursor_file.h"
#include "collectors/journal/entry_mapping.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/journal_files.h"

namespace hsmaudit::collectors::journal {
namespace {

namespace fs = std::filesystem;
namespace sl = collectors::syslog;
using testing::append_journal;
using testing::journal_entry;
using testing::JournalFields;

constexpr std::uint64_t kT0 = 1'700'000'000'000'000ULL;

/// Takes what is offered; can refuse the next N offers or fail commits.
class FakeSink final : public JournalSink {
public:
    bool offer(const sl::SyslogMessage& m) override {
        std::lock_guard lock(mutex_);
        if (refuse_ > 0) {
            --refuse_;
            ++refused_;
            return false;
        }
        taken_.push_back(m);
        return true;
    }
    Status commit() override {
        std::lock_guard lock(mutex_);
        ++commits_;
        return {};
    }
    std::vector<std::string> messages() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& m : taken_) out.push_back(m.msg);
        return out;
    }
    std::vector<sl::SyslogMessage> taken() const {
        std::lock_guard lock(mutex_);
        return taken_;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return taken_.size();
    }
    void refuse(int n) {
        std::lock_guard lock(mutex_);
        refuse_ = n;
    }
    int refused() const {
        std::lock_guard lock(mutex_);
        return refused_;
    }
    int commits() const {
        std::lock_guard lock(mutex_);
        return commits_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<sl::SyslogMessage> taken_;
    int commits_ = 0;
    int refuse_ = 0;
    int refused_ = 0;
};

class Alerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override {
        std::lock_guard lock(mutex_);
        kinds_.push_back(a.kind);
        messages_.push_back(a.message);
    }
    std::vector<std::string> kinds() const {
        std::lock_guard lock(mutex_);
        return kinds_;
    }
    std::size_t count(const std::string& kind) const {
        std::lock_guard lock(mutex_);
        return static_cast<std::size_t>(std::count(kinds_.begin(), kinds_.end(), kind));
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> kinds_;
    std::vector<std::string> messages_;
};

class JournalSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (testing::journal_remote_binary().empty())
            GTEST_SKIP() << "systemd-journal-remote is not installed (scripts/setup installs it)";
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-journal-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "journal");
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    JournalOptions options() const {
        JournalOptions o;
        o.directory = (dir_ / "journal").string();
        o.cursor_file = (dir_ / "journal-cursor").string();
        o.cursor_sync = std::chrono::milliseconds(50);
        o.wait_interval = std::chrono::milliseconds(100);
        o.alerts = const_cast<Alerts*>(&alerts_);
        return o;
    }
    std::unique_ptr<JournalSource> start(JournalOptions o, FakeSink& sink) {
        auto s = JournalSource::start(std::move(o), sink, probe_);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().describe());
        return s ? std::move(*s) : nullptr;
    }
    /// Appends entries "<prefix>0".."<prefix>n-1" to `file`, the i-th at kT0 + offset + i seconds.
    void write(const std::string& file, const std::string& prefix, int n, std::uint64_t offset = 0,
               const std::string& unit = "hsm.service") const {
        std::vector<JournalFields> entries;
        entries.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
            entries.push_back(journal_entry(prefix + std::to_string(i),
                                            kT0 + offset + static_cast<std::uint64_t>(i) * 1'000'000, unit));
        ASSERT_EQ(append_journal(dir_ / "journal" / file, entries), 0);
    }
    static bool wait_for(const std::function<bool()>& condition) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (!condition() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return condition();
    }
    static std::vector<std::string> names(const std::string& prefix, int from, int to) {
        std::vector<std::string> out;
        for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
        return out;
    }

    static inline int counter_ = 0;
    fs::path dir_;
    Probe probe_;
    Alerts alerts_;
};

TEST_F(JournalSourceTest, EntriesOfTheSelectedUnitsAreMappedInOrder) {
    std::vector<JournalFields> entries;
    auto first = journal_entry("first line\nsecond line", kT0 + 123'456, "hsm.service", 3);
    first.emplace_back("SYSLOG_IDENTIFIER", "hsmd");
    first.emplace_back("_PID", "4242");
    first.emplace_back("SYSLOG_FACILITY", "4");
    first.emplace_back("MESSAGE_ID", "8d45620c1a4348dbb17410da57c60c66");
    entries.push_back(first);
    entries.push_back(journal_entry("other unit", kT0 + 2'000'000, "cron.service"));
    std::string binary("bin\x00\xff\x01 end", 10);
    entries.push_back(journal_entry(binary, kT0 + 3'000'000, "hsm.service", 6));
    entries.push_back(journal_entry("debug noise", kT0 + 4'000'000, "hsm.service", 7));
    ASSERT_EQ(append_journal(dir_ / "journal" / "a.journal", entries), 0);

    FakeSink sink;
    auto o = options();
    o.units = {"hsm.service"};
    o.max_priority = 6;  // info: the debug entry is skipped
    auto s = start(o, sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() >= 2 && probe_.skipped.load() >= 1; })) << sink.size();
    s->stop();
    const auto taken = sink.taken();
    ASSERT_EQ(taken.size(), 2U);
    const auto& m = taken[0];
    EXPECT_EQ(m.transport, sl::Transport::journal);
    EXPECT_EQ(m.peer, "journal:" + (dir_ / "journal").string());
    EXPECT_EQ(m.msg, "first line\nsecond line");
    EXPECT_EQ(m.severity, 3);
    EXPECT_EQ(m.facility, 4);
    EXPECT_EQ(m.app_name, "hsmd");
    EXPECT_EQ(m.procid, "4242");
    EXPECT_EQ(m.hostname, "luna1");
    EXPECT_EQ(m.timestamp_text, "2023-11-14T22:13:20.123456Z");
    ASSERT_EQ(m.structured_data.size(), 1U);
    EXPECT_EQ(m.structured_data[0].id, kSdId);
    bool unit = false;
    bool msgid = false;
    for (const auto& p : m.structured_data[0].params) {
        unit = unit || (p.name == "_SYSTEMD_UNIT" && p.value == "hsm.service");
        msgid = msgid || (p.name == "MESSAGE_ID" && p.value == "8d45620c1a4348dbb17410da57c60c66");
    }
    EXPECT_TRUE(unit);
    EXPECT_TRUE(msgid);
    EXPECT_EQ(taken[1].msg, std::string("bin\x00\xFF\x01 end", 10)) << "binary bytes kept exactly";
    EXPECT_EQ(taken[1].raw, taken[1].msg);
    EXPECT_EQ(probe_.received.load(), 2U);
    EXPECT_EQ(probe_.escaped.load(), 2U) << "the multi-line and the binary message";
    EXPECT_TRUE(alerts_.kinds().empty());
}

TEST_F(JournalSourceTest, AppendedEntriesAreFollowedAndARestartResumesWithNoLossNoDuplicate) {
    write("a.journal", "m", 5);
    FakeSink sink;
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 5; }));
    write("a.journal", "m", 5, 10'000'000);  // appended to the file being followed
    write("b.journal", "n", 3, 20'000'000);  // a new file in the directory
    ASSERT_TRUE(wait_for([&] { return sink.size() == 13; })) << sink.size();
    s->stop();
    const std::string saved = s->saved_cursor();
    EXPECT_FALSE(saved.empty());
    EXPECT_EQ(**read_cursor_file(options().cursor_file), saved);

    // Stopped: more entries are written; the next start reads exactly those.
    write("b.journal", "n", 3, 30'000'000);
    FakeSink again;
    auto s2 = start(options(), again);
    ASSERT_TRUE(s2);
    ASSERT_TRUE(wait_for([&] { return again.size() >= 3; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a duplicate would arrive meanwhile
    s2->stop();
    EXPECT_EQ(again.messages(), names("n", 0, 3));
    EXPECT_TRUE(alerts_.kinds().empty());
}

TEST_F(JournalSourceTest, ARefusingSinkStallsTheSourceWithoutLosingOrReordering) {
    write("a.journal", "m", 20);
    FakeSink sink;
    sink.refuse(7);
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 20; })) << sink.size();
    s->stop();
    EXPECT_EQ(sink.messages(), names("m", 0, 20));
    EXPECT_EQ(probe_.refused.load(), 7U);
    EXPECT_EQ(sink.refused(), 7);
    EXPECT_GE(sink.commits(), 1) << "the cursor is saved only after a commit";
}

TEST_F(JournalSourceTest, ACursorNeverSavedAfterTheCommitMeansDuplicatesNeverLoss) {
    write("a.journal", "m", 4);
    {
        FakeSink sink;
        auto s = start(options(), sink);
        ASSERT_TRUE(s);
        ASSERT_TRUE(wait_for([&] { return sink.size() == 4; }));
        s->stop();  // cursor after m3
    }
    write("a.journal", "m", 6, 10'000'000);
    // The sink commits, then every cursor save fails: as a crash between the spool's write and the save.
    testing::FaultyFileSystem faulty;
    faulty.set_full(true);
    {
        FakeSink sink;
        auto o = options();
        o.fs = &faulty;
        auto s = start(o, sink);
        ASSERT_TRUE(s);
        ASSERT_TRUE(wait_for([&] { return sink.size() == 6 && probe_.cursor_save_failures.load() >= 1; }));
        s->stop();
        EXPECT_EQ(sink.messages(), names("m", 0, 6));
    }
    EXPECT_EQ(alerts_.count("journal.cursor_save_failed"), 1U) << "once per failing spell";
    FakeSink sink;
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 6; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    s->stop();
    EXPECT_EQ(sink.messages(), names("m", 0, 6)) << "the six read again, nothing before them, nothing lost";
}

TEST_F(JournalSourceTest, ADamagedCursorFileIsAlertedAndTheSelectionReadAgainFromTheHead) {
    write("a.journal", "m", 3);
    {
        FakeSink sink;
        auto s = start(options(), sink);
        ASSERT_TRUE(s);
        ASSERT_TRUE(wait_for([&] { return sink.size() == 3; }));
        s->stop();
    }
    {
        std::fstream f(options().cursor_file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(30);
        f.put('#');  // one byte of the saved cursor damaged
    }
    FakeSink sink;
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 3; }));
    s->stop();
    EXPECT_EQ(sink.messages(), names("m", 0, 3)) << "fail-safe: duplicates, not a skip to the tail";
    EXPECT_EQ(alerts_.count("journal.cursor_damaged"), 1U);
    EXPECT_EQ(probe_.cursor_damaged.load(), 1U);
    // The next stop wrote a good cursor again.
    EXPECT_TRUE(read_cursor_file(options().cursor_file).has_value());
}

TEST_F(JournalSourceTest, AVacuumedCursorIsAlertedAsAPossibleGapAndWhatRemainsIsRead) {
    write("a.journal", "old", 3);
    {
        FakeSink sink;
        auto s = start(options(), sink);
        ASSERT_TRUE(s);
        ASSERT_TRUE(wait_for([&] { return sink.size() == 3; }));
        s->stop();  // the cursor is in a.journal
    }
    write("b.journal", "new", 2, 10'000'000);
    fs::remove(dir_ / "journal" / "a.journal");  // vacuumed while the agent was down
    FakeSink sink;
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 2; }));
    EXPECT_EQ(alerts_.count("journal.gap"), 1U);
    EXPECT_EQ(probe_.gaps.load(), 1U);

    // Files removed while following, the last entry read still there: no gap alert, following goes on.
    write("c.journal", "more", 1, 20'000'000);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 3; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    fs::remove(dir_ / "journal" / "b.journal");  // not the file of the last entry read (c)
    write("c.journal", "more", 1, 30'000'000);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 4; })) << sink.size();
    s->stop();
    EXPECT_EQ(alerts_.count("journal.gap"), 1U) << "no false gap";
    EXPECT_EQ(sink.messages(), (std::vector<std::string>{"new0", "new1", "more0", "more0"}));
}

TEST_F(JournalSourceTest, TheFileOfTheLastEntryReadVacuumedWhileFollowingIsAGap) {
    write("a.journal", "old", 2);
    FakeSink sink;
    auto s = start(options(), sink);
    ASSERT_TRUE(s);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 2; }));
    fs::remove(dir_ / "journal" / "a.journal");  // the last entry read goes with it
    write("b.journal", "new", 2, 10'000'000);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 4; })) << sink.size();
    s->stop();
    EXPECT_EQ(sink.messages(), (std::vector<std::string>{"old0", "old1", "new0", "new1"}));
    EXPECT_EQ(alerts_.count("journal.gap"), 1U);
}

TEST_F(JournalSourceTest, TailStartsAfterWhatTheJournalHoldsOnTheFirstStartOnly) {
    write("a.journal", "old", 3);
    FakeSink sink;
    auto o = options();
    o.start = StartAt::tail;
    auto s = start(o, sink);
    ASSERT_TRUE(s);
    write("a.journal", "new", 2, 10'000'000);
    ASSERT_TRUE(wait_for([&] { return sink.size() == 2; }));
    s->stop();
    EXPECT_EQ(sink.messages(), names("new", 0, 2));
}

TEST_F(JournalSourceTest, BadOptionsAndAMissingDirectoryAreErrors) {
    FakeSink sink;
    auto o = options();
    o.matches = {"lowercase=x"};
    EXPECT_FALSE(JournalSource::start(o, sink, probe_).has_value());
    o.matches = {"NO_EQUALS"};
    EXPECT_FALSE(JournalSource::start(o, sink, probe_).has_value());
    o = options();
    o.directory = (dir_ / "absent").string();
    auto r = JournalSource::start(o, sink, probe_);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().describe().find("absent"), std::string::npos) << r.error().describe();
}

}  // namespace
}  // namespace hsmaudit::collectors::journal
