// The one load path of hsmauditd (agent/daemon/agent_config.h): every broken configuration of
// issue 16 is refused before the start, naming file:line and the key; what it accepts starts
// (tests/integration/agent/check_config_test.cpp runs the real binary). Also base::Config's
// hardening: duplicate keys, empty files, did-you-mean, non-regular files, the size bound.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "agent/daemon/agent_config.h"
#include "agent/daemon/exporter_registry.h"
#include "agent/engine/config_keys.h"
#include "base/config/config.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

ServicePlugins plugins() {
    return ServicePlugins{exporters::builtin_exporters(), exporters::component_config_keys()};
}

class AgentConfig : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::path(::testing::TempDir()) / "agentcfg_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::string write(const std::string& name, const std::string& text, fs::perms mode = fs::perms(0600)) {
        std::string p = path(name);
        std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
        fs::permissions(p, mode);
        return p;
    }
    /// Writes `yaml` as agent.yaml (state and module under the test's directory) and loads it.
    Result<base::Config> load(const std::string& yaml) {
        return load_agent_config(write("agent.yaml", yaml), plugins());
    }
    /// Expects `yaml` refused with a message that holds "agent.yaml:<line>: " and `key`.
    void expect_refused(const std::string& yaml, int line, const std::string& key, const std::string& what = "") {
        auto c = load(yaml);
        ASSERT_FALSE(c.has_value()) << yaml;
        const std::string& m = c.error().message;
        // "agent.yaml:5: key: ..." (or the formats' "key 'k' (agent.yaml:5): ...").
        const std::string at = path("agent.yaml") + ":" + std::to_string(line);
        const auto pos = m.find(at);
        ASSERT_NE(pos, std::string::npos) << m;
        const char next = pos + at.size() < m.size() ? m[pos + at.size()] : '\0';
        EXPECT_TRUE(next == ':' || next == ')') << m;
        EXPECT_NE(m.find(key), std::string::npos) << m;
        if (!what.empty()) {
            EXPECT_NE(m.find(what), std::string::npos) << m;
        }
    }
    /// Self-signed certificates and keys made by the openssl CLI: ca.pem/ca.key, other.key.
    void make_tls_material() {
        const std::string cmd = "cd '" + dir_.string() +
                                "' && openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                "-keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca >/dev/null 2>&1 && "
                                "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key "
                                ">/dev/null 2>&1 && chmod 600 ca.key other.key";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl is missing (scripts/setup)";
    }
    /// A RELP/TLS destination with these files, at lines 1-9 (ca at 6, cert at 7, key at 8).
    [[nodiscard]] static std::string relp_tls(const std::string& ca, const std::string& cert, const std::string& key) {
        return "exporters:\n"                    // 1
               "  siem:\n"                       // 2
               "    type: relp\n"                // 3
               "    relp:\n"                     // 4
               "      target: 127.0.0.1:2514\n"  // 5
               "      ca: " +
               ca + "\n" +                      // 6
               "      cert: " + cert + "\n" +   // 7
               "      key: " + key + "\n" +     // 8
               "      auth_mode: certvalid\n";  // 9
    }

    fs::path dir_;
};

// ---- the destinations, through their kinds' validate ----

TEST_F(AgentConfig, MissingTlsKeyFilesAreRefusedNamingTheKey) {
    make_tls_material();
    ASSERT_FALSE(HasFailure());
    expect_refused(relp_tls(path("ca.pem"), path("ca.pem"), path("missing.key")), 8, "exporters.siem.relp.key",
                   "missing.key");
    expect_refused(relp_tls(path("missing-ca.pem"), path("ca.pem"), path("ca.key")), 6, "exporters.siem.relp.ca",
                   "missing-ca.pem");
    expect_refused(relp_tls(path("ca.pem"), path("missing.pem"), path("ca.key")), 7, "exporters.siem.relp.cert",
                   "missing.pem");
    // Present but not what it must be: a CA file that is not PEM, a key of another certificate.
    write("junk.pem", "not a certificate\n");
    expect_refused(relp_tls(path("junk.pem"), path("ca.pem"), path("ca.key")), 6, "exporters.siem.relp.ca",
                   "no PEM CA certificate");
    expect_refused(relp_tls(path("ca.pem"), path("ca.pem"), path("other.key")), 8, "exporters.siem.relp.key",
                   "does not match");
    // The key readable by others: refused like the start refuses it.
    fs::permissions(path("ca.key"), fs::perms(0644));
    expect_refused(relp_tls(path("ca.pem"), path("ca.pem"), path("ca.key")), 8, "exporters.siem.relp.key", "0644");
    fs::permissions(path("ca.key"), fs::perms(0600));
    // And the same material, whole, is accepted.
    auto ok = load(relp_tls(path("ca.pem"), path("ca.pem"), path("ca.key")));
    EXPECT_TRUE(ok.has_value()) << ok.error().message;
}

