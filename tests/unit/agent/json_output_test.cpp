// The --json outputs (hsmaudit verify, tail) carry file names and lines from disk: bytes that are
// not UTF-8 must come out replaced (U+FFFD), not end the program with nlohmann::json's type_error.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/engine/verify_output.h"
#include "agent/tools/tail.h"
#include "base/json_text.h"
#include "mac/keys.h"
#include "mac/verifier.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

class JsonOutput : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::path(::testing::TempDir()) / "hsmaudit_json_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(JsonOutput, VerifyReportWithInvalidUtf8FileNameAndLineRenders) {
    // A damaged segment whose name and line hold bytes that are not UTF-8 (a truncated sequence,
    // a lone continuation byte, 0xFF).
    const fs::path bad = dir_ / "0000000000000000-\xC3-\xFF.log";
    {
        std::ofstream out(bad, std::ios::binary);
        out << "@open v=1 serial=\x80\xFE damaged\n1 not a record \xC3\x28\n";
    }
    auto keys = mac::generate_chain_keys();
    ASSERT_TRUE(keys.has_value());
    mac::VerifyOptions opt;
    opt.key.emplace(keys->key);
    auto report = mac::verify_paths({dir_.string()}, opt);
    ASSERT_TRUE(report.has_value()) << report.error().describe();
    ASSERT_FALSE(report->verified());
    const nlohmann::json j = render_report_json(*report);
    // The raw bytes do reach the JSON: the default dump would throw (what ended `verify --json`).
    EXPECT_THROW((void)j.dump(2), nlohmann::json::type_error);

    std::string text;
    ASSERT_NO_THROW(text = base::json_text(j));
    EXPECT_NE(text.find(kReplacement), std::string::npos) << text;
    const auto back = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(back.is_discarded()) << text;
    EXPECT_EQ(back["faults"].size(), report->faults.size());
}

TEST_F(JsonOutput, TailRecordWithInvalidUtf8DetailRenders) {
    tools::TailRecord r;
    r.record.seq = 7;
    r.record.serial = "150123";
    r.record.event = "LUNA_LOG_EXTERNAL";
    r.record.details = {{"msg", std::string("operator note \xFF\xC3")}};
    r.segment = "0000000000000001-0000000000000007\xFE.log";
    const nlohmann::json j = tools::format_record_json(r);
    EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);
    std::string line;
    ASSERT_NO_THROW(line = base::json_text(j, -1));
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_NE(line.find(kReplacement), std::string::npos) << line;
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace hsmaudit::agent
