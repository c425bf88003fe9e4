// The fixture of the journal intake tests (journal_intake_test.cpp, journal_intake_crash_test.cpp): journal
// files made by systemd-journal-remote, a SyslogIntake configured with syslog.journal.*, the spool read back.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/daemon/exporter_registry.h"
#include "agent/daemon/journal_intake.h"
#include "agent/daemon/syslog_intake.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/syslog_payload.h"
#include "tests/support/journal_files.h"

namespace hsmaudit::agent {

namespace fs = std::filesystem;
using testing::append_journal;
using testing::journal_entry;
using testing::JournalFields;

constexpr std::uint64_t kT0 = 1'700'000'000'000'000ULL;

class JournalIntakeTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (testing::journal_remote_binary().empty())
            GTEST_SKIP() << "systemd-journal-remote is not installed (scripts/setup installs it)";
        dir_ = fs::temp_directory_path() / ("hsmaudit-jintake-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "journal");
        fs::create_directories(dir_ / "state");
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    base::Config config(const std::string& cursor_sync = "1s") const {
        const std::string yaml =
            "syslog:\n  journal:\n    enabled: true\n    directory: " + (dir_ / "journal").string() +
            "\n    units: hsm.service\n    cursor_sync: " + cursor_sync + "\n";
        auto c = base::Config::parse(yaml, "test.yaml", all_config_keys(exporters::component_config_keys()));
        EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().describe());
        return *c;
    }
    std::unique_ptr<SyslogIntake> start(const base::Config& c) const {
        auto in = SyslogIntake::start(c, (dir_ / "state").string());
        EXPECT_TRUE(in.has_value()) << (in ? "" : in.error().describe());
        return in ? std::move(*in) : nullptr;
    }
    void write(const std::string& prefix, int from, int to, const std::string& file = "a.journal") const {
        std::vector<JournalFields> entries;
        for (int i = from; i < to; ++i) {
            entries.push_back(journal_entry(prefix + std::to_string(i), kT0 + static_cast<std::uint64_t>(i) * 1000));
            if (i % 3 == 0) entries.push_back(journal_entry("other", kT0 + 1, "cron.service"));
        }
        ASSERT_EQ(append_journal(dir_ / "journal" / file, entries), 0);
    }
    /// The spooled messages, in spool order, read through the payload's owner (syslog_payload.h).
    std::vector<SyslogFields> spooled() const {
        std::vector<std::string> files;
        const fs::path spool = dir_ / "state" / "spool";
        if (!fs::exists(spool)) return {};
        for (const auto& e : fs::directory_iterator(spool))
            if (parse_spool_file_name(e.path().filename().string())) files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        std::vector<SyslogFields> out;
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::string line;
            while (std::getline(in, line)) {
                const auto v = parse_spool_line(line);
                if (!v || !v->h) continue;  // the header, or a line being written
                auto fields = decode_syslog_payload(v->payload);
                EXPECT_TRUE(fields.has_value()) << v->payload;
                if (fields) out.push_back(std::move(*fields));
            }
        }
        return out;
    }
    /// The spool's text (cheap: no parsing), for polling.
    std::string spool_text() const {
        std::string all;
        const fs::path spool = dir_ / "state" / "spool";
        std::error_code ec;
        for (fs::directory_iterator it(spool, ec), end; !ec && it != end; it.increment(ec)) {
            std::ifstream in(it->path(), std::ios::binary);
            all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
        return all;
    }
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        for (const auto& f : spooled()) out.push_back(f.msg);
        return out;
    }
    static bool wait_for(const std::function<bool()>& condition,
                         std::chrono::seconds limit = std::chrono::seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!condition() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return condition();
    }

    fs::path dir_;
};

}  // namespace hsmaudit::agent