TEST_F(AgentConfig, SyslogTlsMaterialIsCheckedToo) {
    const std::string yaml =
        "exporters:\n  s:\n    type: syslog\n    streams: syslog\n    syslog:\n      target: 127.0.0.1:6514\n"
        "      ca: " +
        path("nope.pem") + "\n";
    expect_refused(yaml, 7, "exporters.s.syslog.ca", "nope.pem");
}

TEST_F(AgentConfig, PortOutOfRangeIsRefused) {
    expect_refused("exporters:\n  siem:\n    type: relp\n    relp:\n      target: 127.0.0.1:70000\n      tls: false\n",
                   5, "exporters.siem.relp.target", "port out of range");
    expect_refused("syslog:\n  listen: udp:127.0.0.1:70000\n", 2, "syslog.listen", "70000");
    expect_refused("metrics:\n  enabled: true\n  listen: 127.0.0.1:70000\n", 3, "metrics.listen", "70000");
}

TEST_F(AgentConfig, UdpSyslogWithoutAllowLossIsRefused) {
    const std::string yaml =
        "exporters:\n  s:\n    type: syslog\n    streams: syslog\n    syslog:\n      target: 127.0.0.1:514\n"
        "      protocol: udp\n";
    expect_refused(yaml, 7, "exporters.s.syslog.protocol", "allow_loss");
    auto ok = load(yaml + "      allow_loss: true\n");
    EXPECT_TRUE(ok.has_value()) << ok.error().message;
}

TEST_F(AgentConfig, BadLeefDelimiterIsRefused) {
    expect_refused(
        "exporters:\n  q:\n    type: syslog\n    format: leef\n    leef_delimiter: abc\n    syslog:\n"
        "      target: 127.0.0.1:514\n      protocol: tcp\n",
        5, "exporters.q.leef_delimiter", "abc");
}

TEST_F(AgentConfig, ADefaultedKeyIsLocatedAtItsSection) {
    // relp.ca not set (default "") while TLS needs it: the destination's section line is named.
    expect_refused(
        "agent:\n  log_level: info\nexporters:\n  siem:\n    type: relp\n    relp:\n"
        "      target: 127.0.0.1:2514\n",
        6, "exporters.siem.relp.ca", "CA certificate is required");
}

// ---- metrics ----

TEST_F(AgentConfig, MissingMetricsWebConfigIsRefused) {
    expect_refused("metrics:\n  enabled: true\n  web_config: " + path("web.yml") + "\n", 3, "metrics.web_config",
                   "web.yml");
}

TEST_F(AgentConfig, WebConfigReadableByOthersIsRefused) {
    const std::string web = "basic_auth_users:\n  prometheus: $2b$12$" + std::string(53, 'a') + "\n";
    write("web.yml", web, fs::perms(0644));
    const std::string yaml = "metrics:\n  enabled: true\n  web_config: " + path("web.yml") + "\n";
    expect_refused(yaml, 3, "metrics.web_config", "0644");
    fs::permissions(path("web.yml"), fs::perms(0600));
    auto ok = load(yaml);
    EXPECT_TRUE(ok.has_value()) << ok.error().message;
    // Not enabled: the endpoint does not start, so its file is not needed.
    fs::remove(path("web.yml"));
    auto off = load("metrics:\n  enabled: false\n  web_config: " + path("web.yml") + "\n");
    EXPECT_TRUE(off.has_value()) << off.error().message;
}

// ---- the module's keys ----

