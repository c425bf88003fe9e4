// The RELP exporter against a real rsyslogd (imrelp, TLS with mutual authentication) on loopback:
// exactly once and in order when nothing fails, acknowledgement only from the server, refusal of
// untrusted clients and of servers whose name or fingerprint is not permitted, a bounded handshake.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <numeric>

#include "base/config/config.h"
#include "exporters/formats/formatter.h"
#include "exporters/relp/errc.h"
#include "exporters/relp/relp_exporter.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::exporters::relp {
namespace {

using namespace std::chrono_literals;
using testing::relp::make_audit_events;
using testing::relp::Pki;
using testing::relp::ReceiverOptions;
using testing::relp::Rsyslog;
using testing::relp::wait_for_seqs;

RelpOptions tls_options(const Rsyslog& r) {
    const Pki& pki = Pki::get();
    RelpOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(r.port());
    o.ca = pki.ca;
    o.cert = pki.client_cert;
    o.key = pki.client_key;
    o.auth_mode = "name";
    o.permitted_peers = {"server.test"};
    o.window = 128;
    o.timeout = 3s;
    o.connect_timeout = 2s;
    o.confirm_interval = 0ms;
    return o;
}

std::unique_ptr<RelpExporter> make_exporter(RelpOptions o) {
    return std::make_unique<RelpExporter>(std::move(o), formats::make_formatter(formats::FormatOptions{}));
}

/// Sends `events` in batches, then waits for every acknowledgement; returns the acknowledged count.
Result<std::uint64_t> deliver(RelpExporter& x, const std::vector<agent::Event>& events, std::size_t batch = 512) {
    for (std::size_t i = 0; i < events.size(); i += batch) {
        const auto n = std::min(batch, events.size() - i);
        HSMAUDIT_TRY(x.send(std::span(events).subspan(i, n)));
        auto acked = x.acknowledged(0ms);
        if (!acked) return acked;
        EXPECT_LE(*acked, i + n);
    }
    return x.acknowledged(5s);
}

class RelpTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(Pki::get().ok) << Pki::get().log; }
};

TEST_F(RelpTest, ReceiverConfigurationValidates) {
    Rsyslog r;
    auto [code, out] = r.validate();
    EXPECT_EQ(code, 0) << out;
}

TEST_F(RelpTest, EveryRecordExactlyOnceInOrder) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto x = make_exporter(tls_options(r));
    {
        auto st = x->connect();
        ASSERT_TRUE(st) << st.error().describe();
    }
    constexpr std::uint64_t kCount = 20'000;
    const auto events = make_audit_events(1, kCount);
    auto acked = deliver(*x, events);
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, kCount);
    x->disconnect();

    const auto seqs = wait_for_seqs(r, kCount);
    std::vector<std::uint64_t> expected(kCount);
    std::iota(expected.begin(), expected.end(), 1);
    ASSERT_EQ(seqs.size(), kCount) << r.diagnostics();
    EXPECT_EQ(seqs, expected);
    const auto st = x->stats();
    EXPECT_GE(st.connects, 1u);
    EXPECT_GT(st.bytes_sent, kCount * 50);
    EXPECT_EQ(st.peer, "relp+tls://127.0.0.1:" + std::to_string(r.port()));
}

TEST_F(RelpTest, AcknowledgedCountsOnlyWhatTheServerAnswered) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = tls_options(r);
    o.timeout = 2s;
    auto x = make_exporter(o);
    {
        auto st = x->connect();
        ASSERT_TRUE(st) << st.error().describe();
    }
    // A frozen receiver takes the bytes into its socket buffer but answers nothing.
    ::kill(r.pid(), SIGSTOP);
    const auto events = make_audit_events(1, 100);  // fewer than the window: send() does not block
    ASSERT_TRUE(x->send(events));
    auto now = x->acknowledged(0ms);
    ASSERT_TRUE(now);
    EXPECT_EQ(*now, 0u) << "nothing was answered, nothing may count as delivered";
    auto tail = x->acknowledged(1s);  // the close handshake gets no answer within the timeout
    ::kill(r.pid(), SIGCONT);
    ASSERT_FALSE(tail) << "a tail the server never answered was counted: " << *tail;
    EXPECT_EQ(tail.error().code, errc::not_confirmed) << tail.error().describe();
}

