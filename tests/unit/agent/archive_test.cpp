// The archiver: sealed segments bundled into tar archives (atomic, crash-safe), and archives
// verified alongside loose segments by mac::verify_paths and by the hsmaudit CLI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/pipeline/drain.h"
#include "agent/store/archiver.h"
#include "agent/store/audit_store.h"
#include "fake_module.h"
#include "mac/verifier.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using testing::AlertList;
using testing::FakeModule;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
}

std::vector<fs::path> files_in(const fs::path& dir, std::string_view suffix = "") {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename().string().ends_with(suffix)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

/// A store filled by the real drain from a module stand-in (encrypted at rest or not).
class ArchiveTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-archive-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        auto k = mac::generate_chain_keys();
        ASSERT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<FakeModule>(*keys_);
        auto s = AuditStore::open(AuditStoreOptions{audit_dir().string(), GetParam()}, keys_->key);
        ASSERT_TRUE(s.has_value()) << s.error().message;
        store_ = std::move(*s);
        DrainOptions opt;
        opt.poll_wait = std::chrono::milliseconds(0);
        drain_ = std::make_unique<Drain>(*module_, *store_, keys_->key, alerts_, opt, [this] { return now_ms_; });
        ASSERT_TRUE(drain_->restore().has_value());
    }
    void TearDown() override {
        drain_.reset();
        store_.reset();
        fs::remove_all(dir_);
    }

    fs::path audit_dir() const { return dir_ / "audit"; }
    fs::path ready() const { return audit_dir() / "ready_for_archive"; }
    fs::path archives() const { return audit_dir() / "archive"; }

    /// `segments` sealed segments of `records` records each (and a new open one), all drained.
    void produce_sealed(int segments, std::size_t records = 40) {
        for (int i = 0; i < segments; ++i) {
            module_->produce(records);
            module_->seal_now();
        }
        for (int i = 0; i < 1000 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(drain_->step().has_value());
        ASSERT_EQ(module_->acked(), module_->size());
    }

    std::unique_ptr<Archiver> make_archiver(ArchiverOptions opt = {}) {
        opt.audit_dir = audit_dir().string();
        return std::make_unique<Archiver>(
            opt, keys_->key, alerts_,
            [this] { return sealed_override_ ? sealed_override_ : drain_->stats().sealed_epoch; },
            [this] { return now_ms_; });
    }

    mac::VerifyReport verify(const std::vector<std::string>& paths) {
        mac::VerifyOptions opt;
        opt.key.emplace(keys_->key);
        opt.containers = &expander_;
        auto r = mac::verify_paths(paths, opt);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? *r : mac::VerifyReport{};
    }

    static std::string describe(const mac::VerifyReport& r) {
        std::string s;
        for (const auto& f : r.faults)
            s += std::string(mac::to_string(f.kind)) + " " + f.file + ": " + f.message + "\n";
        return s;
    }

    static inline int counter_ = 0;
    fs::path dir_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<FakeModule> module_;
    AlertList alerts_;
    std::unique_ptr<AuditStore> store_;
    std::unique_ptr<Drain> drain_;
    TarExpander expander_;
    std::optional<std::uint64_t> sealed_override_;
    std::int64_t now_ms_ = 1'795'500'000'000;
};

