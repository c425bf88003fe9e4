// The sample trail writer and the verifier's report rendering (text and JSON).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "agent/engine/sample.h"
#include "agent/engine/verify_output.h"
#include "mac/keys.h"
#include "mac/record.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

class SampleTrail : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::path(::testing::TempDir()) / "hsmaudit_agent_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        auto keys = mac::generate_chain_keys();
        ASSERT_TRUE(keys.has_value());
        keys_.emplace(std::move(*keys));
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string sub(const std::string& n) const { return (fs::path(dir_) / n).string(); }
    mac::VerifyReport verify(const std::string& dir) {
        mac::VerifyOptions opt;
        opt.key.emplace(keys_->key);
        auto r = mac::verify_paths({dir}, opt);
        EXPECT_TRUE(r.has_value());
        return r ? std::move(*r) : mac::VerifyReport{};
    }

    std::string dir_;
    std::optional<mac::NewChainKeys> keys_;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST_F(SampleTrail, WritesSealedSegmentsAndAnOpenTail) {
    SampleOptions opt;
    opt.records = 250;
    opt.segment_records = 100;
    auto paths = write_sample_trail(keys_->key, keys_->signer, sub("t"), opt);
    ASSERT_TRUE(paths.has_value()) << paths.error().message;
    ASSERT_EQ(paths->size(), 3u);
    EXPECT_EQ(fs::path((*paths)[0]).filename(), mac::segment_file_name("150123", 0));
    EXPECT_EQ(fs::path((*paths)[2]).filename(), mac::segment_file_name("150123", 2));
    const mac::VerifyReport r = verify(sub("t"));
    EXPECT_TRUE(r.verified());
    EXPECT_EQ(r.records, 250u);
    EXPECT_EQ(r.sealed_segments, 2u);
    EXPECT_EQ(r.open_segments, 1u);
    EXPECT_GE(r.first_time_ms, opt.start_time_ms);

    // Records are typical: parseable, 150-250 bytes on average, a mix of events and failures.
    std::size_t lines = 0, bytes = 0, failures = 0;
    std::set<std::string> events;
    for (const auto& p : *paths) {
        std::istringstream in(slurp(p));
        for (std::string line; std::getline(in, line);) {
            if (mac::classify_line(line) != mac::LineKind::record) continue;
            auto v = mac::split_record_line(line);
            ASSERT_TRUE(v.has_value());
            auto rec = mac::parse_record_body(v->body);
            ASSERT_TRUE(rec.has_value()) << rec.error().message;
            events.insert(rec->event);
            failures += rec->event_class == "failure";
            ++lines;
            bytes += line.size() + 1;
        }
    }
    EXPECT_EQ(lines, 250u);
    EXPECT_GE(bytes / lines, 150u);
    EXPECT_LE(bytes / lines, 250u);
    EXPECT_GE(events.size(), 6u);
    EXPECT_GE(failures, 1u);
}

TEST_F(SampleTrail, IsDeterministicForASeedApartFromKeys) {
    SampleWorkload a(5, 1'795'500'000'000), b(5, 1'795'500'000'000), c(6, 1'795'500'000'000);
    bool differs = false;
    for (int i = 0; i < 200; ++i) {
        mac::AuditRecord ra, rb, rc;
        a.next(ra);
        b.next(rb);
        c.next(rc);
        EXPECT_EQ(ra, rb);
        differs = differs || !(ra == rc);
    }
    EXPECT_TRUE(differs);
}

TEST_F(SampleTrail, RefusesBadArguments) {
    SampleOptions opt;
    opt.records = 10;
    opt.segment_records = 0;
    auto zero = write_sample_trail(keys_->key, keys_->signer, sub("t"), opt);
    ASSERT_FALSE(zero.has_value());
    opt.segment_records = 5;
    ASSERT_TRUE(write_sample_trail(keys_->key, keys_->signer, sub("t"), opt).has_value());
    auto again = write_sample_trail(keys_->key, keys_->signer, sub("t"), opt);
    ASSERT_FALSE(again.has_value()) << "a directory holding segments is refused";
    opt.serial = "bad serial";
    EXPECT_FALSE(write_sample_trail(keys_->key, keys_->signer, sub("u"), opt).has_value());
}

TEST_F(SampleTrail, ExactMultipleLeavesAFullOpenTail) {
    SampleOptions opt;
    opt.records = 20;
    opt.segment_records = 10;
    auto paths = write_sample_trail(keys_->key, keys_->signer, sub("t"), opt);
    ASSERT_TRUE(paths.has_value());
    EXPECT_EQ(paths->size(), 2u);
    const mac::VerifyReport r = verify(sub("t"));
    EXPECT_TRUE(r.verified());
    EXPECT_EQ(r.sealed_segments, 1u);
    EXPECT_EQ(r.open_segments, 1u);
    EXPECT_EQ(r.segments.back().records, 10u);
}

TEST_F(SampleTrail, ReportRendering) {
    SampleOptions opt;
    opt.records = 30;
    opt.segment_records = 10;
    auto paths = write_sample_trail(keys_->key, keys_->signer, sub("t"), opt);
    ASSERT_TRUE(paths.has_value());
    mac::VerifyReport ok = verify(sub("t"));
    const std::string text = render_report_text(ok);
    EXPECT_NE(text.find("segments  3 (2 sealed, 1 open)"), std::string::npos) << text;
    EXPECT_NE(text.find("records   30 (sequence 1 to 30)"), std::string::npos) << text;
    EXPECT_NE(text.find("verdict   VERIFIED"), std::string::npos) << text;
    const auto j = render_report_json(ok);
    EXPECT_EQ(j["verdict"], "verified");
    EXPECT_EQ(j["records"], 30);
    EXPECT_EQ(j["faults"].size(), 0u);
    EXPECT_EQ(j["faults_truncated"], false);

    // Delete the middle segment: one fault, listed with file and line in both forms.
    fs::remove((*paths)[1]);
    mac::VerifyReport bad = verify(sub("t"));
    ASSERT_FALSE(bad.verified());
    const std::string bad_text = render_report_text(bad);
    EXPECT_NE(bad_text.find("verdict   FAILED"), std::string::npos) << bad_text;
    const auto bj = render_report_json(bad);
    EXPECT_EQ(bj["verdict"], "failed");
    EXPECT_EQ(bj["faults_total"], bad.faults_total);
    ASSERT_FALSE(bj["faults"].empty());
    EXPECT_TRUE(bj["faults"][0].contains("kind"));
    EXPECT_TRUE(bj["faults"][0].contains("file"));
    EXPECT_TRUE(bj["faults"][0].contains("message"));

    // The cap: counted faults beyond the list are announced.
    bad.faults.clear();
    const std::string capped = render_report_text(bad);
    EXPECT_NE(capped.find("more faults not listed"), std::string::npos) << capped;
    EXPECT_EQ(render_report_json(bad)["faults_truncated"], true);
}

}  // namespace
}  // namespace hsmaudit::agent
