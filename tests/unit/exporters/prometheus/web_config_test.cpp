// The exporter-toolkit web config, bcrypt basic auth and the listen address.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "exporters/prometheus/basic_auth.h"
#include "exporters/prometheus/endpoint.h"
#include "exporters/prometheus/web_config.h"

namespace {

using namespace hsmaudit::exporters::prometheus;
namespace fs = std::filesystem;

const std::string kHash = "$2b$04$abcdefghijklmnopqrstuuY3X9bGHJzJ0B8dVvQeV3e0h1yGbB5mK";

TEST(WebConfig, ParsesTlsAndUsersResolvingRelativePaths) {
    const auto c = parse_web_config(
        "tls_server_config:\n  cert_file: certs/server.pem\n  key_file: /abs/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n"
        "basic_auth_users:\n  prometheus: '" +
            kHash + "'\n",
        "web.yml", "/etc/hsmaudit");
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_TRUE(c->tls);
    EXPECT_EQ(c->tls->cert_file, "/etc/hsmaudit/certs/server.pem");
    EXPECT_EQ(c->tls->key_file, "/abs/server.key");
    EXPECT_EQ(c->tls->client_ca_file, "/etc/hsmaudit/ca.pem");
    EXPECT_EQ(c->tls->client_auth, ClientAuth::require_and_verify);
    EXPECT_EQ(c->tls->min_version, 13);
    EXPECT_EQ(c->basic_auth_users.at("prometheus"), kHash);
}

TEST(WebConfig, EmptyFileMeansPlainHttp) {
    const auto c = parse_web_config("", "web.yml", "/");
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->tls);
    EXPECT_TRUE(c->basic_auth_users.empty());
}

TEST(WebConfig, RefusesWhatItDoesNotImplementAndNeverEchoesAHash) {
    for (const std::string bad : {
             "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
             "http_server_config:\n  http2: false\n",
             "tls_server_config:\n  cert_file: a\n",
             "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
             "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
             "basic_auth_users:\n  alice: plaintext-password\n",
             "basic_auth_users: [alice]\n",
             "tls_server_config: [\n",
         }) {
        const auto c = parse_web_config(bad, "web.yml", "/");
        EXPECT_FALSE(c) << bad;
        if (!c) {
            EXPECT_EQ(c.error().message.rfind("web.yml: ", 0), 0u) << c.error().message;
            EXPECT_EQ(c.error().message.find("plaintext-password"), std::string::npos) << c.error().message;
        }
    }
}

TEST(WebConfig, TheFileMustBePrivate) {
    const fs::path p = fs::path(::testing::TempDir()) / "web_config_mode.yml";
    std::ofstream(p) << "basic_auth_users:\n  a: '" << kHash << "'\n";
    ::chmod(p.c_str(), 0644);
    const auto open = load_web_config(p.string());
    ASSERT_FALSE(open);
    EXPECT_NE(open.error().message.find("metrics.web_config"), std::string::npos) << open.error().message;
    ::chmod(p.c_str(), 0600);
    EXPECT_TRUE(load_web_config(p.string()));
    fs::remove(p);
}

TEST(BasicAuth, ChecksBcryptAndCachesOnlySuccess) {
    const std::string hash = bcrypt_hash("s3cret", 4);
    ASSERT_EQ(hash.rfind("$2b$04$", 0), 0u) << hash;
    BasicAuth auth({{"prometheus", hash}});
    EXPECT_FALSE(auth.check("prometheus", "wrong"));
    EXPECT_FALSE(auth.check("nobody", "s3cret"));
    EXPECT_FALSE(auth.check("prometheus", ""));
    EXPECT_EQ(auth.cached(), 0u);
    EXPECT_TRUE(auth.check("prometheus", "s3cret"));
    EXPECT_EQ(auth.cached(), 1u);
    EXPECT_TRUE(auth.check("prometheus", "s3cret"));
    EXPECT_FALSE(auth.check("prometheus", "s3cret "));
    // $2y$ (htpasswd -B) hashes verify too.
    std::string y = hash;
    y[2] = 'y';
    EXPECT_TRUE(BasicAuth({{"p", y}}).check("p", "s3cret"));
}

TEST(Listen, HostAndPort) {
    EXPECT_EQ(parse_listen("127.0.0.1:8479")->second, 8479);
    EXPECT_EQ(parse_listen("[::1]:0")->first, "[::1]");
    for (const char* bad : {"8479", "127.0.0.1", ":8479", "::1:8479", "127.0.0.1:65536", "127.0.0.1:x", "[::1:80"})
        EXPECT_FALSE(parse_listen(bad)) << bad;
}

TEST(MetricsKeys, DefaultIsLoopbackOutsideTheExporterRangeAndOff) {
    std::map<std::string, std::string> defaults;
    for (const auto& k : metrics_config_keys()) defaults[std::string(k.key)] = std::string(k.default_value);
    EXPECT_EQ(defaults.at("metrics.enabled"), "false");
    const auto listen = parse_listen(defaults.at("metrics.listen"));
    ASSERT_TRUE(listen);
    EXPECT_EQ(listen->first, "127.0.0.1");
    EXPECT_TRUE(listen->second < 9100 || listen->second > 9999);
    EXPECT_EQ(defaults.at("metrics.web_config"), "");
}

}  // namespace
