// The metrics endpoint over real HTTP: scraped with curl, checked by promtool; basic auth with
// bcrypt (wrong password refused), TLS through civetweb (plain HTTP and untrusted clients
// refused), client certificates, and the errors a bad setup gets.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>

#include "agent/engine/pipeline/probe.h"
#include "collectors/module/probe.h"
#include "collectors/syslog/probe_collector.h"
#include "exporters/prometheus/basic_auth.h"
#include "exporters/prometheus/endpoint.h"
#include "exporters/prometheus/errc.h"
#include "tests/integration/exporters/prometheus/prom_test_util.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::testing::prom;
namespace ep = hsmaudit::exporters::prometheus;

/// Families as a running agent would have them, without an agent.
class FakeAgent final : public ::prometheus::Collectable {
public:
    std::vector<::prometheus::MetricFamily> Collect() const override {
        agent::DrainStats d;
        d.records = d.records_verified = 1234;
        d.ring_fill = 0.12;
        d.seconds_to_reserve = -1;
        d.faults_by_kind[1] = 2;
        const double bounds[] = {0.001, 0.01, 0.1};
        agent::LatencyHistogram h(bounds);
        h.observe(0.004);
        auto out = agent::drain_families(d, h.snapshot(), h.snapshot());
        hsmcore::ring::RingStatus st;
        st.capacity = 1 << 20;
        st.used_bytes = 1000;
        module_.record(st, 1'700'000'000'000);
        for (auto& f : collectors::ModuleProbeCollector(module_).Collect()) out.push_back(std::move(f));
        for (auto& f : collectors::syslog::ProbeCollector({{"udp:127.0.0.1:5514", &syslog_}}).Collect())
            out.push_back(std::move(f));
        return out;
    }

private:
    mutable collectors::ModuleProbe module_;
    collectors::syslog::Probe syslog_;
};

class MetricsEndpointTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(tool("curl").empty()) << "curl is not installed";
        ASSERT_FALSE(tool("promtool").empty()) << "promtool is not installed (package prometheus)";
    }

    Result<std::unique_ptr<ep::MetricsEndpoint>> start(const std::string& web_config = "",
                                                       const std::string& listen = "127.0.0.1:0") {
        ep::EndpointOptions o;
        o.listen = listen;
        o.web_config = web_config;
        return ep::MetricsEndpoint::start(o, {std::make_shared<FakeAgent>()});
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256: fast).
    void make_certs() {
        const std::string o = tool("openssl");
        ASSERT_FALSE(o.empty());
        auto ok = [&](const std::string& cmd) {
            const auto [code, out] = sh(cmd, dir_ / "openssl");
            ASSERT_EQ(code, 0) << cmd << "\n" << out;
        };
        const std::string d = dir_.path();
        auto cat = [](const auto&... parts) {
            std::string out;
            ((out += parts), ...);
            return out;
        };
        ok(cat(o, " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", d, "/ca.key -out ", d,
               "/ca.pem -days 2 -subj /CN=test-ca"));
        for (const std::string who : {"server", "client"}) {
            const std::string san = who == "server" ? "IP:127.0.0.1" : "DNS:client.test";
            ok(cat(o, " req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", d, "/", who, ".key -out ", d,
                   "/", who, ".csr -subj /CN=", who));
            write(dir_ / (who + ".ext"), cat("subjectAltName=", san, "\n"));
            ok(cat(o, " x509 -req -in ", d, "/", who, ".csr -CA ", d, "/ca.pem -CAkey ", d,
                   "/ca.key -CAcreateserial -days 2 -out ", d, "/", who, ".pem -extfile ", d, "/", who, ".ext"));
            fs::permissions(dir_ / (who + ".key"), fs::perms::owner_read | fs::perms::owner_write);
        }
    }

    TempDir dir_;
};

