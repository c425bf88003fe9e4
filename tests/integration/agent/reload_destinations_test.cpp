// SIGHUP changes the destinations of the real hsmauditd without a restart (docs/ARCHITECTURE.md,
// "Reloading destinations"). The agent delivers its trail (embedded module, 500 ops/s) over RFC
// 6587 syslog/TCP to receivers in this test, which count connections and collect the records'
// sequence numbers:
//   - added: the new destination receives the trail from its start (`start: oldest`), the one
//     already running keeps its connection;
//   - removed: it stops (its receiver gets nothing more), its cursor file stays, and the archiver,
//     held back while the dead destination delivered nothing, archives once it is gone;
//   - changed (target moved to a second receiver): the second receives everything after the
//     first's last record, nothing lost, duplicates only within the in-flight window; an
//     unchanged destination keeps its connection;
//   - broken (TLS key file missing): the reload is refused at error level with the reason in
//     STATUS=, and every destination keeps running on its connection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "daemon_harness.h"
#include "tests/integration/common/frame_receiver.h"

namespace {

using namespace hsmaudit::testing;
using nlohmann::json;

constexpr const char* kSerial = "150777";

/// A syslog receiver over plain TCP with RFC 6587 octet counting ("LEN SP MSG"), on 127.0.0.1 and
/// a port the kernel chose. It records every connection it accepts and the audit sequence number
/// of every message (from the event id <serial>-<boot>-<seq>). Its thread stops with it.
/// Thread-safety: the accessors from any thread.
class SyslogReceiver {
public:
    [[nodiscard]] int port() const { return receiver_.port(); }
    [[nodiscard]] int connections() const { return receiver_.connections(); }
    [[nodiscard]] std::vector<std::uint64_t> seqs() const {
        std::lock_guard lock(mutex_);
        return seqs_;
    }
    [[nodiscard]] std::size_t count() const {
        std::lock_guard lock(mutex_);
        return seqs_.size();
    }

private:
    void take(std::string_view msg) {
        // <serial>-<boot>-<seq>
        const std::string needle = std::string(kSerial) + "-";
        for (std::size_t at = msg.find(needle); at != std::string_view::npos; at = msg.find(needle, at + 1)) {
            std::size_t i = at + needle.size();
            const std::size_t boot_start = i;
            while (i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i])) != 0) ++i;
            if (i == boot_start || i >= msg.size() || msg[i] != '-') continue;
            const std::size_t seq_start = ++i;
            while (i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i])) != 0) ++i;
            if (i == seq_start) continue;
            std::lock_guard lock(mutex_);
            seqs_.push_back(std::stoull(std::string(msg.substr(seq_start, i - seq_start))));
            break;
        }
    }

    mutable std::mutex mutex_;
    std::vector<std::uint64_t> seqs_;
    hsmaudit::testing::OctetCountedReceiver receiver_{[this](std::string_view frame) { take(frame); }};  // last
};

/// A loopback port nothing listens on (connections are refused).
int dead_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// One syslog/TCP destination's section.
std::string tcp_destination(const std::string& name, int port, const std::string& extra = "") {
    return "  " + name +
           ":\n"
           "    type: syslog\n"
           "    streams: audit\n"
           "    max_in_flight: 100\n"
           "    batch: 50\n"
           "    backoff_initial: 50ms\n"
           "    backoff_max: 200ms\n"
           "    cursor_sync: 50ms\n" +
           extra +
           "    syslog:\n"
           "      protocol: tcp\n"
           "      target: 127.0.0.1:" +
           std::to_string(port) + "\n";
}

/// Where a received sequence departs from 1, 2, 3, ...: its length and the first places it skips or repeats.
std::string describe_seqs(const std::vector<std::uint64_t>& seqs) {
    std::string out = std::to_string(seqs.size()) + " records";
    int shown = 0;
    for (std::size_t i = 0; i < seqs.size() && shown < 5; ++i)
        if (i == 0 ? seqs[0] != 1 : seqs[i] != seqs[i - 1] + 1) {
            out += "; at index " + std::to_string(i) + ": " + (i ? std::to_string(seqs[i - 1]) : "-") + " then " +
                   std::to_string(seqs[i]);
            ++shown;
        }
    return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t i = first; i <= last; ++i) out.push_back(i);
    return out;
}

