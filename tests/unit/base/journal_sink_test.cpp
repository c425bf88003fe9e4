// base::JournalSink with sd_journal_sendv replaced by a recording function: the priority of each
// level, the fields of a line, the structured fields of log_fields(), the fallback to stderr, and
// the start-up choice (JOURNAL_STREAM against stderr's device and inode). The real journal is the
// systemd test's (it reads `journalctl -p err` in a booted container).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "base/journal_sink.h"
#include "base/logger.h"

namespace hsmaudit::base {
namespace {

/// What the injected send function received: one vector of "NAME=value" per entry.
struct Recorder {
    std::mutex mutex;
    std::vector<std::vector<std::string>> entries;
    int result = 0;
    JournalSink::Send send() {
        return [this](const std::vector<std::string>& fields) {
            std::lock_guard lock(mutex);
            entries.push_back(fields);
            return result;
        };
    }
};

bool has(const std::vector<std::string>& fields, const std::string& f) {
    return std::find(fields.begin(), fields.end(), f) != fields.end();
}

/// Swaps base::logger()'s sinks for the test's, and back.
class LoggerSinks {
public:
    explicit LoggerSinks(spdlog::sink_ptr sink) : saved_(logger().sinks()), level_(logger().level()) {
        logger().sinks() = {std::move(sink)};
        logger().set_level(spdlog::level::trace);
    }
    ~LoggerSinks() {
        logger().sinks() = saved_;
        logger().set_level(level_);
    }
    LoggerSinks(const LoggerSinks&) = delete;
    LoggerSinks& operator=(const LoggerSinks&) = delete;

private:
    std::vector<spdlog::sink_ptr> saved_;
    spdlog::level::level_enum level_;
};

TEST(JournalSink, EachLevelHasItsSyslogPriority) {
    EXPECT_EQ(journal_priority(spdlog::level::trace), 7);
    EXPECT_EQ(journal_priority(spdlog::level::debug), 7);
    EXPECT_EQ(journal_priority(spdlog::level::info), 6);
    EXPECT_EQ(journal_priority(spdlog::level::warn), 4);
    EXPECT_EQ(journal_priority(spdlog::level::err), 3);
    EXPECT_EQ(journal_priority(spdlog::level::critical), 2);
}

TEST(JournalSink, ALineCarriesMessagePriorityIdentifierAndItsFields) {
    Recorder rec;
    LoggerSinks swap(std::make_shared<JournalSink>("hsmauditd", rec.send()));
    logger().error("reload refused, keeping the running configuration: {}", "a.yaml:3: bad");
    log_fields(spdlog::level::warn, {{"HSMAUDIT_ALERT", "exporter.down"}}, "alert {}: {}", "exporter.down",
               "destination 'siem' is down");
    log_fields(spdlog::level::info, {{"HSMAUDIT_DESTINATION", "siem"}}, "exporter {}: up", "siem");
    logger().debug("detail");
    ASSERT_EQ(rec.entries.size(), 4u);
    const auto& e0 = rec.entries[0];
    EXPECT_EQ(e0.at(0), "MESSAGE=reload refused, keeping the running configuration: a.yaml:3: bad");
    EXPECT_TRUE(has(e0, "PRIORITY=3"));
    EXPECT_TRUE(has(e0, "SYSLOG_IDENTIFIER=hsmauditd"));
    EXPECT_EQ(e0.size(), 3u);  // no structured field on a plain line
    EXPECT_TRUE(has(rec.entries[1], "MESSAGE=alert exporter.down: destination 'siem' is down"));
    EXPECT_TRUE(has(rec.entries[1], "PRIORITY=4"));
    EXPECT_TRUE(has(rec.entries[1], "HSMAUDIT_ALERT=exporter.down"));
    EXPECT_TRUE(has(rec.entries[2], "PRIORITY=6"));
    EXPECT_TRUE(has(rec.entries[2], "HSMAUDIT_DESTINATION=siem"));
    EXPECT_TRUE(has(rec.entries[3], "PRIORITY=7"));
}

TEST(JournalSink, TheLoggersLevelStillFilters) {
    Recorder rec;
    LoggerSinks swap(std::make_shared<JournalSink>("hsmauditd", rec.send()));
    logger().set_level(spdlog::level::warn);
    logger().info("not this");
    log_fields(spdlog::level::info, {{"HSMAUDIT_DESTINATION", "siem"}}, "nor this");
    log_fields(spdlog::level::err, {{"HSMAUDIT_DESTINATION", "siem"}}, "this");
    ASSERT_EQ(rec.entries.size(), 1u);
    EXPECT_TRUE(has(rec.entries[0], "MESSAGE=this"));
}

TEST(JournalSink, ALineTheJournalRefusesGoesToStderrWithItsPriorityPrefix) {
    Recorder rec;
    rec.result = -11;  // EAGAIN
    const std::string path = (std::filesystem::path(::testing::TempDir()) / "journal_sink_stderr.txt").string();
    (void)std::fflush(stderr);
    const int saved = ::dup(STDERR_FILENO);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
    {
        LoggerSinks swap(std::make_shared<JournalSink>("hsmauditd", rec.send()));
        logger().error("cannot write {}", "alerts.jsonl");
    }
    (void)std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), "<3>error cannot write alerts.jsonl\n");
    std::filesystem::remove(path);
}