TEST_F(AgentConfig, WorkloadMixAndAuditKeyAreChecked) {
    expect_refused("module:\n  workload:\n    mix: sign=70,dance=30\n", 3, "module.workload.mix");
    // An audit key that is there must load (a missing one may appear later: not a configuration error).
    write("audit.key", "not a key\n");
    expect_refused("agent:\n  log_level: info\naudit:\n  key: " + path("audit.key") + "\n", 4, "audit.key");
    auto missing = load("audit:\n  key: " + path("absent.key") + "\n");
    EXPECT_TRUE(missing.has_value()) << missing.error().message;
}

// ---- base::Config hardening ----

TEST_F(AgentConfig, DuplicateKeysAreRefusedNamingBothLines) {
    // A second store: section that turns encryption at rest off.
    auto c = load("store:\n  encrypt: true\nrotation:\n  period: daily\nstore:\n  encrypt: false\n");
    ASSERT_FALSE(c.has_value());
    EXPECT_NE(c.error().message.find(path("agent.yaml") + ":5:1: duplicate key 'store'"), std::string::npos)
        << c.error().message;
    EXPECT_NE(c.error().message.find("first at " + path("agent.yaml") + ":1"), std::string::npos) << c.error().message;
    // A key given twice in one section, and inside a destination.
    expect_refused("store:\n  encrypt: true\n  encrypt: false\n", 3, "duplicate key 'store.encrypt'", ":2");
    expect_refused("exporters:\n  a:\n    type: relp\n    relp:\n      target: h:1\n      target: h:2\n", 6,
                   "duplicate key 'exporters.a.relp.target'", ":5");
}

TEST_F(AgentConfig, EmptyFilesAreRefused) {
    for (const char* text : {"", "\n\n", "# only a comment\n# and another\n", "---\n", "{}\n"}) {
        auto c = load(text);
        ASSERT_FALSE(c.has_value()) << "'" << text << "'";
        EXPECT_NE(c.error().message.find(path("agent.yaml") + ": the configuration is empty"), std::string::npos)
            << c.error().message;
    }
}

TEST_F(AgentConfig, TyposGetTheNearestKey) {
    expect_refused("store:\n  qouta: 10GB\n", 2, "unknown key 'store.qouta' (did you mean store.quota?)");
    expect_refused("agent:\n  stat_dir: /x\n", 2, "unknown key 'agent.stat_dir' (did you mean agent.state_dir?)");
    expect_refused("agnet:\n  state_dir: /x\n", 1, "unknown section 'agnet' (did you mean agent?)");
    // A key in the wrong section: the declared key of that name.
    expect_refused("quota: 10GB\n", 1, "unknown key 'quota' (did you mean store.quota?)");
    // Instance-aware: the destination's own name in the suggestion.
    expect_refused("exporters:\n  siem:\n    type: relp\n    relp:\n      tyls: true\n", 5,
                   "unknown key 'exporters.siem.relp.tyls' (did you mean exporters.siem.relp.tls?)");
    // A key of another depth: the declared key, its instance shown as <name>.
    expect_refused("agent:\n  log_level: info\nrules:\n  x: 1\n", 3, "unknown section 'rules'");
    auto rules = load("rules: 1\n");
    ASSERT_FALSE(rules.has_value());
    EXPECT_NE(rules.error().message.find("(did you mean exporters.<name>.snmp.rules?)"), std::string::npos)
        << rules.error().message;
    // Nothing near: no suggestion.
    auto c = load("agent:\n  zzzzzzzzzzzz: 1\n");
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().message.find("did you mean"), std::string::npos) << c.error().message;
}

/// Runs load_agent_config(`config`) in a child process bounded by `limit`: the exit code is 0
/// (accepted), 2 (refused; the message written to `out`) or -1 when it did not finish (blocked).
int load_in_child(const std::string& config, const std::string& out, std::chrono::milliseconds limit) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        auto c = load_agent_config(config, plugins());
        std::ofstream(out) << (c ? "" : c.error().message);
        ::_exit(c ? 0 : 2);
    }
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