std::vector<std::uint64_t> sorted_unique(std::vector<std::uint64_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

class ReloadDestinations : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(dir_.ok());
        listener_.emplace(dir_ / "notify");
        ASSERT_TRUE(listener_->ok()) << "cannot bind " << (dir_ / "notify");
        config_ = dir_ / "hsmauditd.yaml";
    }

    /// The agent's configuration with `destinations` (sections under exporters:).
    std::string yaml(const std::string& destinations, const std::string& extra = "") const {
        return "agent:\n  state_dir: " + (dir_ / "state") +
               "\n  log_level: info\n  status_interval: 100ms\n"
               "module:\n  mode: embedded\n  dir: " +
               (dir_ / "module") + "\n  serial: \"" + kSerial +
               "\"\n  ring_size: 1MiB\n  workload:\n    rate: 500\n"
               "rotation:\n  period: never\n" +
               extra + "exporters:\n" + destinations;
    }

    void start(const std::string& config) {
        spit(config_, config);
        daemon_.emplace(config_, dir_ / "hsmauditd.log", listener_->path(), 0);
        const auto ready = listener_->wait_for(field_is("READY", "1"));
        ASSERT_TRUE(ready.has_value()) << "no READY=1; agent log:\n" << daemon_->log();
        last_ = *ready;
    }

    /// Writes `config`, sends SIGHUP, returns the STATUS= of the READY=1 that ends the reload.
    std::string reload(const std::string& config) {
        spit(config_, config);
        EXPECT_TRUE(daemon_->signal(SIGHUP));
        const auto reloading = listener_->wait_for(field_is("RELOADING", "1"), last_ + 1);
        EXPECT_TRUE(reloading.has_value()) << "no RELOADING=1 after SIGHUP; log:\n" << daemon_->log();
        if (!reloading) return {};
        const auto ready = listener_->wait_for(field_is("READY", "1"), *reloading + 1);
        EXPECT_TRUE(ready.has_value()) << "no READY=1 after RELOADING=1; log:\n" << daemon_->log();
        if (!ready) return {};
        last_ = *ready;
        const auto& fields = listener_->messages()[*ready].fields;
        const auto it = fields.find("STATUS");
        return it == fields.end() ? std::string() : it->second;
    }

    /// SIGTERM and exit 0 (the destinations deliver what was stored before the agent exits).
    void stop() {
        ASSERT_TRUE(daemon_->signal(SIGTERM));
        const auto code = daemon_->wait_exit();
        ASSERT_TRUE(code.has_value()) << "hsmauditd did not exit after SIGTERM; log:\n" << daemon_->log();
        EXPECT_EQ(*code, 0) << daemon_->log();
    }

    [[nodiscard]] json status() const {
        const json s = json::parse(slurp(dir_ / "state/status.json"), nullptr, false);
        return s.is_object() ? s : json::object();
    }
    /// The last record the store holds (after stop: every record of the run).
    [[nodiscard]] std::uint64_t last_seq() const {
        const json s = status();
        return s.contains("drain") ? s["drain"].value("last_seq", std::uint64_t{0}) : 0;
    }
    [[nodiscard]] std::vector<std::string> destination_names() const {
        std::vector<std::string> out;
        const json s = status();
        if (s.contains("exporters"))
            for (const auto& e : s["exporters"]) out.push_back(e.value("name", ""));
        return out;
    }
    /// Waits until `r` has `n` records (bounded).
    bool receives(const SyslogReceiver& r, std::size_t n) {
        return eventually([&] { return r.count() >= n; });
    }
    /// After stop(): the agent wrote everything to the kernel before it exited, but the receiver's
    /// thread may not have read it all yet. Waits until `r` has read record `last`.
    bool received_through(const SyslogReceiver& r, std::uint64_t last) {
        return eventually([&] {
            const auto seqs = r.seqs();
            return !seqs.empty() && seqs.back() >= last;
        });
    }

    TempDir dir_;
    std::optional<NotifyListener> listener_;
    std::optional<Daemon> daemon_;
    std::string config_;
    std::size_t last_ = 0;
};

