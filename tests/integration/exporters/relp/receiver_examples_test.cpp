// config/examples/: every receiver configuration that Debian packages is checked. The rsyslog
// examples, with their paths, names and ports pointed at a temp dir and the test PKI, must pass
// `rsyslogd -N1`; the two that write a file also receive records from the agent's exporters. The
// syslog-ng example is syntax-checked when syslog-ng is installed (it is not in this project's
// package list, so usually skipped).
#include <gtest/gtest.h>
#include <unistd.h>

#include "exporters/formats/formatter.h"
#include "exporters/relp/relp_exporter.h"
#include "exporters/syslog/syslog_exporter.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::testing::relp {
namespace {

using namespace std::chrono_literals;

std::string example(const std::string& name) {
    return Process::slurp(std::string(HSMAUDIT_SOURCE_DIR) + "/config/examples/" + name);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
}

/// An example with its deployment paths moved into `dir`, the test PKI, client.test, `port`.
struct Localized {
    std::string dir;
    std::string conf;
    int port = 0;
    std::string log_dir;
};

Localized localize(const std::string& name, const std::string& listen_port) {
    const Pki& pki = Pki::get();
    Localized l;
    l.dir = make_temp_dir("example");
    l.port = free_port();
    l.log_dir = l.dir + "/log";
    fs::create_directories(l.dir + "/spool");
    fs::create_directories(l.log_dir);
    std::string text = example(name);
    replace_all(text, "/etc/rsyslog-hsm/tls/qradar-ca.pem", pki.ca);
    replace_all(text, "/etc/rsyslog-hsm/tls/ca.pem", pki.ca);
    replace_all(text, "/etc/rsyslog-hsm/tls/server.pem", pki.server_cert);
    replace_all(text, "/etc/rsyslog-hsm/tls/server.key", pki.server_key);
    replace_all(text, "/etc/syslog-ng/tls/ca.pem", pki.ca);
    replace_all(text, "/etc/syslog-ng/tls/server.pem", pki.server_cert);
    replace_all(text, "/etc/syslog-ng/tls/server.key", pki.server_key);
    replace_all(text, "/var/spool/rsyslog-hsm", l.dir + "/spool");
    replace_all(text, "/var/log/hsm", l.log_dir);
    replace_all(text, "hsm1.example.com", "client.test");
    replace_all(text, "port=\"" + listen_port + "\" address=\"0.0.0.0\"",
                "port=\"" + std::to_string(l.port) + "\" address=\"127.0.0.1\"");
    replace_all(text, "input(type=\"imrelp\" port=\"" + listen_port + "\"",
                "input(type=\"imrelp\" port=\"" + std::to_string(l.port) + "\" address=\"127.0.0.1\"");
    replace_all(text, "input(type=\"imtcp\" port=\"" + listen_port + "\"",
                "input(type=\"imtcp\" port=\"" + std::to_string(l.port) + "\" address=\"127.0.0.1\"");
    l.conf = l.dir + "/" + name;
    write_text(l.conf, text);
    return l;
}

class ReceiverExamples : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(Pki::get().ok) << Pki::get().log; }
};

TEST_F(ReceiverExamples, RsyslogExamplesValidate) {
    for (const char* name : {"rsyslog-relp-tls-to-file.conf", "rsyslog-relp-tls-to-splunk.conf",
                             "rsyslog-relp-tls-to-qradar.conf", "rsyslog-tls-syslog-6514.conf"}) {
        const std::string port = std::string(name).find("6514") != std::string::npos ? "6514" : "2514";
        auto l = localize(name, port);
        ASSERT_NE(Process::slurp(l.conf).find(std::to_string(l.port)), std::string::npos) << name;
        auto [code, out] = run({"/usr/sbin/rsyslogd", "-N1", "-f", l.conf}, l.dir + "/validate");
        EXPECT_EQ(code, 0) << name << ":\n" << out;
        fs::remove_all(l.dir);
    }
}

/// Starts rsyslogd on a localized example; returns the process (running, port open) or nullptr.
std::unique_ptr<Process> start(const Localized& l) {
    std::vector<std::string> argv;
    if (::access("/usr/bin/setpriv", X_OK) == 0) argv = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
    for (const std::string& a : {std::string("/usr/sbin/rsyslogd"), std::string("-n"), std::string("-f"), l.conf,
                                 std::string("-i"), l.dir + "/rsyslog.pid"})
        argv.push_back(a);
    auto p = std::make_unique<Process>(argv, l.dir + "/out", l.dir + "/err");
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline && p->running()) {
        if (port_listening(l.port)) return p;
        std::this_thread::sleep_for(20ms);
    }
    return nullptr;
}

std::vector<std::uint64_t> wait_file(const std::string& path, std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
        auto seqs = received_seqs(Process::slurp(path));
        if (seqs.size() >= n || std::chrono::steady_clock::now() > deadline) return seqs;
        std::this_thread::sleep_for(50ms);
    }
}

TEST_F(ReceiverExamples, RelpFileExampleReceivesTheAgent) {
    auto l = localize("rsyslog-relp-tls-to-file.conf", "2514");
    auto p = start(l);
    ASSERT_TRUE(p) << Process::slurp(l.dir + "/err");
    exporters::relp::RelpOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(l.port);
    o.ca = Pki::get().ca;
    o.cert = Pki::get().client_cert;
    o.key = Pki::get().client_key;
    o.permitted_peers = {"server.test"};
    o.confirm_interval = 0ms;
    exporters::relp::RelpExporter x(o, exporters::formats::make_formatter(exporters::formats::FormatOptions{}));
    ASSERT_TRUE(x.connect());
    const auto events = make_audit_events(1, 100);
    ASSERT_TRUE(x.send(events));
    auto acked = x.acknowledged(5s);
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 100u);
    EXPECT_EQ(wait_file(l.log_dir + "/audit.log", 100).size(), 100u);
    p.reset();
    fs::remove_all(l.dir);
}

TEST_F(ReceiverExamples, TlsSyslogExampleReceivesTheAgent) {
    auto l = localize("rsyslog-tls-syslog-6514.conf", "6514");
    auto p = start(l);
    ASSERT_TRUE(p) << Process::slurp(l.dir + "/err");
    exporters::syslog::SyslogOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(l.port);
    o.ca = Pki::get().ca;
    o.cert = Pki::get().client_cert;
    o.key = Pki::get().client_key;
    o.permitted_peers = {"server.test"};
    exporters::syslog::SyslogExporter x(o, exporters::formats::make_formatter(exporters::formats::FormatOptions{}));
    auto st = x.connect();
    ASSERT_TRUE(st) << st.error().describe();
    ASSERT_TRUE(x.send(make_audit_events(1, 100)));
    EXPECT_EQ(wait_file(l.log_dir + "/syslog-tls.log", 100).size(), 100u);
    p.reset();
    fs::remove_all(l.dir);
}

TEST_F(ReceiverExamples, SyslogNgExampleSyntax) {
    const std::string bin = ::access("/usr/sbin/syslog-ng", X_OK) == 0 ? "/usr/sbin/syslog-ng" : "";
    if (bin.empty())
        GTEST_SKIP() << "syslog-ng is not installed (not among the Debian packages scripts/setup installs): "
                        "config/examples/syslog-ng-tls-6514.conf is not checked here";
    auto l = localize("syslog-ng-tls-6514.conf", "6514");
    auto [code, out] = run({bin, "--syntax-only", "--cfgfile", l.conf}, l.dir + "/syntax");
    EXPECT_EQ(code, 0) << out;
    fs::remove_all(l.dir);
}

}  // namespace
}  // namespace hsmaudit::testing::relp
