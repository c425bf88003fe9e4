// SyslogIntake's followed-file positions: saved at stop only after the spool has stored every
// line read, never thrown out of stop() (a file name that is not UTF-8), and a failed save is
// reported, not fatal (the last saved position stays; the next start re-reads from it).
#include "agent/daemon/syslog_intake.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "agent/engine/config_keys.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

class SyslogIntakeTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-intake-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "state");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::unique_ptr<SyslogIntake> start(const fs::path& followed) {
        const std::string yaml = "syslog:\n  files: \"" + followed.string() + "\"\n";
        auto c = base::Config::parse(yaml, "test.yaml", all_config_keys());
        EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
        if (!c) return nullptr;
        auto in = SyslogIntake::start(*c, (dir_ / "state").string());
        EXPECT_TRUE(in.has_value()) << (in ? "" : in.error().describe());
        return in ? std::move(*in) : nullptr;
    }
    static bool wait_for(const std::function<bool()>& condition) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!condition() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return condition();
    }
    std::vector<fs::path> positions() const {
        std::vector<fs::path> out;
        for (const auto& e : fs::directory_iterator(dir_ / "state"))
            if (e.path().filename().string().starts_with("follow-")) out.push_back(e.path());
        return out;
    }

    static inline int counter_ = 0;
    fs::path dir_;
};

TEST_F(SyslogIntakeTest, APositionOfAFileWhoseNameIsNotUtf8IsSavedAfterTheSpoolAndStopNeverThrows) {
    const fs::path followed = dir_ / "app-\xff\xfe.log";  // bytes a JSON dump without replace throws on
    std::ofstream(followed) << "<13>Dec  3 10:00:00 host app: one\n<13>Dec  3 10:00:01 host app: two\n";
    auto in = start(followed);
    ASSERT_NE(in, nullptr);
    ASSERT_TRUE(wait_for([&] { return in->probe().snapshot().received >= 2; }));
    ASSERT_NO_THROW(in->stop());
    const auto spooled = in->spool_stats();
    ASSERT_TRUE(spooled.has_value());
    EXPECT_EQ(spooled->appended, 2u) << "the lines are durable before their position is saved";
    const auto saved = positions();
    ASSERT_EQ(saved.size(), 1u);
    std::ifstream f(saved.front());
    std::stringstream text;
    text << f.rdbuf();
    const auto j = nlohmann::json::parse(text.str());
    EXPECT_GT(j.at("offset").get<std::uint64_t>(), 0u);
    EXPECT_EQ(j.at("path").get<std::string>().find("\xEF\xBF\xBD"), dir_.string().size() + 5);
}

TEST_F(SyslogIntakeTest, AFailedPositionSaveIsReportedNotFatal) {
    const fs::path followed = dir_ / "app.log";
    std::ofstream(followed) << "<13>Dec  3 10:00:00 host app: one\n";
    auto in = start(followed);
    ASSERT_NE(in, nullptr);
    ASSERT_TRUE(wait_for([&] { return in->probe().snapshot().received >= 1; }));
    in->stop();
    const auto saved = positions();
    ASSERT_EQ(saved.size(), 1u);
    const fs::path& position = saved.front();

    // The next run cannot replace its position file (a directory in its way: rename fails).
    fs::remove(position);
    fs::create_directories(position / "in-the-way");
    std::ofstream(followed, std::ios::app) << "<13>Dec  3 10:00:01 host app: two\n";
    auto again = start(followed);
    ASSERT_NE(again, nullptr);
    ASSERT_TRUE(wait_for([&] { return again->probe().snapshot().received >= 2; }));
    ASSERT_NO_THROW(again->stop());
    EXPECT_TRUE(fs::is_directory(position)) << "nothing was forced over it";
    EXPECT_EQ(again->spool_stats()->appended, 2u);
    for (const auto& e : fs::directory_iterator(dir_ / "state"))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "temp left: " << e.path();
}

}  // namespace
}  // namespace hsmaudit::agent
