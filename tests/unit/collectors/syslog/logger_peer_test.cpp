// An independent sender: util-linux logger(1) (Debian's bsdutils, always installed) speaks RFC 5424 and
// RFC 3164 over UDP, TCP (octet counting or LF) and unix sockets. Our listeners must parse what it sends.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "collectors/syslog/listener.h"
#include "tests/unit/collectors/syslog/test_sink.h"

extern char** environ;

namespace hsmaudit::collectors::syslog {
namespace {

using testing::CollectingSink;

constexpr const char* kLogger = "/usr/bin/logger";

// Runs logger with `args` (no shell) and waits for it; returns its exit status, -1 if it did not run.
int run_logger(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(kLogger));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, kLogger, nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class LoggerPeer : public ::testing::Test {
protected:
    void SetUp() override {
        if (::access(kLogger, X_OK) != 0) GTEST_SKIP() << "logger(1) is not installed";
    }
};

const std::vector<std::string> kRfc5424Args = {
    "--rfc5424",      "--id=4242", "-t",      "NTLS",       "-p",         "local5.warning",
    "--msgid",        "LINKUP",    "--sd-id", "ntls@32473", "--sd-param", "client=\"192.0.2.10\"",
    "hello \"world\""};

void expect_rfc5424_from_logger(const SyslogMessage& m) {
    EXPECT_FALSE(m.malformed) << m.malformed_reason << " in " << m.raw;
    EXPECT_EQ(m.format, SyslogFormat::rfc5424) << m.raw;
    EXPECT_EQ(m.facility, 21);
    EXPECT_EQ(m.severity, 4);
    EXPECT_EQ(m.app_name, "NTLS");
    EXPECT_EQ(m.procid, "4242");
    EXPECT_EQ(m.msgid, "LINKUP");
    EXPECT_TRUE(m.timestamp.has_value());
    bool found = false;
    for (const auto& e : m.structured_data) {
        if (e.id == "ntls@32473") {
            found = true;
            ASSERT_EQ(e.params.size(), 1u);
            EXPECT_EQ(e.params[0].name, "client");
            EXPECT_EQ(e.params[0].value, "192.0.2.10");
        }
    }
    EXPECT_TRUE(found) << m.raw;
    EXPECT_EQ(m.msg, "hello \"world\"");
}

TEST_F(LoggerPeer, Rfc5424OverUdpAndTcpWithBothFramings) {
    for (const std::string mode : {"udp", "tcp-octet", "tcp-lf"}) {
        CollectingSink sink;
        Probe probe;
        ListenerOptions o;
        o.endpoint = (mode == "udp" ? "udp" : "tcp") + std::string(":127.0.0.1:0");
        auto l = SyslogListener::start(o, sink, probe);
        ASSERT_TRUE(l);
        std::vector<std::string> args = {"--server", "127.0.0.1", "--port", std::to_string((*l)->port())};
        args.push_back(mode == "udp" ? "--udp" : "--tcp");
        if (mode == "tcp-octet") args.push_back("--octet-count");
        args.insert(args.end(), kRfc5424Args.begin(), kRfc5424Args.end());
        ASSERT_EQ(run_logger(args), 0) << mode;
        const auto got = sink.wait_for(1);
        ASSERT_EQ(got.size(), 1u) << mode;
        expect_rfc5424_from_logger(got[0]);
        EXPECT_EQ(probe.snapshot().framing_errors, 0u);
        (*l)->stop();
    }
}

TEST_F(LoggerPeer, Rfc3164OverAUnixDatagramSocket) {
    const auto dir = testing::make_temp_dir();
    const std::string path = (dir / "dev-log").string();
    CollectingSink sink;
    Probe probe;
    auto l = SyslogListener::start({"unix:" + path}, sink, probe);
    ASSERT_TRUE(l);
    ASSERT_EQ(run_logger({"--socket", path, "--socket-errors=on", "--rfc3164", "-t", "lunash", "-p", "local5.info",
                          "HSM Admin Login: incorrect password or PED key"}),
              0);
    const auto got = sink.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(got[0].malformed) << got[0].malformed_reason;
    EXPECT_EQ(got[0].format, SyslogFormat::rfc3164);
    EXPECT_EQ(got[0].facility, 21);
    EXPECT_EQ(got[0].severity, 6);
    EXPECT_EQ(got[0].app_name, "lunash");
    EXPECT_EQ(got[0].msg, "HSM Admin Login: incorrect password or PED key");
    (*l)->stop();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
