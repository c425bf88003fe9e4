// The real `hsmaudit` binary end to end: secret init, sample, verify (text, --json, -q),
// secret export + verify --wrapped-key, --require-sealed, --chain/--serial, unproven tails, path
// problems, forged far epochs, and the exit codes 0 / 1 / 2 / 3.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

    // Without the secret the open tail's 50 records are not authenticated: exit 3 unless accepted.
    CliRun pub = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), files[2], files[0], files[1]});
    EXPECT_EQ(pub.exit_code, 3) << pub.out << pub.err;
    EXPECT_NE(pub.out.find("verdict   UNPROVEN"), std::string::npos) << pub.out;
    CliRun accepted = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), "--accept-unproven-tail", path("trail")});
    EXPECT_EQ(accepted.exit_code, 0) << accepted.out << accepted.err;
    EXPECT_NE(text.out.find("serial    150123"), std::string::npos) << text.out;

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
    EXPECT_EQ(j["serial"], "150123");
    EXPECT_EQ(j["unproven_records"], 0);
    ASSERT_EQ(j["segments"].size(), 3u);
    EXPECT_EQ(j["segments"][2]["open_tail"], true);
    EXPECT_EQ(j["segments"][2]["authenticated"], true);

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
        {"verify", "--key", key, "--chain", "not-hex", path("trail")},
        {"verify", "--key", key, path("trail/hsm_150123_00000000.log/x")},
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
        EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // a fault of the trail (unreadable_path), named
        EXPECT_NE(r.out.find("unreadable_path " + files[0]), std::string::npos) << r.out;
        ASSERT_EQ(::chmod(files[0].c_str(), 0600), 0);
    }

    // A group-readable audit.key is refused with a message naming it.
    ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
    CliRun insecure = hsmaudit({"verify", "--key", key, path("trail")});
    EXPECT_EQ(insecure.exit_code, 2);
    EXPECT_NE(insecure.err.find(key), std::string::npos) << insecure.err;
}

/// The `chain: ` value of a key file.
std::string chain_of(const std::string& key_file) {
    const std::string text = slurp(key_file);
    const auto at = text.find("chain: ");
    return at == std::string::npos ? std::string() : text.substr(at + 7, 32);
}

// Issue 15: a trail forged from audit.pub alone (one unsealed segment of invented records) once
// verified under --pubkey with exit 0. It is now "unproven", exit 3, unless explicitly accepted.
TEST_F(Cli, ATrailForgedFromThePublicKeyExitsThree) {
    make_trail(20, 10);
    const std::string chain = chain_of(path("keys/audit.pub"));
    ASSERT_EQ(chain.size(), 32u);
    fs::create_directories(path("forged"));
    const std::string mac(64, 'b');
    std::string data = "@open v=1 chain=" + chain +
                       " serial=150123 epoch=0 boot=1 first=1 time=2026-11-24T06:00:00.000Z"
                       " prev=" +
                       std::string(64, '0') + " mac=" + mac + "\n";
    for (int i = 1; i <= 7; ++i)
        data += std::to_string(i) + " 2026-11-24T06:00:0" + std::to_string(i) +
                ".000Z serial=150123 boot=1 part=1 role=SO sess=1 event=LUNA_DELETE_OBJECT class=keymanage"
                " result=0x00000000 key=4" +
                std::to_string(i) + " mac=" + mac + "\n";
    spit(path("forged/hsm_150123_00000000.log"), data);

    CliRun js = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), "--json", path("forged")});
    EXPECT_EQ(js.exit_code, 3) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["verdict"], "unproven");
    EXPECT_EQ(j["unproven_records"], 7);
    EXPECT_EQ(j["segments"][0]["authenticated"], false);
    CliRun text = hsmaudit({"verify", "--pubkey", path("keys/audit.pub"), path("forged")});
    EXPECT_EQ(text.exit_code, 3);
    EXPECT_EQ(text.out.find("VERIFIED"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("UNPROVEN: no fault, but 7 records"), std::string::npos) << text.out;
    EXPECT_EQ(hsmaudit({"verify", "-q", "--pubkey", path("keys/audit.pub"), "--accept-unproven-tail", path("forged")})
                  .exit_code,
              0);
    EXPECT_EQ(hsmaudit({"verify", "-q", "--key", path("keys/audit.key"), path("forged")}).exit_code, 1);
}