TEST_F(ReloadDestinations, AnAddedDestinationReceivesTheTrailFromItsStart) {
    SyslogReceiver first;
    SyslogReceiver second;
    ASSERT_GT(first.port(), 0);
    ASSERT_GT(second.port(), 0);
    start(yaml(tcp_destination("a", first.port())));
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(receives(first, 300)) << daemon_->log();

    const std::string st = reload(yaml(tcp_destination("a", first.port()) + tcp_destination("b", second.port())));
    EXPECT_NE(st.find("destinations added b"), std::string::npos) << st;
    ASSERT_TRUE(receives(second, 300)) << daemon_->log();
    EXPECT_TRUE(eventually([&] {
        return destination_names() == std::vector<std::string>{"a", "b"};
    })) << status().dump();
    stop();
    ASSERT_FALSE(HasFailure());

    const std::uint64_t last = last_seq();
    ASSERT_GT(last, 300u);
    EXPECT_TRUE(received_through(second, last) && received_through(first, last));
    EXPECT_EQ(second.seqs(), range(1, last)) << "the added destination: the whole trail, from its start, once";
    EXPECT_EQ(first.seqs(), range(1, last));
    EXPECT_EQ(first.connections(), 1) << "the destination already running was reconnected";
    EXPECT_EQ(second.connections(), 1);
}

TEST_F(ReloadDestinations, ARemovedDestinationStopsAndNoLongerHoldsTheArchiverBack) {
    SyslogReceiver live;
    SyslogReceiver leaving;
    const int dead = dead_port();
    // Small segments and a 1 s archive schedule; the dead destination delivers nothing, so nothing
    // may be archived while it is configured.
    const std::string store = "  max_segment_bytes: 4096\narchive:\n  interval: 1s\n";
    start(yaml(tcp_destination("a", live.port()) + tcp_destination("b", leaving.port()) + tcp_destination("dead", dead),
               store));
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(receives(leaving, 100)) << daemon_->log();
    // Passes ran after sealed segments were waiting, and archived nothing.
    ASSERT_TRUE(eventually([&] {
        const json s = status();
        return s.contains("archive") && s["archive"].value("runs", 0) >= 2 &&
               count_files(dir_ / "state/audit/ready_for_archive") >= 2;
    })) << status().dump();
    EXPECT_EQ(status()["archive"].value("archives_written", 1), 0) << "archived what 'dead' has not delivered";

    const std::string st = reload(yaml(tcp_destination("a", live.port()), store));
    EXPECT_NE(st.find("destinations removed b, dead"), std::string::npos) << st;
    EXPECT_TRUE(eventually([&] { return destination_names() == std::vector<std::string>{"a"}; })) << status().dump();
    // No longer held back by the removed destinations: the archiver bundles what 'a' delivered.
    EXPECT_TRUE(eventually([&] { return status()["archive"].value("archives_written", 0) > 0; }))
        << status().dump() << daemon_->log();
    // 'b' receives nothing more; 'a' goes on, on its first connection.
    const std::size_t left = leaving.count();
    const std::size_t before = live.count();
    ASSERT_TRUE(receives(live, before + 200));
    EXPECT_EQ(leaving.count(), left) << "a removed destination still delivers";
    EXPECT_EQ(leaving.connections(), 1);
    EXPECT_EQ(live.connections(), 1) << "the remaining destination was reconnected";
    EXPECT_TRUE(fs::exists(dir_ / "state/export/b/cursor")) << "a removed destination's cursor stays";
    stop();
    ASSERT_FALSE(HasFailure());
    EXPECT_TRUE(received_through(live, last_seq()));
    EXPECT_EQ(live.seqs(), range(1, last_seq())) << describe_seqs(live.seqs());
    // What 'b' got before it was removed: a prefix of the trail, in order, once.
    EXPECT_EQ(leaving.seqs(), range(1, leaving.seqs().size())) << describe_seqs(leaving.seqs()) << daemon_->log();
}

