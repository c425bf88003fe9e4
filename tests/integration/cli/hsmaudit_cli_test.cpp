// The real `hsmaudit` binary end to end: secret init, sample, verify (text, --json, -q),
// secret export + verify --wrapped-key, --require-sealed, and the exit codes 0 / 1 / 2.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "mac/checkpoint.h"
#include "mac/keys.h"
#include "tests/integration/common/process.h"

namespace {

namespace fs = std::filesystem;

const std::string kBinary = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

using hsmaudit::testing::Process;

std::string slurp(const std::string& path) {
    return Process::slurp(path);
}

void spit(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

class Cli : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kBinary)) << kBinary << " is not built";
        std::string tmpl = (fs::path(::testing::TempDir()) / "hsmaudit_cli_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    [[nodiscard]] std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

    /// Runs hsmaudit with `args` (no shell), stdin from /dev/null, and collects its output.
    CliRun hsmaudit(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {kBinary};
        argv.insert(argv.end(), args.begin(), args.end());
        Process p(argv, path(".stdout"), path(".stderr"));
        CliRun r;
        r.exit_code = p.wait().value_or(-1);
        r.out = p.out();
        r.err = p.err();
        return r;
    }

    /// secret init + sample: keys in keys/, segments in trail/.
    void make_trail(std::uint64_t records = 250, std::uint64_t segment_records = 100) {
        CliRun init = hsmaudit({"secret", "init", "--dir", path("keys")});
        ASSERT_EQ(init.exit_code, 0) << init.err;
        CliRun sample = hsmaudit({"sample", "--dir", path("keys"), "--records", std::to_string(records),
                                  "--segment-records", std::to_string(segment_records), "--out", path("trail")});
        ASSERT_EQ(sample.exit_code, 0) << sample.err;
    }

    std::vector<std::string> segments() {
        std::vector<std::string> files;
        for (const auto& e : fs::directory_iterator(path("trail"))) files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        return files;
    }

    std::string dir_;
};

unsigned mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<unsigned>(st.st_mode & 07777);
}

TEST_F(Cli, InitSampleVerify) {
    make_trail();
    EXPECT_EQ(mode_of(path("keys/audit.key")), 0600u);
    EXPECT_EQ(mode_of(path("keys/audit.sign")), 0600u);
    EXPECT_TRUE(fs::exists(path("keys/audit.pub")));
    const auto files = segments();
    ASSERT_EQ(files.size(), 3u);
    EXPECT_EQ(fs::path(files[0]).filename(), "hsm_150123_00000000.log");

    CliRun text = hsmaudit({"verify", "--key", path("keys/audit.key"), path("trail")});
    EXPECT_EQ(text.exit_code, 0) << text.out << text.err;
    EXPECT_NE(text.out.find("VERIFIED"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("records   250 (sequence 1 to 250)"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("open      "), std::string::npos) << "the open tail is reported: " << text.out;

    CliRun pub = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), files[2], files[0], files[1]});
    EXPECT_EQ(pub.exit_code, 0) << pub.out << pub.err;

    CliRun js = hsmaudit(
        {"verify", "--key", path("keys/audit.key"), "--pubkey", path("keys/audit.pub"), "--json", path("trail")});
    ASSERT_EQ(js.exit_code, 0) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["verdict"], "verified");
    EXPECT_EQ(j["records"], 250);
    EXPECT_EQ(j["first_seq"], 1);
    EXPECT_EQ(j["last_seq"], 250);
    EXPECT_EQ(j["sealed_segments"], 2);
    EXPECT_EQ(j["open_segments"], 1);
    EXPECT_EQ(j["macs_checked"], true);
    EXPECT_EQ(j["signatures_checked"], true);
    EXPECT_EQ(j["faults_total"], 0);
    ASSERT_EQ(j["segments"].size(), 3u);
    EXPECT_EQ(j["segments"][2]["open_tail"], true);

    CliRun quiet = hsmaudit({"verify", "-q", "--key", path("keys/audit.key"), path("trail")});
    EXPECT_EQ(quiet.exit_code, 0);
    EXPECT_TRUE(quiet.out.empty()) << quiet.out;
}

TEST_F(Cli, TamperedRecordExitsOneWithTheFaultInJson) {
    make_trail();
    const auto files = segments();
    // Line 11 of the second segment is record 110: change one character of its time.
    std::string data = slurp(files[1]);
    std::size_t pos = 0;
    for (int i = 0; i < 10; ++i) pos = data.find('\n', pos) + 1;
    ASSERT_EQ(data.compare(pos, 4, "110 "), 0) << data.substr(pos, 40);
    const std::size_t digit = pos + 4 + 22;
    data[digit] = data[digit] == '0' ? '1' : '0';
    spit(files[1], data);

    CliRun js = hsmaudit({"verify", "--key", path("keys/audit.key"), "--json", path("trail")});
    ASSERT_EQ(js.exit_code, 1) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["verdict"], "failed");
    EXPECT_EQ(j["fault_counts"]["record_mac_mismatch"], 1);
    bool found = false;
    for (const auto& f : j["faults"]) {
        if (f["kind"] == "record_mac_mismatch") {
            EXPECT_EQ(f["file"], files[1]);
            EXPECT_EQ(f["line"], 11);
            EXPECT_EQ(f["seq"], 110);
            EXPECT_FALSE(f["message"].get<std::string>().empty());
            found = true;
        }
    }
    EXPECT_TRUE(found) << js.out;
    EXPECT_FALSE(j["fault_counts"].contains("digest_mismatch")) << "with the secret the MACs are the check";

    CliRun text = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), path("trail")});
    EXPECT_EQ(text.exit_code, 1);
    EXPECT_NE(text.out.find("FAULT     digest_mismatch " + files[1] + ":102"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("verdict   FAILED"), std::string::npos) << text.out;

    CliRun quiet = hsmaudit({"verify", "-q", "--key", path("keys/audit.key"), path("trail")});
    EXPECT_EQ(quiet.exit_code, 1);
    EXPECT_TRUE(quiet.out.empty());
}