TEST_F(MetricsEndpointTest, PlainScrapePassesPromtool) {
    auto e = start();
    ASSERT_TRUE(e) << e.error().describe();
    ASSERT_NE((*e)->port(), 0);
    EXPECT_FALSE((*e)->tls());
    const auto r = http_get("http://127.0.0.1:" + std::to_string((*e)->port()) + "/metrics", dir_ / "get");
    ASSERT_EQ(r.status, 200) << r.body;
    for (const char* name : {"hsmaudit_build_info{", "process_resident_memory_bytes ", "process_start_time_seconds ",
                             "hsmaudit_drain_records_stored_total 1234", "hsmaudit_ring_predicted_full_seconds +Inf",
                             "hsmaudit_chain_verification_failures_total{kind=\"sequence_gap\"} 2",
                             "hsmaudit_drain_batch_duration_seconds_bucket{le=\"0.01\"} 1",
                             "hsmaudit_syslog_datagrams_dropped_total{listener=\"udp:127.0.0.1:5514\"} 0"})
        EXPECT_NE(r.body.find(name), std::string::npos) << name << "\n" << r.body;
    write(dir_ / "scrape.txt", r.body);
    const auto [code, out] = sh(tool("promtool") + " check metrics < " + (dir_ / "scrape.txt"), dir_ / "promtool");
    EXPECT_EQ(code, 0) << out;

    // promtool must be able to fail here: a broken exposition is refused.
    write(dir_ / "bad.txt", "# TYPE hsmaudit_x counter\nhsmaudit_x 1\n# TYPE hsmaudit_x counter\nhsmaudit_x 2\n");
    EXPECT_NE(sh(tool("promtool") + " check metrics < " + (dir_ / "bad.txt"), dir_ / "promtool2").first, 0);
}

TEST_F(MetricsEndpointTest, BasicAuthRefusesWrongPasswords) {
    write(dir_ / "web.yml", "basic_auth_users:\n  prometheus: '" + ep::bcrypt_hash("s3cret", 4) + "'\n");
    auto e = start(dir_ / "web.yml");
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_TRUE((*e)->authenticated());
    const std::string url = "http://127.0.0.1:" + std::to_string((*e)->port()) + "/metrics";
    EXPECT_EQ(http_get(url, dir_ / "none").status, 401);
    EXPECT_EQ(http_get(url, dir_ / "wrong", {"-u", "prometheus:wrong"}).status, 401);
    EXPECT_EQ(http_get(url, dir_ / "user", {"-u", "nobody:s3cret"}).status, 401);
    // Malformed headers: not base64, no colon, non-zero pad bits (a lenient decoder would read the
    // right credentials), no padding. Only canonical base64 is read.
    for (const char* value : {"Basic !!!!", "Basic cHJvbWV0aGV1cw==", "Basic cHJvbWV0aGV1czpzM2NyZXR=",
                              "Basic cHJvbWV0aGV1czpzM2NyZXQ", "Basic "})
        EXPECT_EQ(http_get(url, dir_ / "bad", {"-H", std::string("Authorization: ") + value}).status, 401) << value;
    EXPECT_EQ(http_get(url, dir_ / "canonical", {"-H", "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ="}).status, 200);
    const auto ok = http_get(url, dir_ / "ok", {"-u", "prometheus:s3cret"});
    EXPECT_EQ(ok.status, 200);
    EXPECT_NE(ok.body.find("hsmaudit_build_info"), std::string::npos);
}

// /health and /ready beside /metrics (issue 16 item 4): 200 "ok" or 503 with the reason, from the
// checks the owner gives, asked on every request (a change shows at the next request); a path
// without a check, or unknown, is 404.
TEST_F(MetricsEndpointTest, HealthAndReadyAnswer200OrA503WithTheReason) {
    std::atomic<bool> live{true};
    std::atomic<bool> ready{false};
    ep::HealthChecks checks{[&] {
                                return ep::HealthAnswer{live.load(), live ? "" : "the drain is stuck"};
                            },
                            [&] {
                                return ep::HealthAnswer{ready.load(), ready ? "" : "the drain's last step failed"};
                            }};
    ep::EndpointOptions o;
    o.listen = "127.0.0.1:0";
    auto e = ep::MetricsEndpoint::start(o, {std::make_shared<FakeAgent>()}, checks);
    ASSERT_TRUE(e) << e.error().describe();
    const std::string base = "http://127.0.0.1:" + std::to_string((*e)->port());
    auto h = http_get(base + "/health", dir_ / "h1");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body, "ok\n");
    auto r = http_get(base + "/ready", dir_ / "r1");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "the drain's last step failed\n");
    ready = true;
    live = false;
    r = http_get(base + "/ready", dir_ / "r2");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
    h = http_get(base + "/health", dir_ / "h2");
    EXPECT_EQ(h.status, 503);
    EXPECT_EQ(h.body, "the drain is stuck\n");
    EXPECT_EQ(http_get(base + "/metrics", dir_ / "m").status, 200);
    EXPECT_EQ(http_get(base + "/nothing", dir_ / "n").status, 404);
    EXPECT_EQ(http_get(base + "/health/x", dir_ / "hx").status, 404);

    // Without checks (an endpoint of metrics only) the paths do not exist.
    auto bare = start();
    ASSERT_TRUE(bare) << bare.error().describe();
    EXPECT_EQ(http_get("http://127.0.0.1:" + std::to_string((*bare)->port()) + "/health", dir_ / "b").status, 404);
}

