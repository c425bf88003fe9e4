// The syslog exporter against a real rsyslogd: RFC 5425 TLS to imtcp with the openssl stream
// driver (mutual authentication), RFC 6587 octet counting over plain TCP, UDP only when allowed;
// refusal of a server whose name or fingerprint is not permitted; a broken connection is an error.
#include <gtest/gtest.h>

#include <numeric>

#include "base/config/config.h"
#include "exporters/formats/formatter.h"
#include "exporters/syslog/errc.h"
#include "exporters/syslog/syslog_exporter.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::exporters::syslog {
namespace {

using namespace std::chrono_literals;
using testing::relp::Listener;
using testing::relp::make_audit_events;
using testing::relp::Pki;
using testing::relp::received_seqs;
using testing::relp::ReceiverOptions;
using testing::relp::Rsyslog;
using testing::relp::wait_for_seqs;

SyslogOptions options_for(const Rsyslog& r, Protocol p) {
    const Pki& pki = Pki::get();
    SyslogOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(r.port());
    o.protocol = p;
    if (p == Protocol::tls) {
        o.ca = pki.ca;
        o.cert = pki.client_cert;
        o.key = pki.client_key;
        o.auth_mode = "name";
        o.permitted_peers = {"server.test"};
    }
    o.timeout = 3s;
    o.connect_timeout = 2s;
    return o;
}

std::unique_ptr<SyslogExporter> make_exporter(SyslogOptions o) {
    return std::make_unique<SyslogExporter>(std::move(o), formats::make_formatter(formats::FormatOptions{}));
}

Result<std::uint64_t> deliver(SyslogExporter& x, const std::vector<agent::Event>& events, std::size_t batch = 512) {
    for (std::size_t i = 0; i < events.size(); i += batch) {
        HSMAUDIT_TRY(x.send(std::span(events).subspan(i, std::min(batch, events.size() - i))));
    }
    return x.acknowledged(0ms);
}

void expect_exactly_once_in_order(const Rsyslog& r, std::uint64_t count) {
    const auto seqs = wait_for_seqs(r, count);
    std::vector<std::uint64_t> expected(count);
    std::iota(expected.begin(), expected.end(), 1);
    ASSERT_EQ(seqs.size(), count) << r.diagnostics();
    EXPECT_EQ(seqs, expected);
}

class SyslogTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(Pki::get().ok) << Pki::get().log; }
};

TEST_F(SyslogTest, ReceiverConfigurationsValidate) {
    for (auto l : {Listener::syslog_tls, Listener::syslog_tcp, Listener::syslog_udp}) {
        Rsyslog r(ReceiverOptions{.listener = l});
        auto [code, out] = r.validate();
        EXPECT_EQ(code, 0) << out;
    }
}

TEST_F(SyslogTest, Rfc5425TlsExactlyOnceInOrder) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto x = make_exporter(options_for(r, Protocol::tls));
    auto st = x->connect();
    ASSERT_TRUE(st) << st.error().describe();
    constexpr std::uint64_t kCount = 20'000;
    auto acked = deliver(*x, make_audit_events(1, kCount));
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, kCount);
    expect_exactly_once_in_order(r, kCount);
    x->disconnect();
    EXPECT_EQ(x->stats().peer, "syslog+tls://127.0.0.1:" + std::to_string(r.port()));
}

TEST_F(SyslogTest, Rfc5425WrongServerNameRefused) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = options_for(r, Protocol::tls);
    o.permitted_peers = {"siem.example"};
    auto x = make_exporter(o);
    auto st = x->connect();
    ASSERT_FALSE(st) << "server.test was accepted as siem.example";
    EXPECT_EQ(st.error().code, errc::auth_failed) << st.error().describe();
    EXPECT_EQ(x->stats().connect_failures, 1u);
}

TEST_F(SyslogTest, Rfc5425ServerFromAnotherCaRefused) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = options_for(r, Protocol::tls);
    o.ca = Pki::get().rogue_ca;
    auto st = make_exporter(o)->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::auth_failed) << st.error().describe();
}

TEST_F(SyslogTest, Rfc5425Fingerprint) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = options_for(r, Protocol::tls);
    o.auth_mode = "fingerprint";
    o.ca.clear();
    o.permitted_peers = {
        "SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:"
        "CC:DD:EE:FF"};
    auto st = make_exporter(o)->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::auth_failed) << st.error().describe();

    o.permitted_peers = {Pki::get().server_sha256};
    auto x = make_exporter(o);
    st = x->connect();
    ASSERT_TRUE(st) << st.error().describe();
    auto acked = deliver(*x, make_audit_events(1, 100));
    ASSERT_TRUE(acked) << acked.error().describe();
    expect_exactly_once_in_order(r, 100);
}