TEST_F(Cli, RequireSealed) {
    make_trail(250, 100);
    CliRun open_ok = hsmaudit({"verify", "--key", path("keys/audit.key"), path("trail")});
    EXPECT_EQ(open_ok.exit_code, 0);
    CliRun js = hsmaudit({"verify", "--key", path("keys/audit.key"), "--require-sealed", "--json", path("trail")});
    ASSERT_EQ(js.exit_code, 1) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["fault_counts"]["seal_missing"], 1);
    EXPECT_EQ(j["faults"][0]["file"], segments()[2]);
    // Without the open tail the sealed segments alone pass.
    CliRun sealed =
        hsmaudit({"verify", "--key", path("keys/audit.key"), "--require-sealed", segments()[0], segments()[1]});
    EXPECT_EQ(sealed.exit_code, 0) << sealed.out;
}

TEST_F(Cli, WrappedKeyRoundTripAndWrongPassphrase) {
    make_trail(120, 50);
    spit(path("pass"), "domain passphrase 42\n");
    ASSERT_EQ(::chmod(path("pass").c_str(), 0600), 0);
    CliRun exp = hsmaudit({"secret", "export", "--dir", path("keys"), "--passphrase-file", path("pass"), "--out",
                           path("audit.lws"), "--kdf-cost", "14"});
    ASSERT_EQ(exp.exit_code, 0) << exp.err;
    EXPECT_EQ(mode_of(path("audit.lws")), 0600u);
    EXPECT_NE(slurp(path("audit.lws")).find("n: 16384\n"), std::string::npos);

    CliRun ok = hsmaudit(
        {"verify", "--wrapped-key", path("audit.lws"), "--passphrase-file", path("pass"), "--json", path("trail")});
    ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    EXPECT_EQ(nlohmann::json::parse(ok.out)["macs_checked"], true);

    spit(path("wrong"), "domain passphrase 43\n");
    ASSERT_EQ(::chmod(path("wrong").c_str(), 0600), 0);
    CliRun bad =
        hsmaudit({"verify", "--wrapped-key", path("audit.lws"), "--passphrase-file", path("wrong"), path("trail")});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("wrong passphrase"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find(path("audit.lws")), std::string::npos) << bad.err;
    EXPECT_TRUE(bad.out.empty());

    // A passphrase file others can read is refused, by name.
    ASSERT_EQ(::chmod(path("pass").c_str(), 0644), 0);
    CliRun insecure =
        hsmaudit({"verify", "--wrapped-key", path("audit.lws"), "--passphrase-file", path("pass"), path("trail")});
    EXPECT_EQ(insecure.exit_code, 2);
    EXPECT_NE(insecure.err.find(path("pass")), std::string::npos) << insecure.err;

    CliRun cost = hsmaudit({"secret", "export", "--dir", path("keys"), "--passphrase-file", path("wrong"), "--out",
                            path("x.lws"), "--kdf-cost", "13"});
    EXPECT_EQ(cost.exit_code, 2);
    EXPECT_FALSE(fs::exists(path("x.lws")));
}