TEST_P(ArchiveTest, BundlesSealedSegmentsIntoOneArchiveThatVerifiesAndRemovesThem) {
    produce_sealed(5);
    const auto before = files_in(ready(), ".log");
    ASSERT_EQ(before.size(), 5u);
    auto archiver = make_archiver();
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    ASSERT_EQ(run->archives.size(), 1u);
    EXPECT_EQ(run->segments_archived, 5u);
    EXPECT_TRUE(files_in(ready(), ".log").empty());

    // Named by serial and epoch range; compressed only when the segments are plaintext.
    const fs::path archive = run->archives.front();
    const std::string ext = GetParam() ? ".tar" : ".tgz";
    EXPECT_EQ(archive.filename().string(), "audit-150123-00000000-00000004" + ext);
    const std::string bytes = slurp(archive);
    if (GetParam()) {
        ASSERT_GT(bytes.size(), 262u);
        EXPECT_EQ(bytes.substr(257, 5), "ustar");
    } else {
        EXPECT_EQ(bytes.substr(0, 2), "\x1f\x8b");
    }
    EXPECT_EQ(files_in(archives()).size(), 1u) << "no temp file left behind";

    auto manifest = read_manifest(archive.string());
    ASSERT_TRUE(manifest.has_value()) << manifest.error().message;
    ASSERT_EQ(manifest->segments.size(), 5u);
    EXPECT_EQ(manifest->segments.front().first_seq, 1u);
    EXPECT_EQ(manifest->last_seq(), 200u);
    EXPECT_EQ(manifest->segments.back().encrypted, GetParam());

    // The archive plus the open segment: the whole trail, every member ordered by chain.
    const auto report = verify({audit_dir().string()});
    EXPECT_TRUE(report.verified()) << describe(report);
    EXPECT_EQ(report.records, 200u);
    ASSERT_EQ(report.segments.size(), 6u);
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(report.segments[i].epoch, i);
        EXPECT_EQ(report.segments[i].file, archive.string() + "(" + mac::segment_file_name("150123", i) + ")");
    }
    EXPECT_TRUE(report.segments[5].open_tail);
}

TEST_P(ArchiveTest, NeverArchivesASegmentWhoseSealIsNotCommitted) {
    produce_sealed(4);
    sealed_override_ = 1;  // the store has committed the seals of epochs 0 and 1 only
    auto archiver = make_archiver();
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    EXPECT_EQ(run->segments_archived, 2u);
    const auto left = files_in(ready(), ".log");
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].filename().string(), mac::segment_file_name("150123", 2));
    EXPECT_EQ(run->segments_waiting, 2u);
}

TEST_P(ArchiveTest, CrashAfterRenameBeforeDeletionLosesNothingAndDuplicatesGoAfterReadBack) {
    produce_sealed(3);
    const fs::path saved = dir_ / "saved";
    fs::create_directories(saved);
    for (const auto& f : files_in(ready(), ".log")) fs::copy_file(f, saved / f.filename());
    auto archiver = make_archiver();
    ASSERT_TRUE(archiver->run_once().has_value());
    // The state a crash between the archive's rename and the segments' deletion leaves: both.
    for (const auto& f : files_in(saved)) fs::copy_file(f, ready() / f.filename());
    ASSERT_EQ(files_in(archives()).size(), 1u);

    // Nothing is lost meanwhile, but a verifier sees every segment twice.
    auto both = verify({audit_dir().string()});
    EXPECT_EQ(both.fault_counts[static_cast<std::size_t>(mac::FaultKind::segment_duplicate)], 3u) << describe(both);

    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    EXPECT_EQ(run->duplicates_removed, 3u);
    EXPECT_TRUE(run->archives.empty()) << "the archive already holds them";
    EXPECT_TRUE(files_in(ready(), ".log").empty());
    const auto report = verify({audit_dir().string()});
    EXPECT_TRUE(report.verified()) << describe(report);
    EXPECT_EQ(report.records, 120u);
}

TEST_P(ArchiveTest, SegmentsStayWhenTheArchiveHoldingThemDoesNotReadBackComplete) {
    produce_sealed(3);
    const fs::path saved = dir_ / "saved";
    fs::create_directories(saved);
    for (const auto& f : files_in(ready(), ".log")) fs::copy_file(f, saved / f.filename());
    auto archiver = make_archiver();
    auto first = archiver->run_once();
    ASSERT_TRUE(first.has_value());
    for (const auto& f : files_in(saved)) fs::copy_file(f, ready() / f.filename());
    // The archive was torn (a crash on a file system that lost its tail, a bad disk).
    const fs::path archive = first->archives.front();
    fs::resize_file(archive, fs::file_size(archive) * 2 / 3);

    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    EXPECT_EQ(run->duplicates_removed, 0u);
    EXPECT_TRUE(alerts_.has("archive.damaged"));
    // The segments were archived again, under a new name, and removed only after that read back.
    ASSERT_EQ(run->archives.size(), 1u);
    EXPECT_NE(run->archives.front(), archive.string());
    std::vector<std::pair<std::string, std::string>> compare;
    for (const auto& f : files_in(saved)) compare.emplace_back(f.filename().string(), f.string());
    EXPECT_TRUE(check_archive(run->archives.front(), compare).has_value());
    EXPECT_FALSE(check_archive(archive.string(), {}).has_value());
    EXPECT_TRUE(files_in(ready(), ".log").empty());
}