TEST_F(AgentConfig, AFifoIsRefusedWithoutBlocking) {
    const std::string fifo = path("fifo.yaml");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // No writer ever opens it: a blocking open would wait for ever.
    EXPECT_EQ(load_in_child(fifo, path("out"), std::chrono::seconds(10)), 2) << "blocked on the FIFO, or accepted it";
    std::ifstream in(path("out"));
    const std::string m((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(m.find(fifo + ": the configuration is a FIFO, not a regular file"), std::string::npos) << m;
}

TEST_F(AgentConfig, DevicesAndDirectoriesAreRefused) {
    auto zero = load_agent_config("/dev/zero", plugins());
    ASSERT_FALSE(zero.has_value());
    EXPECT_NE(zero.error().message.find("/dev/zero: the configuration is a character device"), std::string::npos)
        << zero.error().message;
    auto d = load_agent_config(dir_.string(), plugins());
    ASSERT_FALSE(d.has_value());
    EXPECT_NE(d.error().message.find("is a directory"), std::string::npos) << d.error().message;
    auto missing = load_agent_config(path("absent.yaml"), plugins());
    ASSERT_FALSE(missing.has_value());
    EXPECT_NE(missing.error().message.find("absent.yaml"), std::string::npos) << missing.error().message;
}

TEST_F(AgentConfig, OversizedFilesAreRefused) {
    // Valid YAML (comments), one byte over the bound.
    std::string big = "agent:\n  log_level: info\n";
    big += std::string(base::Config::kMaxFileBytes - big.size() - 1, '#') + "\n" + "#";
    ASSERT_EQ(big.size(), base::Config::kMaxFileBytes + 1);
    auto c = load_agent_config(write("big.yaml", big), plugins());
    ASSERT_FALSE(c.has_value());
    EXPECT_NE(c.error().message.find("big.yaml: the configuration is larger than 1 MiB"), std::string::npos)
        << c.error().message;
    big.pop_back();  // exactly at the bound: read
    auto ok = load_agent_config(write("big.yaml", big), plugins());
    EXPECT_TRUE(ok.has_value()) << ok.error().message;
}

// ---- what the project ships passes ----

TEST_F(AgentConfig, TheShippedConfigurationsPass) {
    for (const char* f : {"config/hsmauditd.yaml", "config/hsmauditd-appliance.yaml"}) {
        const std::string p = std::string(HSMAUDIT_SOURCE_DIR) + "/" + f;
        auto c = load_agent_config(p, plugins());
        EXPECT_TRUE(c.has_value()) << f << ": " << c.error().message;
    }
}

TEST_F(AgentConfig, TheYamlBlocksOfTheDocsParse) {
    // The agent configurations the docs and the receiver pages of config/examples/ show (```yaml
    // blocks) hold only declared keys, each once; list keys in either form (`streams: [a, b]`).
    // Their files (/etc/hsmaudit/...) are not here: the full check is for the shipped files above.
    const auto keys = all_config_keys(exporters::component_config_keys());
    std::vector<fs::path> docs = {fs::path(HSMAUDIT_SOURCE_DIR) / "README.md"};
    for (const char* dir : {"docs", "config/examples"})  // the receiver pages show the agent's side too
        for (const auto& e : fs::directory_iterator(fs::path(HSMAUDIT_SOURCE_DIR) / dir))
            if (e.path().extension() == ".md") docs.push_back(e.path());
    int blocks = 0;
    for (const auto& doc : docs) {
        std::ifstream in(doc);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        for (auto at = text.find("```yaml\n"); at != std::string::npos; at = text.find("```yaml\n", at)) {
            at += 8;
            const auto end = text.find("```", at);
            ASSERT_NE(end, std::string::npos) << doc;
            const std::string yaml = text.substr(at, end - at);
            if (yaml.starts_with("rules:")) continue;  // an SNMP rules file (exporters/snmp/rules.h), not the agent's
            ++blocks;
            auto c = base::Config::parse(yaml, doc.filename().string(), keys);
            EXPECT_TRUE(c.has_value()) << doc << ":\n" << yaml << "\n" << c.error().message;
        }
    }
    EXPECT_GE(blocks, 4) << "the docs' configuration examples were not found";
}

}  // namespace
}  // namespace hsmaudit::agent
