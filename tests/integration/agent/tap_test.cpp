// `hsmaudit tap <destination>` against the real hsmauditd (issue 17 item 6): the agent delivers its
// trail and alerts (embedded module, 300 ops/s) to a syslog/TCP receiver in this test as CEF with
// its RFC 5424 header; `tap` on the same configuration prints, byte for byte, the messages the
// receiver got (same order per stream), never moves the destination's cursor nor writes into the
// state directory, narrows to --stream and --last N, follows (-f) what the agent stores next, and
// refuses an unknown destination naming the configured ones.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

#include "daemon_harness.h"
#include "tests/integration/common/frame_receiver.h"
#include "tests/integration/common/process.h"

namespace {

using namespace hsmaudit::testing;

/// An RFC 6587 octet-counting receiver on 127.0.0.1 (a port the kernel chose) keeping every
/// message exactly as it arrived. Its thread stops with it. Thread-safety: messages() from any thread.
class FrameReceiver {
public:
    [[nodiscard]] int port() const { return receiver_.port(); }
    [[nodiscard]] std::vector<std::string> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> messages_;
    hsmaudit::testing::OctetCountedReceiver receiver_{[this](std::string_view frame) {
        std::lock_guard lock(mutex_);
        messages_.emplace_back(frame);
    }};  // last: its thread stops before the messages go
};

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) break;
        out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

/// The messages of one stream (CEF's cs5=<stream>), in order.
std::vector<std::string> of_stream(const std::vector<std::string>& messages, const std::string& stream) {
    std::vector<std::string> out;
    for (const auto& m : messages)
        if (m.find(" cs5=" + stream + " ") != std::string::npos) out.push_back(m);
    return out;
}

/// Every file under `dir` with its size and modification time: what the tap must not change.
std::map<std::string, std::pair<std::uintmax_t, std::int64_t>> snapshot(const std::string& dir) {
    std::map<std::string, std::pair<std::uintmax_t, std::int64_t>> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        struct stat st {};
        if (::lstat(e.path().c_str(), &st) != 0) continue;
        out[e.path().string()] = {static_cast<std::uintmax_t>(st.st_size),
                                  static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    }
    return out;
}

class Tap : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(fs::exists(kHsmaudit)) << kHsmaudit << " is not built";
        ASSERT_TRUE(dir_.ok());
        ASSERT_GT(receiver_.port(), 0);
        config_ = dir_ / "hsmauditd.yaml";
        spit(config_, "agent:\n  state_dir: " + (dir_ / "state") +
                          "\n  hostname: hsm-tap.example.net\n  status_interval: 100ms\n"
                          "module:\n  mode: embedded\n  dir: " +
                          (dir_ / "module") +
                          "\n  serial: \"150888\"\n  ring_size: 1MiB\n  workload:\n    rate: 300\n"
                          "exporters:\n"
                          "  qradar:\n    type: syslog\n    format: cef\n    streams: [audit, alerts]\n"
                          "    cursor_sync: 50ms\n    syslog:\n      protocol: tcp\n      target: 127.0.0.1:" +
                          std::to_string(receiver_.port()) +
                          "\n"
                          "  traps:\n    type: snmp\n    enabled: false\n    streams: alerts\n"
                          "    snmp:\n      receivers: noc\n      receiver:\n        noc:\n"
                          "          address: udp:127.0.0.1:9\n");
    }

    void start() {
        daemon_.emplace(config_, dir_ / "hsmauditd.log", "", 0);
        ASSERT_TRUE(eventually([&] { return fs::exists(dir_ / "state/status.json"); })) << daemon_->log();
    }
    void stop() {
        ASSERT_TRUE(daemon_->signal(SIGTERM));
        const auto code = daemon_->wait_exit();
        ASSERT_TRUE(code.has_value()) << daemon_->log();
        EXPECT_EQ(*code, 0) << daemon_->log();
    }
    CommandResult tap(std::vector<std::string> extra) {
        std::vector<std::string> args = {kHsmaudit, "tap", "qradar", "-c", config_};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_command(args, dir_.path());
    }

    TempDir dir_;
    FrameReceiver receiver_;
    std::string config_;
    std::optional<Daemon> daemon_;
};