TEST_F(Cli, ChainAndSerialArePinned) {
    make_trail(20, 10);
    ASSERT_EQ(hsmaudit({"secret", "init", "--dir", path("other")}).exit_code, 0);
    const std::string key = path("keys/audit.key");
    CliRun ok = hsmaudit({"verify", "--key", key, "--chain", chain_of(key), "--serial", "150123", path("trail")});
    EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    CliRun serial = hsmaudit({"verify", "--key", key, "--serial", "999999", "--json", path("trail")});
    EXPECT_EQ(serial.exit_code, 1) << serial.out << serial.err;
    const auto j = nlohmann::json::parse(serial.out);
    EXPECT_EQ(j["serial"], "999999");
    EXPECT_EQ(j["fault_counts"]["foreign_module"], 2);
    // A trail and its own public key, where another chain is expected: not a verified other chain.
    CliRun chain = hsmaudit(
        {"verify", "--pubkey", path("keys/audit.pub"), "--chain", chain_of(path("other/audit.pub")), path("trail")});
    EXPECT_EQ(chain.exit_code, 1) << chain.out << chain.err;
    EXPECT_NE(chain.out.find("wrong_key"), std::string::npos) << chain.out;
}

// Issue 15: a symlink loop aborted verify (exit 134); a dangling *.log was skipped silently; a
// FIFO blocked. All are faults now, and the output is safe for any bytes in file names.
TEST_F(Cli, PathProblemsAreFaultsAndOutputIsSafeForAnyName) {
    make_trail(20, 10);
    const auto files = segments();
    fs::create_symlink("loop.log", path("trail/loop.log"));
    fs::create_symlink("loop2", path("trail/loop1"));
    fs::create_symlink("loop1", path("trail/loop2"));
    fs::create_symlink("gone.log", path("trail/dangling.log"));
    ASSERT_EQ(::mkfifo(path("trail/fifo.log").c_str(), 0600), 0);
    fs::create_directories(path("trail/d"));
    fs::create_symlink("..", path("trail/d/parent"));
    const std::string odd = path("trail/odd\xff\n\x1b[31mverdict   VERIFIED.log");
    fs::rename(files[1], odd);

    CliRun text = hsmaudit({"verify", "--key", path("keys/audit.key"), path("trail")});
    EXPECT_EQ(text.exit_code, 1) << text.out << text.err;
    EXPECT_NE(text.out.find("unreadable_path " + path("trail/loop.log")), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("unreadable_path " + path("trail/dangling.log")), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("unreadable_path " + path("trail/fifo.log")), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("unreadable_path " + path("trail/loop1")), std::string::npos) << text.out;
    EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << "a name moved the cursor";
    EXPECT_EQ(text.out.find("\nverdict   VERIFIED"), std::string::npos) << "a name forged the verdict:\n" << text.out;
    EXPECT_NE(text.out.find("odd\\xff\\n\\x1b[31m"), std::string::npos) << text.out;

    CliRun js = hsmaudit({"verify", "--key", path("keys/audit.key"), "--json", path("trail")});
    EXPECT_EQ(js.exit_code, 1) << js.err;
    const auto j = nlohmann::json::parse(js.out);  // throws (fails the test) on invalid JSON or UTF-8
    EXPECT_EQ(j["verdict"], "failed");
    EXPECT_EQ(j["fault_counts"]["unreadable_path"], 5) << js.out;
    EXPECT_EQ(j["records"], 20);

    // Named on the command line: a loop or a FIFO is a usage error, not a crash or a hang.
    for (const std::string& p : std::vector<std::string>{path("trail/loop.log"), path("trail/fifo.log")}) {
        CliRun r = hsmaudit({"verify", "--key", path("keys/audit.key"), p});
        EXPECT_EQ(r.exit_code, 2) << p << r.out << r.err;
    }
}

// Issue 15: a file carrying the real chain id and a far epoch made verify --key derive epoch keys
// without bound (2^64-1) or for seconds per file (2^24, the old bound). Now a fault, at once.
TEST_F(Cli, AForgedFarEpochIsAFaultNotAStall) {
    make_trail(20, 10);
    const auto files = segments();
    for (const std::string epoch : {"18446744073709551615", "16777218"}) {
        std::string data = slurp(files[1]);
        const auto at = data.find(" epoch=1 ");
        ASSERT_NE(at, std::string::npos);
        data.replace(at, 9, " epoch=" + epoch + " ");
        spit(path("trail/far" + epoch + ".log"), data);
    }
    const auto started = std::chrono::steady_clock::now();
    CliRun js = hsmaudit({"verify", "--key", path("keys/audit.key"), "--json", path("trail")});
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
    EXPECT_EQ(js.exit_code, 1) << js.out << js.err;
    const auto j = nlohmann::json::parse(js.out);
    EXPECT_EQ(j["fault_counts"]["epoch_out_of_range"], 2) << js.out;
    EXPECT_EQ(j["faults_total"], 2) << js.out;
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