TEST_P(ArchiveTest, AStaleTempFileFromACrashBeforeRenameIsRemoved) {
    produce_sealed(2);
    fs::create_directories(archives());
    spit(archives() / ".tmp-audit-150123-00000000-00000001.tgz", "half an archive");
    auto archiver = make_archiver();
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    EXPECT_EQ(run->temps_removed, 1u);
    EXPECT_EQ(run->segments_archived, 2u);
    EXPECT_EQ(files_in(archives()).size(), 1u);
}

TEST_P(ArchiveTest, ASealedSegmentAlteredOnDiskIsAlertedAndNotArchived) {
    if (GetParam()) GTEST_SKIP() << "plain files only: an encrypted one fails its chunk tag (covered by the reader)";
    produce_sealed(3);
    // Delete one record line from the middle segment, as an intruder on the host would.
    const auto segments = files_in(ready(), ".log");
    ASSERT_EQ(segments.size(), 3u);
    const std::string victim = segments[1].string();
    std::ifstream in(victim);
    std::string text, line;
    int n = 0;
    while (std::getline(in, line))
        if (n++ != 5) text += line + "\n";
    in.close();
    std::ofstream(victim, std::ios::trunc) << text;

    auto archiver = make_archiver();
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value()) << run.error().message;
    EXPECT_EQ(run->segments_archived, 2u) << "the two intact segments are archived";
    EXPECT_TRUE(fs::exists(victim)) << "the altered segment stays for an auditor";
    EXPECT_TRUE(alerts_.has("chain.sequence_gap"));
}

TEST_P(ArchiveTest, RunsOnScheduleAndWhenTooManySegmentsWait) {
    ArchiverOptions opt;
    opt.interval = std::chrono::hours(1);
    opt.max_segments = 3;
    auto archiver = make_archiver(opt);
    produce_sealed(1);
    auto t = archiver->tick();  // the first tick runs: it finishes what a crash interrupted
    ASSERT_TRUE(t.has_value() && *t);
    produce_sealed(3);
    now_ms_ += 60'000;
    t = archiver->tick();
    ASSERT_TRUE(t.has_value());
    EXPECT_FALSE(*t) << "3 waiting is not more than archive.max_segments";
    produce_sealed(1);
    t = archiver->tick();
    ASSERT_TRUE(t.has_value());
    EXPECT_TRUE(*t) << "4 waiting";
    EXPECT_TRUE(files_in(ready(), ".log").empty());
    produce_sealed(1);
    now_ms_ += 3'599'999;
    t = archiver->tick();
    EXPECT_FALSE(t.has_value() && *t);
    now_ms_ += 1;
    t = archiver->tick();
    EXPECT_TRUE(t.has_value() && *t) << "an hour after the last pass";
    EXPECT_EQ(archiver->stats().archives_written, 3u);
}

/// Runs the real hsmaudit binary; returns its exit code and stdout.
std::pair<int, std::string> run_cli(const fs::path& dir, const std::string& args) {
    const fs::path out = dir / "cli.out";
    const std::string cmd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit " + args + " > " + out.string() +
                            " 2> " + (dir / "cli.err").string();
    const int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out)};
}

