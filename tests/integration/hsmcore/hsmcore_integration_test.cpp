// Integration tests: `hsmcore init`, `serve`, `load` and `drain` as separate processes; everything
// drained verifies with the real `hsmaudit verify` (wrapped secret, public key, full key).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hsmcore/host/control_protocol.h"
#include "tests/integration/common/process.h"

namespace hsmaudit::hsmcore::testing {

using hsmaudit::testing::Process;
using hsmaudit::testing::run;
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kHsmcore = std::string(HSMAUDIT_BINARY_DIR) + "/hsmcore/hsmcore";
const std::string kHsmaudit = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";

class HsmcoreIntegration : public ::testing::Test {
protected:
    void SetUp() override {
        tmp_ = fs::temp_directory_path() / ("hsmcore_it_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(tmp_);
        fs::create_directories(tmp_);
        dir_ = (tmp_ / "module").string();
    }
    void TearDown() override {
        serve_.reset();
        fs::remove_all(tmp_);
    }
    std::pair<int, std::string> hsmcore(std::vector<std::string> args) {
        args.insert(args.begin(), kHsmcore);
        return run(args, (tmp_ / ("cmd" + std::to_string(n_++))).string());
    }
    void start_serve() {
        serve_ = std::make_unique<Process>(std::vector<std::string>{kHsmcore, "serve", "--dir", dir_},
                                           (tmp_ / "serve.out").string(), (tmp_ / "serve.err").string());
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            auto c = host::ControlClient::connect(dir_ + "/control.sock");
            if (c && c->call("PING")) return;
            ASSERT_TRUE(serve_->running()) << serve_->err();
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL() << "hsmcore serve did not come up";
    }
    json status() {
        auto [code, out] = hsmcore({"status", "--dir", dir_, "--json"});
        EXPECT_EQ(code, 0) << out;
        return json::parse(out);
    }
    static std::uint64_t count_record_lines(const fs::path& dir) {
        std::uint64_t n = 0;
        for (const auto& e : fs::directory_iterator(dir)) {
            if (e.path().extension() != ".log") continue;
            std::ifstream f(e.path());
            for (std::string line; std::getline(f, line);)
                if (!line.empty() && line[0] >= '0' && line[0] <= '9') ++n;
        }
        return n;
    }

    fs::path tmp_;
    std::string dir_;
    std::unique_ptr<Process> serve_;
    int n_ = 0;
};

TEST_F(HsmcoreIntegration, InitServeLoadDrainAndEverythingVerifies) {
    ASSERT_EQ(hsmcore({"init", "--dir", dir_, "--ring-size", "2097152", "--serial", "7001"}).first, 0);
    start_serve();
    const std::string out = (tmp_ / "segments").string();
    Process drain({kHsmcore, "drain", "--dir", dir_, "--out", out, "--follow", "--seal-every", "2000"},
                  (tmp_ / "drain.out").string(), (tmp_ / "drain.err").string());
    auto [lcode, lout] =
        hsmcore({"load", "--dir", dir_, "--rate", "4000", "--duration", "2", "--threads", "2", "--json"});
    ASSERT_EQ(lcode, 0) << lout;
    const json load = json::parse(lout);
    EXPECT_GT(load["done"].get<std::uint64_t>(), 2000u);
    EXPECT_EQ(load["errors"].get<std::uint64_t>(), 0u);
    EXPECT_EQ(load["refused_log_full"].get<std::uint64_t>(), 0u);  // the drain keeps up
    drain.signal(SIGTERM);
    ASSERT_EQ(drain.wait(), 0) << drain.err();
    ASSERT_EQ(hsmcore({"drain", "--dir", dir_, "--out", out, "--seal-at-end"}).first, 0);

    const json st = status();
    EXPECT_EQ(st["used_records"].get<std::uint64_t>(), 0u);
    EXPECT_TRUE(st["running"].get<bool>());
    const std::uint64_t records = st["next_seq"].get<std::uint64_t>() - 1;
    EXPECT_EQ(count_record_lines(out), records);

    const std::string pass = (tmp_ / "pass").string();
    {
        std::ofstream f(pass);
        f << "correct horse battery staple\n";
    }
    fs::permissions(pass, fs::perms::owner_read | fs::perms::owner_write);
    const std::string wrapped = (tmp_ / "audit.lws").string();
    const std::string pub = (tmp_ / "audit.pub").string();
    ASSERT_EQ(
        hsmcore({"secret", "export", "--dir", dir_, "--passphrase-file", pass, "--out", wrapped, "--kdf-cost", "14"})
            .first,
        0);
    ASSERT_EQ(hsmcore({"pubkey", "--dir", dir_, "--out", pub}).first, 0);
    auto v1 = run({kHsmaudit, "verify", "--wrapped-key", wrapped, "--passphrase-file", pass, "--require-sealed", out},
                  (tmp_ / "v1").string());
    EXPECT_EQ(v1.first, 0) << v1.second;
    EXPECT_NE(v1.second.find("records   " + std::to_string(records)), std::string::npos) << v1.second;
    auto v2 = run({kHsmaudit, "verify", "--pubkey", pub, "--require-sealed", out}, (tmp_ / "v2").string());
    EXPECT_EQ(v2.first, 0) << v2.second;

    // A tampered record is caught: the test can fail.
    fs::path victim;
    for (const auto& e : fs::directory_iterator(out))
        if (e.path().extension() == ".log") victim = e.path();
    std::string text = Process::slurp(victim.string());
    const auto pos = text.find("LUNA_SIGN");
    ASSERT_NE(pos, std::string::npos);
    text.replace(pos, 9, "LUNA_SIGX");
    std::ofstream(victim, std::ios::trunc) << text;
    auto v3 =
        run({kHsmaudit, "verify", "--wrapped-key", wrapped, "--passphrase-file", pass, out}, (tmp_ / "v3").string());
    EXPECT_EQ(v3.first, 1) << v3.second;

    serve_->signal(SIGTERM);
    EXPECT_EQ(serve_->wait(), 0);
    EXPECT_NE(serve_->err().find("stopped cleanly"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_ + "/control.sock"));
}

TEST_F(HsmcoreIntegration, BlocksWhenNothingDrainsAndResumesWhenDrainRuns) {
    ASSERT_EQ(hsmcore({"init", "--dir", dir_, "--ring-size", "262144"}).first, 0);
    start_serve();
    auto [c1, o1] = hsmcore({"load", "--dir", dir_, "--rate", "0", "--duration", "1.5", "--threads", "2", "--json"});
    ASSERT_EQ(c1, 0) << o1;
    const json first = json::parse(o1);
    EXPECT_GT(first["refused_log_full"].get<std::uint64_t>(), 0u);
    json st = status();
    EXPECT_TRUE(st["blocked"].get<bool>());
    EXPECT_GT(st["counters"]["refused_log_full"].get<std::uint64_t>(), 0u);

    const std::string out = (tmp_ / "segments").string();
    ASSERT_EQ(hsmcore({"drain", "--dir", dir_, "--out", out}).first, 0);
    st = status();
    EXPECT_FALSE(st["blocked"].get<bool>());
    auto [c2, o2] = hsmcore({"load", "--dir", dir_, "--rate", "500", "--duration", "0.5", "--json"});
    ASSERT_EQ(c2, 0) << o2;
    const json second = json::parse(o2);
    EXPECT_EQ(second["refused_log_full"].get<std::uint64_t>(), 0u);
    EXPECT_GT(second["done"].get<std::uint64_t>(), 100u);
    ASSERT_EQ(hsmcore({"drain", "--dir", dir_, "--out", out, "--seal-at-end"}).first, 0);
    auto v = run({kHsmaudit, "verify", "--key", dir_ + "/audit.key", "--require-sealed", out}, (tmp_ / "v").string());
    EXPECT_EQ(v.first, 0) << v.second;
    EXPECT_NE(v.second.find("VERIFIED"), std::string::npos);
}

TEST_F(HsmcoreIntegration, BadArgumentsGiveClearErrors) {
    auto [c1, o1] = hsmcore({"serve", "--dir", (tmp_ / "nothing").string()});
    EXPECT_EQ(c1, 2);
    EXPECT_NE(o1.find("module.json"), std::string::npos) << o1;
    ASSERT_EQ(hsmcore({"init", "--dir", dir_, "--ring-size", "262144"}).first, 0);
    auto [c2, o2] = hsmcore({"init", "--dir", dir_});
    EXPECT_EQ(c2, 2);
    EXPECT_NE(o2.find("already"), std::string::npos) << o2;
    auto [c3, o3] = hsmcore({"load", "--dir", dir_, "--rate", "10", "--duration", "1", "--mix", "sign=1,bake=2"});
    EXPECT_EQ(c3, 2);
    EXPECT_NE(o3.find("bake"), std::string::npos) << o3;
    auto [c4, o4] = hsmcore({"drain", "--dir", dir_, "--out", (tmp_ / "o").string()});
    EXPECT_NE(c4, 0);
    EXPECT_NE(o4.find("serve"), std::string::npos) << o4;  // "is `hsmcore serve` running?"
    auto [c5, o5] = hsmcore({"init", "--dir", (tmp_ / "m2").string(), "--serial", "bad serial!"});
    EXPECT_EQ(c5, 2);
    EXPECT_NE(o5.find("serial"), std::string::npos) << o5;
}

}  // namespace
}  // namespace hsmaudit::hsmcore::testing
