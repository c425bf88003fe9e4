// The keys exporters.*.splunk_hec.*: defaults, each refusal naming its key, the token file's mode
// and content checks (the error names the file, never the token), the factory's validate() and
// endpoint().
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/config/config.h"
#include "exporters/formats/formatter.h"
#include "exporters/hec/errc.h"
#include "exporters/hec/hec_exporter.h"

namespace hsmaudit::exporters::hec {
namespace {

namespace fs = std::filesystem;

class NoAlerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&&) override {}
};

class HecOptionsTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hsmaudit-hec-opt-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        write("token", "0b6f1c3e-secret-token\n", 0600);
        write("ca.pem", "not a certificate\n", 0644);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    void write(const std::string& name, const std::string& text, unsigned mode) const {
        std::ofstream(path(name), std::ios::binary | std::ios::trunc) << text;
        ::chmod(path(name).c_str(), mode);
    }
    Result<base::Config> parse(const std::string& body) const {
        std::vector<base::KeySpec> keys;
        const auto f = formats::format_config_keys();
        keys.insert(keys.end(), f.begin(), f.end());
        const auto h = hec_config_keys();
        keys.insert(keys.end(), h.begin(), h.end());
        return base::Config::parse("exporters:\n  splunk:\n    format: hec\n    splunk_hec:\n" + body, "test.yaml",
                                   keys);
    }
    /// The options of `body` (lines under splunk_hec:, 6 spaces), or the error message.
    std::string error_of(const std::string& body) const {
        auto c = parse(body);
        if (!c) return c.error().message;
        auto o = read_hec_options(*c, "splunk");
        if (!o) return o.error().message;
        return "";
    }
    std::string base() const {
        return "      target: splunk.example.com:8088\n      ca: " + path("ca.pem") +
               "\n      token_file: " + path("token") + "\n";
    }
    std::string dir_;
};

TEST_F(HecOptionsTest, DefaultsAndUrl) {
    auto c = parse(base());
    ASSERT_TRUE(c) << c.error().message;
    auto o = read_hec_options(*c, "splunk");
    ASSERT_TRUE(o) << o.error().message;
    EXPECT_EQ(o->host, "splunk.example.com");
    EXPECT_EQ(o->port, "8088");
    EXPECT_TRUE(o->tls);
    EXPECT_TRUE(o->ack);
    EXPECT_TRUE(o->gzip);
    EXPECT_EQ(o->batch_events, 100u);
    EXPECT_EQ(o->batch_bytes, 1024u * 1024u);
    EXPECT_EQ(o->ack_timeout.count(), 20'000);
    EXPECT_EQ(o->base_url(), "https://splunk.example.com:8088");
    EXPECT_EQ(o->peer(), "splunk_hec+https://splunk.example.com:8088");
    o->server_name = "hec.test";
    o->host = "::1";
    EXPECT_EQ(o->base_url(), "https://hec.test:8088");
    EXPECT_EQ(o->peer(), "splunk_hec+https://[::1]:8088");
    for (const auto& k : hec_config_keys()) {
        EXPECT_EQ(k.key.rfind("exporters.*.splunk_hec.", 0), 0u) << k.key;
        EXPECT_FALSE(k.description.empty()) << k.key;
    }
}

TEST_F(HecOptionsTest, RefusalsNameTheKey) {
    EXPECT_NE(error_of("      ca: " + path("ca.pem") + "\n      token_file: " + path("token") + "\n")
                  .find("splunk_hec.target"),
              std::string::npos);
    EXPECT_NE(error_of("      target: splunk.example.com:8088\n      token_file: " + path("token") + "\n")
                  .find("exporters.splunk.splunk_hec.ca"),
              std::string::npos);
    EXPECT_NE(error_of("      target: splunk.example.com:8088\n      ca: " + path("ca.pem") + "\n")
                  .find("splunk_hec.token_file"),
              std::string::npos);
    EXPECT_NE(error_of(base() + "      cert: " + path("ca.pem") + "\n").find("splunk_hec.key"), std::string::npos);
    EXPECT_NE(error_of(base() + "      server_name: \"a b\"\n").find("splunk_hec.server_name"), std::string::npos);
    EXPECT_NE(error_of(base() + "      batch_events: 0\n").find("batch_events"), std::string::npos);
    // Plain HTTP only when asked for, and then without a CA.
    EXPECT_EQ(error_of("      target: 127.0.0.1:8088\n      tls: false\n      token_file: " + path("token") + "\n"),
              "");
}

TEST_F(HecOptionsTest, TokenFileErrorsNameTheFileNeverTheToken) {
    write("token", "0b6f1c3e-secret-token\n", 0644);
    std::string e = error_of(base());
    EXPECT_NE(e.find(path("token")), std::string::npos) << e;
    EXPECT_NE(e.find("token_file"), std::string::npos) << e;
    EXPECT_EQ(e.find("0b6f1c3e"), std::string::npos) << e;
    write("token", "0b6f1c3e secret token\n", 0600);
    e = error_of(base());
    EXPECT_NE(e.find(path("token")), std::string::npos) << e;
    EXPECT_EQ(e.find("0b6f1c3e"), std::string::npos) << e;
    write("token", "\n", 0600);
    EXPECT_NE(error_of(base()).find("token"), std::string::npos);
    auto t = read_token(path("token"), "k");
    EXPECT_FALSE(t);
    write("token", "abc-123\r\n", 0600);
    t = read_token(path("token"), "k");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(*t, "abc-123");
}

TEST_F(HecOptionsTest, FactoryValidatesFormatTlsFilesAndEndpoint) {
    NoAlerts alerts;
    const auto f = factory();
    EXPECT_EQ(f.type, "splunk_hec");
    auto c = parse(base());
    ASSERT_TRUE(c) << c.error().message;
    agent::ExporterContext ctx{"splunk", *c, "", alerts, {}};
    auto st = f.validate(ctx);
    ASSERT_FALSE(st) << "ca.pem is not PEM";
    EXPECT_NE(st.error().message.find("exporters.splunk.splunk_hec.ca"), std::string::npos) << st.error().message;
    EXPECT_EQ(f.endpoint(*c, "splunk"), "tcp:splunk.example.com:8088");

    auto plain = parse("      target: 127.0.0.1:8088\n      tls: false\n      token_file: " + path("token") + "\n");
    ASSERT_TRUE(plain);
    agent::ExporterContext ok_ctx{"splunk", *plain, "", alerts, {}};
    EXPECT_TRUE(f.validate(ok_ctx));
    auto built = f.create(ok_ctx);
    ASSERT_TRUE(built) << built.error().message;

    // HEC takes HEC envelopes only.
    std::vector<base::KeySpec> keys;
    const auto fk = formats::format_config_keys();
    keys.insert(keys.end(), fk.begin(), fk.end());
    const auto hk = hec_config_keys();
    keys.insert(keys.end(), hk.begin(), hk.end());
    auto cef = base::Config::parse(
        "exporters:\n  splunk:\n    format: cef\n    splunk_hec:\n      target: "
        "127.0.0.1:8088\n      tls: false\n      token_file: " +
            path("token") + "\n",
        "test.yaml", keys);
    ASSERT_TRUE(cef) << cef.error().message;
    agent::ExporterContext cef_ctx{"splunk", *cef, "", alerts, {}};
    auto bad = f.validate(cef_ctx);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("exporters.splunk.format"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace hsmaudit::exporters::hec
