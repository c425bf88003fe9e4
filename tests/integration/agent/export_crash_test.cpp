// End to end through the real hsmauditd: the embedded module under load, a RELP/TLS destination
// (a real rsyslogd with mutual authentication), and the agent killed with SIGKILL several times.
// Every record the store holds must reach the receiver at least once; duplicates are bounded by
// what a crash can redeliver (acknowledged since the last cursor write, plus the window) and
// identifiable by event id; the stored trail still verifies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::testing {
namespace {

namespace fs = std::filesystem;

using relp::Pki;
using relp::Rsyslog;

const std::string kHsmauditd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmauditd";
const std::string kHsmaudit = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";

std::string config(const std::string& dir, const Rsyslog& r, int rate) {
    const Pki& pki = Pki::get();
    return "agent:\n  state_dir: " + dir +
           "/state\n  status_interval: 200ms\n"
           "module:\n  mode: embedded\n  dir: " +
           dir + "/module\n  ring_size: 4MiB\n  workload:\n    rate: " + std::to_string(rate) +
           "\nrotation:\n  max_segment_bytes: 256KiB\n"
           "exporters:\n  siem:\n    type: relp\n    streams: audit\n    backoff_initial: 50ms\n"
           "    backoff_max: 500ms\n    relp:\n      target: " +
           r.target() + "\n      ca: " + pki.ca + "\n      cert: " + pki.client_cert +
           "\n      key: " + pki.client_key + "\n      permitted_peers: server.test\n      window: 128\n";
}

std::optional<nlohmann::json> status(const std::string& dir) {
    const std::string text = Process::slurp(dir + "/state/status.json");
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    return j;
}

/// The destination's audit cursor and lag from status.json (nullopt before the first report).
std::optional<std::pair<std::uint64_t, std::uint64_t>> cursor_and_lag(const std::string& dir) {
    auto j = status(dir);
    if (!j || !j->contains("exporters") || !(*j)["exporters"].is_array() || (*j)["exporters"].empty())
        return std::nullopt;
    const auto& e = (*j)["exporters"][0];
    const std::uint64_t cursor =
        e.contains("cursor") && e["cursor"].contains("audit") ? e["cursor"]["audit"].get<std::uint64_t>() : 0;
    return std::make_pair(cursor, e.value("lag_records", std::uint64_t{0}));
}

/// Sequence numbers in what rsyslog wrote, one per line, from each message's event id.
std::vector<std::uint64_t> received(const Rsyslog& r) {
    static const std::regex id(R"re(eventId="150123-\d+-(\d+)")re");
    std::vector<std::uint64_t> out;
    std::istringstream in(r.received());
    std::string line;
    std::smatch m;
    while (std::getline(in, line))
        if (std::regex_search(line, m, id)) out.push_back(std::stoull(m[1].str()));
    return out;
}

TEST(ExportCrash, EveryStoredRecordReachesTheSiemAtLeastOnceAcrossAgentCrashes) {
    ASSERT_TRUE(Pki::get().ok) << Pki::get().log;
    Rsyslog rsyslog;
    ASSERT_TRUE(rsyslog.start()) << rsyslog.diagnostics();
    const std::string dir = relp::make_temp_dir("export-crash");
    const std::string conf = dir + "/hsmauditd.yaml";

    constexpr int kCrashes = 3;
    relp::write_text(conf, config(dir, rsyslog, 3000));
    for (int crash = 0; crash < kCrashes; ++crash) {
        Process agent({kHsmauditd, "-c", conf}, dir + "/agent.out", dir + "/agent" + std::to_string(crash) + ".err");
        // Run until this life has delivered something new, then kill it mid-stream.
        const std::uint64_t before = cursor_and_lag(dir).value_or(std::make_pair(0ULL, 0ULL)).first;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline && agent.running()) {
            auto c = cursor_and_lag(dir);
            if (c && c->first > before + 2000) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        ASSERT_TRUE(agent.running()) << Process::slurp(dir + "/agent" + std::to_string(crash) + ".err");
        agent.signal(SIGKILL);
        agent.wait();
    }

    // A last life without load delivers the rest, then stops cleanly.
    relp::write_text(conf, config(dir, rsyslog, 0));
    Process agent({kHsmauditd, "-c", conf}, dir + "/agent.out", dir + "/final.err");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    std::uint64_t caught_up_at = 0;
    int stable = 0;
    for (;;) {
        // Caught up: no lag, and the cursor did not move for a few status reports.
        auto c = cursor_and_lag(dir);
        if (c && c->first > 0 && c->second == 0 && c->first == caught_up_at) {
            if (++stable >= 15) break;
        } else {
            stable = 0;
            caught_up_at = c ? c->first : 0;
        }
        ASSERT_LT(std::chrono::steady_clock::now(), deadline)
            << "the destination did not catch up: " << Process::slurp(dir + "/state/status.json")
            << Process::slurp(dir + "/final.err");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    agent.signal(SIGTERM);
    ASSERT_EQ(agent.wait(), 0) << Process::slurp(dir + "/final.err");

    // The newest record the store holds.
    auto [tail_rc, tail] =
        run({kHsmaudit, "tail", "--json", "-n", "1", "--state-dir", dir + "/state", "--key", dir + "/module/audit.key"},
            dir + "/tail");
    ASSERT_EQ(tail_rc, 0) << tail;
    const auto newest = nlohmann::json::parse(tail, nullptr, false);
    ASSERT_TRUE(newest.is_object()) << tail;
    const std::uint64_t last_seq = newest["seq"].get<std::uint64_t>();
    EXPECT_EQ(last_seq, caught_up_at);

    // Every record 1..last arrived; duplicates are what the crashes could redeliver.
    const auto seqs = received(rsyslog);
    const std::set<std::uint64_t> unique(seqs.begin(), seqs.end());
    ASSERT_GT(last_seq, static_cast<std::uint64_t>(kCrashes) * 2000);
    for (std::uint64_t s = 1; s <= last_seq; ++s) ASSERT_TRUE(unique.count(s)) << "record " << s << " never arrived";
    const std::size_t duplicates = seqs.size() - unique.size();
    // Per crash: acknowledged since the last cursor write (cursor_sync, 250 ms; allow 1 s on a
    // loaded machine: 3,000 records) plus the window and the batch in flight.
    EXPECT_LE(duplicates, static_cast<std::size_t>(kCrashes) * (3000 + 128 + 512)) << duplicates;
    std::printf("records %llu, received %zu, duplicates %zu after %d crashes\n",
                static_cast<unsigned long long>(last_seq), seqs.size(), duplicates, kCrashes);

    // The agent's store still verifies after the crashes.
    auto [rc, out] =
        run({kHsmaudit, "verify", "--key", dir + "/module/audit.key", dir + "/state/audit"}, dir + "/verify");
    EXPECT_EQ(rc, 0) << out << Process::slurp(dir + "/verify.err");
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace hsmaudit::testing