TEST_F(MetricsEndpointTest, HealthAndReadyNeedTheSameBasicAuthAsMetrics) {
    write(dir_ / "web.yml", "basic_auth_users:\n  prometheus: '" + ep::bcrypt_hash("s3cret", 4) + "'\n");
    ep::EndpointOptions o;
    o.listen = "127.0.0.1:0";
    o.web_config = dir_ / "web.yml";
    ep::HealthChecks checks{[] { return ep::HealthAnswer{true, ""}; }, [] { return ep::HealthAnswer{true, ""}; }};
    auto e = ep::MetricsEndpoint::start(o, {std::make_shared<FakeAgent>()}, checks);
    ASSERT_TRUE(e) << e.error().describe();
    const std::string base = "http://127.0.0.1:" + std::to_string((*e)->port());
    for (const char* path : {"/health", "/ready", "/metrics"}) {
        EXPECT_EQ(http_get(base + path, dir_ / "none").status, 401) << path;
        EXPECT_EQ(http_get(base + path, dir_ / "wrong", {"-u", "prometheus:wrong"}).status, 401) << path;
        EXPECT_EQ(http_get(base + path, dir_ / "ok", {"-u", "prometheus:s3cret"}).status, 200) << path;
    }
}

TEST_F(MetricsEndpointTest, WebConfigReadableByOthersIsRefused) {
    write(dir_ / "web.yml", "basic_auth_users:\n  prometheus: '" + ep::bcrypt_hash("s3cret", 4) + "'\n", 0644);
    auto e = start(dir_ / "web.yml");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, ep::errc::config_error);
}

// Debian 12's civetweb 1.15 with OpenSSL 3 crashes on the first TLS handshake (endpoint.cpp):
// there the endpoint must refuse TLS at start, naming why, and never listen.
TEST_F(MetricsEndpointTest, TlsRefusedWhereCivetwebCannotDoIt) {
    if (ep::civetweb_tls_usable()) GTEST_SKIP() << "this system's civetweb can do TLS: the TLS tests below apply";
    make_certs();
    write(dir_ / "web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n");
    const int port = free_port();
    auto e = start(dir_ / "web.yml", "127.0.0.1:" + std::to_string(port));
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, ep::errc::tls_error);
    EXPECT_NE(e.error().message.find("TLS-terminating proxy"), std::string::npos) << e.error().message;
    EXPECT_EQ(http_get("http://127.0.0.1:" + std::to_string(port) + "/metrics", dir_ / "none").status, 0);
}

TEST_F(MetricsEndpointTest, TlsWithBasicAuth) {
    if (!ep::civetweb_tls_usable()) GTEST_SKIP() << "civetweb 1.15 with OpenSSL 3 cannot do TLS (see the test above)";
    make_certs();
    write(dir_ / "web.yml",
          "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
          "basic_auth_users:\n  prometheus: '" +
              ep::bcrypt_hash("s3cret", 4) + "'\n");
    auto e = start(dir_ / "web.yml");
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_TRUE((*e)->tls());
    const std::string port = std::to_string((*e)->port());
    const std::string https = "https://127.0.0.1:" + port + "/metrics";
    const auto ok = http_get(https, dir_ / "ok", {"--cacert", dir_ / "ca.pem", "-u", "prometheus:s3cret"});
    EXPECT_EQ(ok.status, 200) << "curl exit " << ok.curl_exit;
    EXPECT_NE(ok.body.find("hsmaudit_ring_fill_ratio"), std::string::npos);
    EXPECT_EQ(http_get(https, dir_ / "wrong", {"--cacert", dir_ / "ca.pem", "-u", "prometheus:nope"}).status, 401);
    // A client that does not trust the server's CA gets no response; neither does plain HTTP.
    EXPECT_EQ(http_get(https, dir_ / "untrusted", {"-u", "prometheus:s3cret"}).status, 0);
    EXPECT_EQ(http_get("http://127.0.0.1:" + port + "/metrics", dir_ / "plain", {"-u", "prometheus:s3cret"}).status, 0);
    // TLS 1.1 is below the default minimum (TLS 1.2).
    EXPECT_EQ(
        http_get(https, dir_ / "old", {"--cacert", dir_ / "ca.pem", "--tls-max", "1.1", "-u", "prometheus:s3cret"})
            .status,
        0);
}