TEST_P(ArchiveTest, CliVerifiesArchivesMixedWithLooseSegmentsAndNamesATamperedMember) {
    produce_sealed(6);
    module_->produce(25);  // and an open tail
    for (int i = 0; i < 100 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(drain_->step().has_value());
    ArchiverOptions opt;
    opt.compress = false;
    sealed_override_ = 3;  // epochs 0..3 archived, 4..5 stay loose, 6 open
    auto archiver = make_archiver(opt);
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value() && run->archives.size() == 1u);
    ASSERT_EQ(files_in(ready(), ".log").size(), 2u);
    const fs::path keys = dir_ / "keys";
    ASSERT_TRUE(mac::write_key_dir(keys.string(), *keys_).has_value());
    const std::string key_arg = "verify --json --key " + (keys / mac::kAuditKeyFile).string() + " ";

    // The archive and the loose segments, given as the directory and as separate paths.
    for (const std::string& paths : {audit_dir().string(), run->archives.front() + " " + ready().string() + " " +
                                                               (audit_dir() / "current").string()}) {
        auto [rc, out] = run_cli(dir_, key_arg + paths);
        ASSERT_EQ(rc, 0) << out << slurp(dir_ / "cli.err");
        const auto j = nlohmann::json::parse(out);
        EXPECT_EQ(j["records"], 265);
        EXPECT_EQ(j["segments"].size(), 7u);
        EXPECT_EQ(j["segments"][2]["file"], run->archives.front() + "(" + mac::segment_file_name("150123", 2) + ")");
    }

    // Tamper with one byte in the middle of member hsm_150123_00000002.log.
    const std::string member = mac::segment_file_name("150123", 2);
    std::string tar = slurp(run->archives.front());
    const auto header = tar.find(member + std::string(1, '\0'));
    ASSERT_NE(header, std::string::npos);
    const std::size_t data = header + 512;
    std::size_t at = 0;
    const std::uint64_t size = std::stoull(tar.substr(header + 124, 11), nullptr, 8);
    if (GetParam()) {
        at = data + size / 2;  // a ciphertext byte: the chunk fails authentication
        tar[at] = static_cast<char>(tar[at] ^ 0x01);
    } else {
        at = tar.find(" event=LUNA_", data + size / 2);
        ASSERT_LT(at, data + size);
        tar[at + 7] = 'X';  // a record's event name: its MAC fails
    }
    spit(run->archives.front(), tar);
    auto [rc, out] = run_cli(dir_, key_arg + audit_dir().string());
    ASSERT_EQ(rc, 1) << out << slurp(dir_ / "cli.err");
    const auto j = nlohmann::json::parse(out);
    ASSERT_FALSE(j["faults"].empty());
    const std::string kind = GetParam() ? "encrypted_damaged" : "record_mac_mismatch";
    bool found = false;
    for (const auto& f : j["faults"]) {
        // Consequences (a segment missing after an unreadable one) name later members of the archive.
        EXPECT_TRUE(f["file"].get<std::string>().starts_with(run->archives.front() + "(")) << f.dump();
        if (f["kind"] == kind && f["file"] == run->archives.front() + "(" + member + ")") found = true;
    }
    EXPECT_TRUE(found) << j["faults"].dump();
}

TEST_P(ArchiveTest, ATruncatedArchiveIsAFaultNamingItNotAnError) {
    produce_sealed(3);
    ArchiverOptions opt;
    opt.compress = true;
    auto archiver = make_archiver(opt);
    auto run = archiver->run_once();
    ASSERT_TRUE(run.has_value() && run->archives.size() == 1u);
    const fs::path archive = run->archives.front();
    fs::resize_file(archive, fs::file_size(archive) / 2);
    const auto report = verify({archive.string()});
    EXPECT_FALSE(report.verified());
    EXPECT_GT(report.fault_counts[static_cast<std::size_t>(mac::FaultKind::archive_damaged)], 0u) << describe(report);
    for (const auto& f : report.faults) EXPECT_TRUE(f.file.starts_with(archive.string())) << f.file;
}

INSTANTIATE_TEST_SUITE_P(AtRest, ArchiveTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "encrypted" : "plain"; });

}  // namespace
}  // namespace hsmaudit::agent
