// The real hsmauditd with a splunk_hec destination (the kind registered in
// agent/daemon/exporter_registry.cpp): `--check-config` accepts it and refuses a token file others
// may read, naming the key; the running agent delivers the embedded module's audit records to the
// HEC stand-in (tests/integration/exporters/hec/hec_receiver.py) over mutual TLS with indexer
// acknowledgement, and its cursor never passes a record the receiver has not reported indexed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/exporters/hec/hec_receiver.h"

namespace hsmaudit::testing {
namespace {

using hec::HecReceiver;
using relp::Pki;

const std::string kHsmauditd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmauditd";

std::string config(const std::string& dir, const HecReceiver& r, const std::string& token_file) {
    const Pki& pki = Pki::get();
    return "agent:\n  state_dir: " + dir +
           "/state\n  status_interval: 200ms\n"
           "module:\n  mode: embedded\n  dir: " +
           dir +
           "/module\n  ring_size: 4MiB\n  workload:\n    rate: 500\n"
           "exporters:\n  splunk:\n    type: splunk_hec\n    streams: audit\n    format: hec\n"
           "    backoff_initial: 50ms\n    backoff_max: 500ms\n    splunk_hec:\n      target: 127.0.0.1:" +
           std::to_string(r.port()) + "\n      server_name: server.test\n      ca: " + pki.ca +
           "\n      cert: " + pki.client_cert + "\n      key: " + pki.client_key + "\n      token_file: " + token_file +
           "\n      ack_poll_interval: 50ms\n";
}

std::uint64_t audit_cursor(const std::string& dir) {
    auto j = nlohmann::json::parse(Process::slurp(dir + "/state/status.json"), nullptr, false);
    if (!j.is_object() || !j.contains("exporters") || !j["exporters"].is_array() || j["exporters"].empty()) return 0;
    const auto& e = j["exporters"][0];
    return e.contains("cursor") && e["cursor"].contains("audit") ? e["cursor"]["audit"].get<std::uint64_t>() : 0;
}

/// Audit record sequence numbers among the event ids of a receiver file ("150123-<boot>-<seq>").
std::set<std::uint64_t> seqs(const std::string& path) {
    static const std::regex id(R"(^\d+-\d+-(\d+)$)");
    std::set<std::uint64_t> out;
    std::istringstream in(Process::slurp(path));
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
        if (std::regex_match(line, m, id)) out.insert(std::stoull(m[1].str()));
    return out;
}

TEST(HecAgent, CheckConfigAndDeliveryWithIndexerAcknowledgement) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    const std::string dir = relp::make_temp_dir("hec-agent");
    const std::string conf = dir + "/hsmauditd.yaml";
    const std::string token = dir + "/hec.token";

    // --check-config: a token file others may read is refused, naming the key and the file.
    relp::write_text(token, "5d1a7c52-hec-test-token\n", 0644);
    relp::write_text(conf, config(dir, r, token));
    auto [bad_rc, bad] = run({kHsmauditd, "-c", conf, "--check-config"}, dir + "/check-bad");
    EXPECT_EQ(bad_rc, 2) << bad;
    EXPECT_NE(bad.find("exporters.splunk.splunk_hec.token_file"), std::string::npos) << bad;
    EXPECT_NE(bad.find(token), std::string::npos) << bad;
    EXPECT_EQ(bad.find("5d1a7c52"), std::string::npos) << "the token must not appear: " << bad;
    ::chmod(token.c_str(), 0600);
    auto [ok_rc, ok] = run({kHsmauditd, "-c", conf, "--check-config"}, dir + "/check-ok");
    ASSERT_EQ(ok_rc, 0) << ok;

    // The agent delivers; the receiver indexed everything the cursor covers.
    Process agent({kHsmauditd, "-c", conf}, dir + "/agent.out", dir + "/agent.err");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && agent.running() && audit_cursor(dir) < 1000)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(agent.running()) << Process::slurp(dir + "/agent.err");
    const std::uint64_t cursor = audit_cursor(dir);
    ASSERT_GE(cursor, 1000u) << Process::slurp(dir + "/state/status.json") << Process::slurp(dir + "/agent.err");
    const auto indexed = seqs(r.dir() + "/indexed");
    for (std::uint64_t s = 1; s <= cursor; ++s)
        ASSERT_TRUE(indexed.count(s)) << "record " << s << " is behind the cursor (" << cursor
                                      << ") but was never reported indexed";
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(), 0) << Process::slurp(dir + "/agent.err");
    EXPECT_EQ(Process::slurp(dir + "/agent.err").find("5d1a7c52"), std::string::npos) << "the token was logged";
    EXPECT_NE(r.requests().find("\"gzip\": true"), std::string::npos);
    std::error_code ec;
    if (std::getenv("HSMAUDIT_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace hsmaudit::testing
