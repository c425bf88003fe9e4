// status.json: written UTF-8 safe whatever bytes its strings carry, and under a failing disk
// counted, backed off and recovered by itself (tests/support/faulty_file_system.h).
#include "agent/engine/status_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/faulty_file_system.h"
#include "tests/support/test_files.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using hsmaudit::testing::FaultyFileSystem;
using hsmaudit::testing::FsOp;

using hsmaudit::testing::slurp;

class StatusFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-status-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path() const { return (dir_ / "status.json").string(); }
    std::size_t files() const {
        std::size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir_)) n += e.is_regular_file() ? 1 : 0;
        return n;
    }

    static inline int counter_ = 0;
    fs::path dir_;
};

TEST_F(StatusFileTest, InvalidUtf8FromDiskOrTheNetworkIsWrittenNotThrown) {
    nlohmann::json j;
    j["alerts"]["recent"] =
        nlohmann::json::array({{{"kind", "syslog.peer"}, {"message", std::string("peer sent \xff\xfe bytes \xc3")}}});
    j["archive"]["last_error"] = std::string("cannot open /var/\x80log");
    ASSERT_THROW((void)j.dump(2), nlohmann::json::type_error) << "a plain dump throws on these strings";

    StatusFile status;
    auto st = status.write(path(), j, 1'000);
    ASSERT_TRUE(st.has_value()) << st.error().message;
    const std::string text = slurp(path());
    const auto back = nlohmann::json::parse(text);  // valid JSON, valid UTF-8
    EXPECT_EQ(back["alerts"]["recent"][0]["message"], "peer sent \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD");
    EXPECT_EQ(back["archive"]["last_error"], "cannot open /var/\xEF\xBF\xBDlog");
    EXPECT_EQ(status.stats().writes, 1u);
    EXPECT_EQ(dump_json_utf8_safe(nlohmann::json("\xff")), "\"\xEF\xBF\xBD\"");
}

TEST_F(StatusFileTest, AFullDiskIsCountedBackedOffAndRecoveredWithoutTouchingTheLastGoodFile) {
    FaultyFileSystem faulty;
    StatusFile status(faulty, std::chrono::minutes(10));
    const nlohmann::json first = {{"n", 1}};
    ASSERT_TRUE(status.write(path(), first, 0).has_value());
    const std::string good = slurp(path());

    faulty.set_full(true);
    std::int64_t now = 1'000;
    ASSERT_FALSE(status.write(path(), {{"n", 2}}, now).has_value());
    EXPECT_EQ(status.stats().failures, 1u);
    EXPECT_EQ(slurp(path()), good) << "the previous status stays whole";
    EXPECT_EQ(files(), 1u) << "no temp file left";

    // Called every second (agent.status_interval) for a minute while full: attempts back off
    // (1, 2, 4, 8, 16, 30 s...), the rest are skipped without a system call.
    const std::uint64_t opens = faulty.calls(FsOp::open);
    for (int i = 0; i < 60; ++i) {
        now += 1'000;
        EXPECT_FALSE(status.write(path(), {{"n", 3}}, now).has_value());
    }
    const auto s = status.stats();
    EXPECT_LE(s.failures, 8u);
    EXPECT_GE(s.failures, 4u);
    EXPECT_EQ(s.failures + s.skipped, 61u);
    EXPECT_LE(faulty.calls(FsOp::open) - opens, 8u);
    EXPECT_FALSE(s.last_error.empty());
    EXPECT_EQ(slurp(path()), good);

    // Space is freed: the next attempt due writes, and the counters say so.
    faulty.set_full(false);
    bool written = false;
    for (int i = 0; i < 31 && !written; ++i) {
        now += 1'000;
        written = status.write(path(), {{"n", 4}}, now).has_value();
    }
    ASSERT_TRUE(written);
    EXPECT_EQ(nlohmann::json::parse(slurp(path()))["n"], 4);
    EXPECT_EQ(status.stats().consecutive_failures, 0u);
    EXPECT_TRUE(status.stats().last_error.empty());
    EXPECT_EQ(files(), 1u);
}

TEST_F(StatusFileTest, ForceTriesEvenWhileBackingOff) {
    FaultyFileSystem faulty;
    StatusFile status(faulty);
    faulty.fail_nth(FsOp::fsync, 1, EIO);
    ASSERT_FALSE(status.write(path(), {{"n", 1}}, 0).has_value());
    EXPECT_FALSE(status.write(path(), {{"n", 2}}, 10).has_value()) << "backing off";
    EXPECT_EQ(status.stats().skipped, 1u);
    ASSERT_TRUE(status.write(path(), {{"n", 3}}, 20, true).has_value());
    EXPECT_EQ(nlohmann::json::parse(slurp(path()))["n"], 3);
}

}  // namespace
}  // namespace hsmaudit::agent