TEST_F(Cli, UsageAndIoErrorsExitTwo) {
    make_trail(20, 10);
    const std::string key = path("keys/audit.key");
    ASSERT_EQ(hsmaudit({"secret", "init", "--dir", path("other")}).exit_code, 0);
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"verify"},
        {"verify", "--key", key},
        {"verify", path("trail")},
        {"verify", "--bogus", "--key", key, path("trail")},
        {"verify", "--key", path("keys/missing.key"), path("trail")},
        {"verify", "--key", key, path("does-not-exist")},
        {"verify", "--key", key, path("keys/audit.key/below")},  // not a directory: unreadable path
        {"verify", "--key", key, path("keys")},                  // no segment files there
        {"verify", "--key", key, "--wrapped-key", path("x"), path("trail")},
        {"verify", "--wrapped-key", path("x"), path("trail")},
        {"verify", "--pubkey", key, path("trail")},  // a secret key file is not a public key file
        {"verify", "--key", key, "--pubkey", path("other/audit.pub"), path("trail")},  // keys of two chains
        {"sample", "--dir", path("keys"), "--records", "5", "--segment-records", "2", "--out", path("trail")},
        {"sample", "--dir", path("keys"), "--records", "0", "--segment-records", "2", "--out", path("t2")},
        {"secret", "init", "--dir", path("keys")},  // refuses to overwrite
        {"secret"},
    };
    for (const auto& args : cases) {
        CliRun r = hsmaudit(args);
        std::string joined;
        for (const auto& a : args) joined += a + " ";
        EXPECT_EQ(r.exit_code, 2) << joined << "\n" << r.out << r.err;
        EXPECT_FALSE(r.err.empty() && r.out.empty()) << "no message for: " << joined;
    }

    if (::geteuid() != 0) {  // root reads files whatever their mode
        const auto files = segments();
        ASSERT_EQ(::chmod(files[0].c_str(), 0), 0);
        CliRun r = hsmaudit({"verify", "--key", key, path("trail")});
        EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
        EXPECT_NE(r.err.find(files[0]), std::string::npos) << r.err;
    }

    // A group-readable audit.key is refused with a message naming it.
    ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
    CliRun insecure = hsmaudit({"verify", "--key", key, path("trail")});
    EXPECT_EQ(insecure.exit_code, 2);
    EXPECT_NE(insecure.err.find(key), std::string::npos) << insecure.err;
}

}  // namespace

namespace {

/// A checkpoint of the trail in `trail_dir` for its record `seq` (its MAC read from the file),
/// signed with the keys in `keys_dir`; version 2 with `retained` > 0.
std::string checkpoint_line(const std::string& keys_dir, const std::string& segment, std::uint64_t seq,
                            std::uint64_t retained) {
    namespace mac = hsmaudit::mac;
    auto key = mac::load_audit_key(keys_dir + "/audit.key");
    auto signer = mac::load_signing_key(keys_dir + "/audit.sign");
    if (!key || !signer) return "";
    mac::Mac m{};
    if (seq != 0) {
        std::istringstream in(slurp(segment));
        for (std::string line; std::getline(in, line);)
            if (line.starts_with(std::to_string(seq) + " "))
                (void)mac::hex_decode(line.substr(line.rfind(" mac=") + 5), m);
    }
    auto c = retained == 0
                 ? mac::make_checkpoint(key->chain(), "150123", 0, seq, 1'795'500'000'000, m, *signer)
                 : mac::make_checkpoint(key->chain(), "150123", 0, seq, retained, 1'795'500'000'000, m, *signer);
    return c ? c->line() : "";
}

}  // namespace

TEST_F(Cli, AnchorsSurviveInjectedLinesOtherChainsAndDetectDeletedOldestSegments) {
    make_trail(20, 10);  // records 1-10 in epoch 0, 11-20 in epoch 1
    ASSERT_EQ(hsmaudit({"secret", "init", "--dir", path("other")}).exit_code, 0);
    const auto files = segments();
    ASSERT_EQ(files.size(), 2u);
    std::string first = files[0] < files[1] ? files[0] : files[1];
    std::string second = files[0] < files[1] ? files[1] : files[0];
    const std::string mine = checkpoint_line(path("keys"), second, 15, 0);
    const std::string theirs = checkpoint_line(path("other"), second, 0, 0);
    ASSERT_FALSE(mine.empty());
    ASSERT_FALSE(theirs.empty());
    spit(path("anchors.txt"),
         "login failed for user @checkpoint hello\n{\"event\":\"" + mine + "\"}\n" + theirs + "\n");
    CliRun ok = hsmaudit(
        {"verify", "--key", path("keys/audit.key"), "--anchors", path("anchors.txt"), "--json", path("trail")});
    ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    auto j = nlohmann::json::parse(ok.out);
    EXPECT_EQ(j.value("anchors_checked", 0), 1);
    EXPECT_EQ(j.value("anchors_skipped", 0), 1);
    EXPECT_EQ(j.value("anchors_other_chains", 0), 1);
    CliRun listed = hsmaudit(
        {"verify", "--key", path("keys/audit.key"), "--anchors", path("anchors.txt"), "--all-chains", path("trail")});
    EXPECT_EQ(listed.exit_code, 0) << listed.out << listed.err;
    EXPECT_NE(listed.out.find("lines without a checkpoint skipped"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("other     chain "), std::string::npos) << listed.out;

    // A version 2 checkpoint says the store held records from 1: deleting epoch 0 is a fault.
    spit(path("v2.txt"), checkpoint_line(path("keys"), second, 15, 1) + "\n");
    fs::remove(first);
    CliRun cut =
        hsmaudit({"verify", "--key", path("keys/audit.key"), "--anchors", path("v2.txt"), "--json", path("trail")});
    EXPECT_EQ(cut.exit_code, 1) << cut.out << cut.err;
    EXPECT_EQ(nlohmann::json::parse(cut.out)["fault_counts"].value("trail_head_missing", 0), 1) << cut.out;
    // The version 1 file cannot tell: the trail verifies.
    EXPECT_EQ(hsmaudit({"verify", "--key", path("keys/audit.key"), "--anchors", path("anchors.txt"), path("trail")})
                  .exit_code,
              0);
}