TEST_F(RelpTest, WindowBoundsTheUnacknowledgedTail) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = tls_options(r);
    o.window = 16;
    auto x = make_exporter(o);
    {
        auto st = x->connect();
        ASSERT_TRUE(st) << st.error().describe();
    }
    const auto events = make_audit_events(1, 1000);
    ASSERT_TRUE(x->send(events));
    auto acked = x->acknowledged(0ms);
    ASSERT_TRUE(acked);
    EXPECT_EQ(*acked, 1000u - 16u) << "after n frames, all but the last window are acknowledged";
    acked = x->acknowledged(5s);
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 1000u);
    // The next send opens a new session transparently and the count continues.
    ASSERT_TRUE(x->send(make_audit_events(1001, 10)));
    acked = x->acknowledged(5s);
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 1010u);
    EXPECT_EQ(wait_for_seqs(r, 1010).size(), 1010u);
}

TEST_F(RelpTest, ClientCertificateTheServerDoesNotTrustDeliversNothing) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = tls_options(r);
    o.cert = Pki::get().rogue_cert;
    o.key = Pki::get().rogue_key;
    auto x = make_exporter(o);
    bool failed = !x->connect();
    if (!failed) failed = !x->send(make_audit_events(1, 10)) || !x->acknowledged(3s);
    EXPECT_TRUE(failed) << "a client the server's CA did not sign was accepted";
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(testing::relp::received_seqs(r.received()).empty()) << r.received();
}

TEST_F(RelpTest, ClientNameTheServerDoesNotPermitDeliversNothing) {
    Rsyslog r(ReceiverOptions{.permitted_client = "someone-else.test"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto x = make_exporter(tls_options(r));
    bool failed = !x->connect();
    if (!failed) failed = !x->send(make_audit_events(1, 10)) || !x->acknowledged(3s);
    EXPECT_TRUE(failed);
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(testing::relp::received_seqs(r.received()).empty()) << r.received();
}

TEST_F(RelpTest, ServerNameNotPermittedIsRefused) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = tls_options(r);
    o.permitted_peers = {"siem.example"};
    auto x = make_exporter(o);
    auto st = x->connect();
    ASSERT_FALSE(st) << "a server named server.test was accepted as siem.example";
    EXPECT_EQ(st.error().code, errc::auth_failed) << st.error().describe();
    EXPECT_EQ(x->stats().connect_failures, 1u);
    EXPECT_TRUE(testing::relp::received_seqs(r.received()).empty());
}

TEST_F(RelpTest, ServerFingerprintChecked) {
    Rsyslog r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = tls_options(r);
    o.auth_mode = "fingerprint";
    o.permitted_peers = {"SHA1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"};
    auto wrong = make_exporter(o);
    auto st = wrong->connect();
    ASSERT_FALSE(st) << "a server with another fingerprint was accepted";
    EXPECT_EQ(st.error().code, errc::auth_failed) << st.error().describe();

    o.permitted_peers = {Pki::get().server_sha1};
    auto right = make_exporter(o);
    st = right->connect();
    ASSERT_TRUE(st) << st.error().describe();
    auto acked = deliver(*right, make_audit_events(1, 50));
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 50u);
}

TEST_F(RelpTest, HandshakeWithASilentServerIsBounded) {
    // A socket that listens (the kernel completes TCP handshakes) but never speaks TLS.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    RelpOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(ntohs(a.sin_port));
    o.ca = Pki::get().ca;
    o.cert = Pki::get().client_cert;
    o.key = Pki::get().client_key;
    o.permitted_peers = {"server.test"};
    o.connect_timeout = 1s;
    o.timeout = 1s;
    auto x = make_exporter(o);
    auto st = x->connect();  // without the watchdog this never returns (the ctest timeout fails it)
    ::close(fd);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::connect_failed) << st.error().describe();
}

TEST_F(RelpTest, PlainRelpWhenExplicitlyConfigured) {
    Rsyslog r(ReceiverOptions{.listener = testing::relp::Listener::relp_plain});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    RelpOptions o;
    o.host = "127.0.0.1";
    o.port = std::to_string(r.port());
    o.tls = false;
    auto x = make_exporter(o);
    {
        auto st = x->connect();
        ASSERT_TRUE(st) << st.error().describe();
    }
    auto acked = deliver(*x, make_audit_events(1, 300));
    ASSERT_TRUE(acked) << acked.error().describe();
    EXPECT_EQ(*acked, 300u);
    EXPECT_EQ(x->stats().peer, "relp://127.0.0.1:" + std::to_string(r.port()));
}