TEST_F(Tap, ShowsExactlyWhatTheDestinationReceivedWithoutMovingItsCursor) {
    start();
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(eventually([&] { return of_stream(receiver_.messages(), "audit").size() >= 300; }))
        << receiver_.messages().size() << "\n"
        << daemon_->log();
    stop();  // the destination delivers what is stored, then the store stays still
    ASSERT_FALSE(HasFailure());
    const auto before = snapshot(dir_ / "state");
    ASSERT_TRUE(before.contains(dir_ / "state/export/qradar/cursor"));

    const auto all = tap({"--from-start", "--raw"});
    ASSERT_EQ(all.exit_code, 0) << all.err;
    const auto shown = lines(all.out);
    // The receiver may not have read the agent's last writes yet: wait until it holds the trail.
    const std::size_t audit_shown = of_stream(shown, "audit").size();
    ASSERT_TRUE(eventually([&] { return of_stream(receiver_.messages(), "audit").size() >= audit_shown; }))
        << of_stream(receiver_.messages(), "audit").size() << " of " << audit_shown;
    const auto received = receiver_.messages();
    // The RFC 5424 header the syslog kind adds by default, naming the appliance.
    ASSERT_FALSE(shown.empty());
    EXPECT_EQ(shown.front().find("1 "), shown.front().find('>') + 1) << shown.front();
    EXPECT_NE(shown.front().find("Z hsm-tap.example.net hsmaudit - - - CEF:0|hsmaudit|"), std::string::npos)
        << shown.front();
    // Byte for byte what the receiver got, in the same order per stream. The audit trail was all
    // delivered at stop; an alert stored after its runner stopped (the agent's own stop) may be
    // shown and not received, never the other way.
    const auto audit = of_stream(shown, "audit");
    EXPECT_EQ(audit, of_stream(received, "audit"));
    const auto alerts_received = of_stream(received, "alerts");
    const auto alerts_shown = of_stream(shown, "alerts");
    ASSERT_GE(alerts_shown.size(), alerts_received.size());
    EXPECT_TRUE(std::equal(alerts_received.begin(), alerts_received.end(), alerts_shown.begin()));
    EXPECT_EQ(shown.size(), audit.size() + alerts_shown.size()) << "only the destination's streams";
    // Terminal-safe output (the default) is the same here: CEF has no control bytes.
    EXPECT_EQ(tap({"--from-start"}).out, all.out);

    // --last N of one stream: the newest N of what was sent.
    const auto last = tap({"--last", "5", "--stream", "audit"});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    EXPECT_EQ(lines(last.out), std::vector<std::string>(audit.end() - 5, audit.end()));

    // The command docs/SIEM.md shows ("Checking a destination before wiring it"), on this agent.
    const std::string doc = slurp(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/SIEM.md");
    const std::string open_tag = "<!-- tap:begin -->\n```sh\n";
    const auto begin = doc.find(open_tag);
    const auto end = doc.find("\n```\n<!-- tap:end -->");
    ASSERT_TRUE(begin != std::string::npos && end != std::string::npos && begin < end) << "no tap block in SIEM.md";
    std::string command = doc.substr(begin + open_tag.size(), end - begin - open_tag.size());
    const std::string shipped = "/etc/hsmaudit/hsmauditd.yaml";
    ASSERT_EQ(command.rfind("hsmaudit tap ", 0), 0u) << command;
    ASSERT_NE(command.find(shipped), std::string::npos) << command;
    command.replace(command.find(shipped), shipped.size(), config_);
    std::vector<std::string> argv = {kHsmaudit};
    for (std::size_t at = command.find(' ') + 1; at < command.size();) {
        const std::size_t sp = std::min(command.find(' ', at), command.size());
        argv.push_back(command.substr(at, sp - at));
        at = sp + 1;
    }
    const auto documented = run_command(argv, dir_.path());
    EXPECT_EQ(documented.exit_code, 0) << command << "\n" << documented.err;
    EXPECT_EQ(lines(documented.out), lines(last.out)) << command;

    // Nothing was written: the cursor file and every file of the state directory are as they were.
    EXPECT_EQ(snapshot(dir_ / "state"), before);

    // Usage errors: an unknown destination names the configured ones; a kind with no rendering.
    const auto unknown = run_command({kHsmaudit, "tap", "siem", "-c", config_}, dir_.path());
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.err.find("no destination 'siem' in " + config_ + " (configured: qradar, traps)"),
              std::string::npos)
        << unknown.err;
    const auto snmp = run_command({kHsmaudit, "tap", "traps", "-c", config_}, dir_.path());
    EXPECT_EQ(snmp.exit_code, 2);
    EXPECT_NE(snmp.err.find("sends no rendered message"), std::string::npos) << snmp.err;
    const auto stream = tap({"--stream", "syslog"});
    EXPECT_EQ(stream.exit_code, 2);
    EXPECT_NE(stream.err.find("receives none of the streams asked for (it receives: audit, alerts)"), std::string::npos)
        << stream.err;
    EXPECT_EQ(tap({"--from-start", "--last", "3"}).exit_code, 2);
    EXPECT_EQ(run_command({kHsmaudit, "tap", "qradar"}, dir_.path()).exit_code, 2);  // no -c
}

TEST_F(Tap, FollowsWhatTheAgentStoresNextAsTheDestinationReceivesIt) {
    start();
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(eventually([&] { return !of_stream(receiver_.messages(), "audit").empty(); })) << daemon_->log();
    Process follow({kHsmaudit, "tap", "qradar", "-c", config_, "--follow", "--raw", "--last", "0", "--stream", "audit"},
                   dir_ / "follow.out", dir_ / "follow.err");
    // The records stored after the tap started reach both.
    ASSERT_TRUE(eventually([&] { return lines(follow.out()).size() >= 100; })) << follow.err();
    const auto followed = lines(follow.out());
    ASSERT_TRUE(eventually([&] {
        const auto got = of_stream(receiver_.messages(), "audit");
        return std::search(got.begin(), got.end(), followed.begin(), followed.end()) != got.end();
    })) << "the followed messages are not a run of the received ones:\n"
        << followed.front();
    follow.signal(SIGTERM);
    follow.wait();
    stop();
}

}  // namespace