TEST_F(MetricsEndpointTest, ClientCertificatesWhenRequired) {
    if (!ep::civetweb_tls_usable()) GTEST_SKIP() << "civetweb 1.15 with OpenSSL 3 cannot do TLS";
    make_certs();
    write(dir_ / "web.yml",
          "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
          "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n");
    auto e = start(dir_ / "web.yml");
    ASSERT_TRUE(e) << e.error().describe();
    const std::string https = "https://127.0.0.1:" + std::to_string((*e)->port()) + "/metrics";
    EXPECT_EQ(http_get(https, dir_ / "nocert", {"--cacert", dir_ / "ca.pem"}).status, 0);
    const auto ok =
        http_get(https, dir_ / "cert",
                 {"--cacert", dir_ / "ca.pem", "--cert", dir_ / "client.pem", "--key", dir_ / "client.key"});
    EXPECT_EQ(ok.status, 200);
}

TEST_F(MetricsEndpointTest, BadSetupsAreErrorsNotCrashes) {
    make_certs();
    if (ep::civetweb_tls_usable()) {
        // A key others may read.
        fs::permissions(dir_ / "server.key", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
        write(dir_ / "web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n");
        auto leaky = start(dir_ / "web.yml");
        ASSERT_FALSE(leaky);
        EXPECT_EQ(leaky.error().code, ep::errc::tls_error);
        // A certificate that does not match the key.
        fs::permissions(dir_ / "server.key", fs::perms::owner_read | fs::perms::owner_write);
        write(dir_ / "web2.yml", "tls_server_config:\n  cert_file: client.pem\n  key_file: server.key\n");
        auto mismatch = start(dir_ / "web2.yml");
        ASSERT_FALSE(mismatch);
        EXPECT_EQ(mismatch.error().code, ep::errc::tls_error);
    }
    // A port already taken.
    auto first = start();
    ASSERT_TRUE(first) << first.error().describe();
    auto second = start("", "127.0.0.1:" + std::to_string((*first)->port()));
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ep::errc::bind_failed);
    // Not an address.
    EXPECT_EQ(start("", "localhost").error().code, ep::errc::config_error);
}

// Issue 17: idle connections to the metrics port must not starve the scrapes. civetweb gives each
// connection a worker from accept to close; before, 2 workers and a 10 s request timeout let two
// idle connections time every scrape out. Now: more connections than workers sit idle, and an
// authorised scrape is still answered within request_timeout * ceil((idle + 1) / threads) plus
// slack; the old settings, same idle connections, are shown to miss that bound (the test can fail).
TEST_F(MetricsEndpointTest, IdleConnectionsDoNotStarveScrapes) {
    write(dir_ / "web.yml", "basic_auth_users:\n  prometheus: '" + ep::bcrypt_hash("s3cret", 4) + "'\n");
    struct Case {
        int threads;
        int request_timeout_ms;
        bool answers;
    };
    constexpr int kIdle = 10;
    for (const Case c : {Case{4, 1000, true}, Case{2, 10'000, false}}) {
        SCOPED_TRACE("threads " + std::to_string(c.threads) + ", request timeout " +
                     std::to_string(c.request_timeout_ms) + " ms");
        ep::EndpointOptions o;
        o.listen = "127.0.0.1:0";
        o.web_config = dir_ / "web.yml";
        o.threads = c.threads;
        o.request_timeout_ms = c.request_timeout_ms;
        auto e = ep::MetricsEndpoint::start(o, {std::make_shared<FakeAgent>()});
        ASSERT_TRUE(e) << e.error().describe();
        std::vector<UniqueFd> idle;
        for (int i = 0; i < kIdle; ++i) {
            UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons((*e)->port());
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            idle.push_back(std::move(fd));  // sends nothing, ever
        }
        // ceil((10 + 1) / 4) = 3 timeouts of 1 s, plus slack for a loaded machine: 6 s.
        const auto bound = std::chrono::seconds(6);
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = http_get("http://127.0.0.1:" + std::to_string((*e)->port()) + "/metrics", dir_ / "idle",
                                {"-u", "prometheus:s3cret", "--max-time", "6"});
        const auto took = std::chrono::steady_clock::now() - t0;
        if (c.answers) {
            EXPECT_EQ(r.status, 200) << "curl exit " << r.curl_exit;
            EXPECT_NE(r.body.find("hsmaudit_build_info"), std::string::npos);
            EXPECT_LT(took, bound);
        } else {
            EXPECT_NE(r.status, 200) << "the old settings answered within the bound: the test cannot fail";
        }
    }
}

}  // namespace