TEST_F(RelpTest, ConnectFailsWhenNothingListens) {
    RelpOptions o = tls_options(Rsyslog());  // its port, but rsyslogd never started
    auto x = make_exporter(o);
    auto st = x->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::connect_failed) << st.error().describe();
    EXPECT_FALSE(x->send(make_audit_events(1, 1)));
}

// ---- configuration ----

base::Config parse(const std::string& yaml) {
    std::vector<base::KeySpec> specs(relp_config_keys().begin(), relp_config_keys().end());
    static constexpr base::KeySpec kType{"exporters.*.type", base::KeyType::string, "relp", "kind"};
    specs.push_back(kType);
    auto c = base::Config::parse(yaml, "test.yaml", specs);
    EXPECT_TRUE(c) << c.error().describe();
    return c ? *c : base::Config::defaults(specs);
}

TEST_F(RelpTest, OptionsFromConfiguration) {
    const Pki& pki = Pki::get();
    auto c =
        parse("exporters:\n  siem:\n    type: relp\n    relp:\n      target: siem.example:2514\n      ca: " + pki.ca +
              "\n      cert: " + pki.client_cert + "\n      key: " + pki.client_key +
              "\n      window: 64\n      permitted_peers: a.example, b.example\n");
    auto o = read_relp_options(c, "siem");
    ASSERT_TRUE(o) << o.error().describe();
    EXPECT_EQ(o->host, "siem.example");
    EXPECT_EQ(o->port, "2514");
    EXPECT_TRUE(o->tls);
    EXPECT_EQ(o->window, 64);
    EXPECT_EQ(o->permitted_peers, (std::vector<std::string>{"a.example", "b.example"}));
    EXPECT_EQ(o->peer(), "relp+tls://siem.example:2514");

    // auth_mode name defaults its permitted peer to the target's host.
    auto d = read_relp_options(
        parse("exporters:\n  siem:\n    relp:\n      target: '[::1]:2514'\n      ca: " + pki.ca + "\n"), "siem");
    ASSERT_TRUE(d) << d.error().describe();
    EXPECT_EQ(d->host, "::1");
    EXPECT_EQ(d->permitted_peers, (std::vector<std::string>{"::1"}));
    EXPECT_EQ(d->peer(), "relp+tls://[::1]:2514");
}

TEST_F(RelpTest, ConfigurationRefusals) {
    const Pki& pki = Pki::get();
    auto refused = [](const std::string& yaml, const std::string& key) {
        auto o = read_relp_options(parse(yaml), "siem");
        ASSERT_FALSE(o) << yaml;
        EXPECT_EQ(o.error().code, errc::config_error);
        EXPECT_NE(o.error().message.find(key), std::string::npos) << o.error().message;
    };
    const std::string head = "exporters:\n  siem:\n    relp:\n";
    refused(head + "      ca: " + pki.ca + "\n", "exporters.siem.relp.target");
    refused(head + "      target: siem.example\n      ca: " + pki.ca + "\n", "exporters.siem.relp.target");
    refused(head + "      target: siem.example:99999\n      ca: " + pki.ca + "\n", "exporters.siem.relp.target");
    refused(head + "      target: siem.example:2514\n", "exporters.siem.relp.ca");
    refused(head + "      target: siem.example:2514\n      ca: " + pki.ca + "\n      cert: " + pki.client_cert + "\n",
            "exporters.siem.relp.key");
    refused(head + "      target: siem.example:2514\n      auth_mode: fingerprint\n", "permitted_peers");

    // A private key readable by others is refused, naming the mode and the chmod.
    const std::string loose = Pki::get().dir + "/loose.key";
    std::filesystem::copy_file(pki.client_key, loose, std::filesystem::copy_options::overwrite_existing);
    ::chmod(loose.c_str(), 0644);
    auto o = read_relp_options(parse(head + "      target: siem.example:2514\n      ca: " + pki.ca +
                                     "\n      cert: " + pki.client_cert + "\n      key: " + loose + "\n"),
                               "siem");
    ASSERT_FALSE(o);
    EXPECT_NE(o.error().message.find("chmod 600"), std::string::npos) << o.error().message;

    // Plain RELP only when tls: false is explicit.
    auto plain = read_relp_options(parse(head + "      target: siem.example:2514\n      tls: false\n"), "siem");
    ASSERT_TRUE(plain) << plain.error().describe();
    EXPECT_FALSE(plain->tls);
}

}  // namespace
}  // namespace hsmaudit::exporters::relp