// Without the journal (no JOURNAL_STREAM, or a stderr that is not journald's stream) the text
// lines are exactly what they were: log_fields() prints as log() does, fields left out.
TEST(JournalSink, TextLinesAreUnchangedWithoutTheJournal) {
    std::ostringstream plain;
    std::ostringstream fielded;
    {
        LoggerSinks swap(std::make_shared<spdlog::sinks::ostream_sink_mt>(plain));
        logger().set_pattern("%l %v");
        logger().warn("alert {}: {}", "exporter.down", "destination 'siem' is down");
    }
    {
        LoggerSinks swap(std::make_shared<spdlog::sinks::ostream_sink_mt>(fielded));
        logger().set_pattern("%l %v");
        log_fields(spdlog::level::warn, {{"HSMAUDIT_ALERT", "exporter.down"}}, "alert {}: {}", "exporter.down",
                   "destination 'siem' is down");
    }
    EXPECT_EQ(plain.str(), "warning alert exporter.down: destination 'siem' is down\n");
    EXPECT_EQ(fielded.str(), plain.str());
    logger().set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

TEST(JournalSink, JournalStreamMustNameStderrsDeviceAndInode) {
    struct stat st {};
    ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
    const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    EXPECT_TRUE(stderr_is_journal(mine.c_str()));
    EXPECT_FALSE(stderr_is_journal(nullptr));
    EXPECT_FALSE(stderr_is_journal(""));
    EXPECT_FALSE(stderr_is_journal((std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str()));
    EXPECT_FALSE(stderr_is_journal((mine + "x").c_str()));
    EXPECT_FALSE(stderr_is_journal("12345"));

    // The start-up choice: not journald's stream, so the logger keeps its sinks.
    spdlog::logger l("t", std::make_shared<spdlog::sinks::ostream_sink_mt>(std::cout));
    ::setenv("JOURNAL_STREAM", "1:2", 1);
    EXPECT_FALSE(use_journal_if_connected(l, "hsmauditd"));
    EXPECT_EQ(dynamic_cast<JournalSink*>(l.sinks().at(0).get()), nullptr);
    ::unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(use_journal_if_connected(l, "hsmauditd"));
    // ...and when it is, a JournalSink replaces them, keeping the level.
    ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
    l.set_level(spdlog::level::warn);
    EXPECT_TRUE(use_journal_if_connected(l, "hsmauditd"));
    ::unsetenv("JOURNAL_STREAM");
    ASSERT_EQ(l.sinks().size(), 1u);
    EXPECT_NE(dynamic_cast<JournalSink*>(l.sinks().at(0).get()), nullptr);
    EXPECT_EQ(l.level(), spdlog::level::warn);
}

}  // namespace
}  // namespace hsmaudit::base