TEST_F(ReloadDestinations, AChangedDestinationMovesToTheNewReceiverWithoutLossOrDuplicatesBeyondInFlight) {
    SyslogReceiver first;
    SyslogReceiver second;
    SyslogReceiver other;
    start(yaml(tcp_destination("a", first.port()) + tcp_destination("z", other.port())));
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(receives(first, 300)) << daemon_->log();

    const std::string st = reload(yaml(tcp_destination("a", second.port()) + tcp_destination("z", other.port())));
    EXPECT_NE(st.find("destinations changed a (exporters.a.syslog.target)"), std::string::npos) << st;
    ASSERT_TRUE(receives(second, 300)) << daemon_->log();
    const std::size_t at_change = first.count();
    stop();
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(first.count(), at_change) << "the first receiver got records after the change";

    const std::uint64_t last = last_seq();
    EXPECT_TRUE(received_through(second, last) && received_through(other, last));
    const auto a = first.seqs();
    const auto b = second.seqs();
    ASSERT_FALSE(a.empty());
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(a, range(1, a.back())) << "before the change: in order, once";
    EXPECT_EQ(b, range(b.front(), last)) << "after the change: in order, once, to the end";
    EXPECT_LE(b.front(), a.back() + 1) << "records lost between the two receivers";
    EXPECT_LE(a.back() + 1 - b.front(), 100u) << "duplicates beyond the in-flight window (max_in_flight 100)";
    std::vector<std::uint64_t> both = a;
    both.insert(both.end(), b.begin(), b.end());
    EXPECT_EQ(sorted_unique(both), range(1, last));
    EXPECT_EQ(first.connections(), 1);
    EXPECT_EQ(second.connections(), 1);
    EXPECT_EQ(other.connections(), 1) << "the unchanged destination was reconnected";
    EXPECT_EQ(other.seqs(), range(1, last));
}

TEST_F(ReloadDestinations, ADestinationThatCannotBeBuiltRefusesTheReloadAndEverythingKeepsRunning) {
    SyslogReceiver first;
    SyslogReceiver second;
    start(yaml(tcp_destination("a", first.port())));
    ASSERT_FALSE(HasFailure());
    ASSERT_TRUE(receives(first, 100)) << daemon_->log();

    // A new TLS destination whose key file does not exist, with a move of 'a' in the same file.
    const std::string missing = dir_ / "no-such-client.key";
    const std::string broken = "  c:\n    type: syslog\n    streams: audit\n    syslog:\n      target: 127.0.0.1:" +
                               std::to_string(second.port()) + "\n      protocol: tls\n      ca: " + (dir_ / "ca.pem") +
                               "\n      cert: " + (dir_ / "client.pem") + "\n      key: " + missing + "\n";
    const std::string st = reload(yaml(tcp_destination("a", second.port()) + broken));
    EXPECT_NE(st.find("reload refused"), std::string::npos) << st;
    EXPECT_NE(st.find("exporters.c.syslog.key"), std::string::npos) << st;
    // Logged at error level.
    EXPECT_TRUE(eventually([&] {
        std::istringstream log(daemon_->log());
        for (std::string line; std::getline(log, line);)
            if (line.find("reload refused") != std::string::npos &&
                line.find("exporters.c.syslog.key") != std::string::npos)
                return line.find("error") != std::string::npos;
        return false;
    })) << daemon_->log();

    // Nothing changed: 'a' delivers to the first receiver on its connection, nothing went to the second.
    const std::size_t before = first.count();
    ASSERT_TRUE(receives(first, before + 200)) << daemon_->log();
    EXPECT_EQ(second.connections(), 0);
    EXPECT_EQ(first.connections(), 1);
    EXPECT_EQ(destination_names(), std::vector<std::string>{"a"});
    EXPECT_FALSE(fs::exists(dir_ / "state/export/c/cursor"));
    stop();
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(first.seqs(), range(1, last_seq()));
}

}  // namespace