TEST_F(SyslogTest, Rfc5425UntrustedClientCertificateDeliversNothing) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = options_for(r, Protocol::tls);
    o.cert = Pki::get().rogue_cert;
    o.key = Pki::get().rogue_key;
    auto x = make_exporter(o);
    if (x->connect()) (void)deliver(*x, make_audit_events(1, 10));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(received_seqs(r.received()).empty()) << r.received();
}

TEST_F(SyslogTest, Rfc6587OctetCountedTcpExactlyOnceInOrder) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tcp});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto x = make_exporter(options_for(r, Protocol::tcp));
    ASSERT_TRUE(x->connect());
    constexpr std::uint64_t kCount = 5'000;
    auto acked = deliver(*x, make_audit_events(1, kCount));
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, kCount);
    expect_exactly_once_in_order(r, kCount);
}

TEST_F(SyslogTest, BrokenConnectionIsAnError) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_tls});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto x = make_exporter(options_for(r, Protocol::tls));
    ASSERT_TRUE(x->connect());
    ASSERT_TRUE(deliver(*x, make_audit_events(1, 10)));
    r.kill();
    // The next send or acknowledgement notices the closed connection (RST or EOF), at the latest
    // when the kernel refuses a write.
    bool failed = false;
    for (int i = 0; i < 50 && !failed; ++i) {
        failed = !x->send(make_audit_events(11, 100)) || !x->acknowledged(0ms);
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(failed);
    EXPECT_FALSE(x->connect()) << "nothing listens any more";
}

TEST_F(SyslogTest, UdpWhenAllowed) {
    Rsyslog r(ReceiverOptions{.listener = Listener::syslog_udp});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    std::this_thread::sleep_for(200ms);  // imudp binds after the pid file is written
    auto x = make_exporter(options_for(r, Protocol::udp));
    ASSERT_TRUE(x->connect());
    // A small burst on loopback: the socket buffers hold it all.
    auto acked = deliver(*x, make_audit_events(1, 50), 10);
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 50u);
    expect_exactly_once_in_order(r, 50);
}

// ---- configuration ----

base::Config parse(const std::string& yaml) {
    auto c = base::Config::parse(yaml, "test.yaml", syslog_config_keys());
    EXPECT_TRUE(c) << c.error().describe();
    return c ? *c : base::Config::defaults(syslog_config_keys());
}

TEST_F(SyslogTest, UdpRefusedWithoutAllowLoss) {
    const std::string head = "exporters:\n  q:\n    syslog:\n      target: qradar.example:514\n      protocol: udp\n";
    auto refused = read_syslog_options(parse(head), "q");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("exporters.q.syslog.allow_loss"), std::string::npos)
        << refused.error().message;
    auto allowed = read_syslog_options(parse(head + "      allow_loss: true\n"), "q");
    ASSERT_TRUE(allowed) << allowed.error().describe();
    EXPECT_EQ(allowed->protocol, Protocol::udp);
    EXPECT_EQ(allowed->peer(), "syslog+udp://qradar.example:514");
}

TEST_F(SyslogTest, TlsOptionsAndRefusals) {
    const Pki& pki = Pki::get();
    auto o = read_syslog_options(
        parse("exporters:\n  q:\n    syslog:\n      target: qradar.example:6514\n      ca: " + pki.ca + "\n"), "q");
    ASSERT_TRUE(o) << o.error().describe();
    EXPECT_EQ(o->protocol, Protocol::tls);
    EXPECT_EQ(o->permitted_peers, (std::vector<std::string>{"qradar.example"}));
    auto no_ca = read_syslog_options(parse("exporters:\n  q:\n    syslog:\n      target: qradar.example:6514\n"), "q");
    ASSERT_FALSE(no_ca);
    EXPECT_NE(no_ca.error().message.find("exporters.q.syslog.ca"), std::string::npos);
    auto bad_target = read_syslog_options(parse("exporters:\n  q:\n    syslog:\n      target: qradar.example\n"), "q");
    ASSERT_FALSE(bad_target);
    EXPECT_NE(bad_target.error().message.find("exporters.q.syslog.target"), std::string::npos);
}

}  // namespace
}  // namespace hsmaudit::exporters::syslog
