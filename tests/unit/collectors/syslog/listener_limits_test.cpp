// Issue 17: a TCP listener that no sender can starve. Idle connections time out; at a connection
// limit (global or per source address) the connection idle longest makes room before a new sender
// is refused; refusals, evictions and drops are counted and alerted (rate-limited, the count told
// later without a new event); a full sink holds TCP back (nothing lost) and drops datagrams
// (counted); stop() returns while the listener is held back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "collectors/syslog/listener.h"
#include "tests/unit/collectors/syslog/test_sink.h"

namespace hsmaudit::collectors::syslog {
namespace {

using namespace std::chrono_literals;
using testing::CollectingSink;
using testing::kStuck;

/// Polls `pred` every 10 ms until it holds or the stuck bound passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = kStuck) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

/// A TCP client from a chosen loopback address (127.0.0.x), so the per-peer limit can be tested.
class Conn {
public:
    explicit Conn(std::uint16_t port, const char* from = "127.0.0.1", int type = SOCK_STREAM) {
        fd_.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, from, &local.sin_addr);
        bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) == 0;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    [[nodiscard]] bool ok() const { return bound_ && ok_; }
    bool send(std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    /// Sends without blocking; the bytes the kernel took (a closed window takes none).
    std::size_t send_some(std::string_view data) {
        const auto n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    /// True if the listener closed the connection (EOF or reset) within `limit`.
    bool closed_by_peer(std::chrono::milliseconds limit = kStuck) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
        char c;
        return ::recv(fd_.get(), &c, 1, MSG_DONTWAIT) <= 0;
    }

private:
    UniqueFd fd_;
    bool bound_ = false;
    bool ok_ = false;
};

class RecordingAlerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override {
        std::lock_guard lock(mutex_);
        arrived_.push_back(std::chrono::steady_clock::now());
        alerts_.push_back(std::move(a));
    }
    /// When each alert of `kind` arrived, in order.
    std::vector<std::chrono::steady_clock::time_point> arrivals(const std::string& kind) {
        std::lock_guard lock(mutex_);
        std::vector<std::chrono::steady_clock::time_point> out;
        for (std::size_t i = 0; i < alerts_.size(); ++i)
            if (alerts_[i].kind == kind) out.push_back(arrived_[i]);
        return out;
    }
    std::vector<agent::Alert> of(const std::string& kind) {
        std::lock_guard lock(mutex_);
        std::vector<agent::Alert> out;
        for (const auto& a : alerts_)
            if (a.kind == kind) out.push_back(a);
        return out;
    }

private:
    std::mutex mutex_;
    std::vector<agent::Alert> alerts_;
    std::vector<std::chrono::steady_clock::time_point> arrived_;  // beside alerts_
};

/// A sink's room the test opens and closes (an eventfd readable while open, as the spool's).
class TestGate final : public Backpressure {
public:
    TestGate() : fd_(::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)) {}
    [[nodiscard]] bool has_room() const override { return open_.load(); }
    [[nodiscard]] int room_fd() const override { return fd_.get(); }
    void close() {
        std::uint64_t v = 0;
        open_ = false;
        [[maybe_unused]] auto n = ::read(fd_.get(), &v, sizeof v);
    }
    void open() {
        const std::uint64_t one = 1;
        open_ = true;
        [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof one);
    }

private:
    UniqueFd fd_;
    std::atomic<bool> open_{true};
};

std::unique_ptr<SyslogListener> start(ListenerOptions o, SyslogSink& sink, Probe& probe) {
    auto l = SyslogListener::start(std::move(o), sink, probe);
    EXPECT_TRUE(l) << l.error().describe();
    return l ? std::move(*l) : nullptr;
}

TEST(ListenerLimits, IdleConnectionsAreClosedAndTheirPartialFrameDelivered) {
    CollectingSink sink;
    Probe probe;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.idle_timeout = 300ms;
    auto l = start(o, sink, probe);
    ASSERT_TRUE(l);
    Conn idle(l->port());
    Conn partial(l->port());
    Conn busy(l->port());
    ASSERT_TRUE(idle.ok() && partial.ok() && busy.ok());
    ASSERT_TRUE(partial.send("<13>1 - h a - - - no LF yet"));
    // The busy one writes every 100 ms for 1 s: three idle timeouts pass, it stays open.
    const auto until = std::chrono::steady_clock::now() + 1s;
    while (std::chrono::steady_clock::now() < until) {
        ASSERT_TRUE(busy.send("<13>1 - h a - - - tick\n"));
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(idle.closed_by_peer());
    EXPECT_TRUE(partial.closed_by_peer());
    EXPECT_FALSE(busy.closed_by_peer(0ms));
    EXPECT_EQ(probe.connections_idle_closed.load(), 2u);
    EXPECT_TRUE(eventually([&] { return probe.connections_open.load() == 1; }));
    bool kept = false;
    std::string seen;
    for (const auto& m : sink.take()) {
        kept = kept || m.raw.find("no LF yet") != std::string::npos;
        seen += m.raw + " | ";
    }
    // Closed as at the peer's close: an LF-framed last line without its LF is a message.
    EXPECT_TRUE(kept) << "the idle connection's unterminated frame is delivered: " << seen;
}

TEST(ListenerLimits, AtTheLimitTheConnectionIdleLongestMakesRoom) {
    CollectingSink sink;
    Probe probe;
    RecordingAlerts alerts;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.max_connections = 4;
    o.evict_min_idle = 200ms;
    o.alerts = &alerts;
    auto l = start(o, sink, probe);
    ASSERT_TRUE(l);
    std::vector<std::unique_ptr<Conn>> idle;
    for (int i = 0; i < 4; ++i) {
        idle.push_back(std::make_unique<Conn>(l->port()));
        ASSERT_TRUE(eventually([&] { return probe.connections_open.load() == static_cast<std::uint64_t>(i + 1); }));
        std::this_thread::sleep_for(20ms);  // distinct ages: idle[0] is the oldest
    }
    // Four idle connections hold every slot, as 64 did before issue 17: a new sender still gets in.
    std::this_thread::sleep_for(250ms);
    Conn sender(l->port());
    ASSERT_TRUE(sender.send("<13>1 - h a - - - gets in\n"));
    const auto got = sink.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].msg, "gets in");
    EXPECT_TRUE(idle[0]->closed_by_peer()) << "the oldest idle connection made room";
    EXPECT_FALSE(idle[1]->closed_by_peer(0ms));
    EXPECT_EQ(probe.connections_evicted.load(), 1u);
    EXPECT_EQ(probe.connections_rejected.load(), 0u);
    ASSERT_TRUE(eventually([&] { return !alerts.of("syslog.connection_evicted").empty(); }));
    EXPECT_NE(alerts.of("syslog.connection_evicted")[0].message.find("1 idle TCP connection(s) closed"),
              std::string::npos)
        << alerts.of("syslog.connection_evicted")[0].message;
}

TEST(ListenerLimits, BusyConnectionsAreKeptAndRefusalsAlertedRateLimited) {
    CollectingSink sink;
    Probe probe;
    RecordingAlerts alerts;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.max_connections = 2;
    o.evict_min_idle = std::chrono::hours(1);  // nobody counts as idle
    o.alerts = &alerts;
    o.notify_interval = 2s;
    auto l = start(o, sink, probe);
    ASSERT_TRUE(l);
    Conn a(l->port()), b(l->port());
    ASSERT_TRUE(eventually([&] { return probe.connections_open.load() == 2; }));
    std::vector<std::unique_ptr<Conn>> refused;
    const auto first_refused = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) {
        refused.push_back(std::make_unique<Conn>(l->port()));
        EXPECT_TRUE(refused.back()->closed_by_peer()) << i;
    }
    EXPECT_EQ(probe.connections_rejected.load(), 4u);
    EXPECT_EQ(probe.connections_evicted.load(), 0u);
    EXPECT_FALSE(a.closed_by_peer(0ms));
    // The first refusal is told at once (with the refusals of the same accept round: how the four
    // split depends on how fast the loop above and the listener ran); the rest are counted and told
    // when the interval has passed, with no new event to trigger it. Every refusal is told, in at
    // most one alert per interval.
    const auto told_count = [&] {
        std::uint64_t n = 0;
        for (const auto& told_one : alerts.of("syslog.connection_refused")) n += std::stoull(told_one.message);
        return n;
    };
    ASSERT_TRUE(eventually([&] { return told_count() == 4; }, 10s)) << told_count();
    const auto told = alerts.of("syslog.connection_refused");
    EXPECT_EQ(told[0].severity, agent::Severity::warning);
    EXPECT_NE(told[0].message.find("TCP connection(s) refused"), std::string::npos) << told[0].message;
    EXPECT_NE(told.back().message.find("syslog.max_connections (2)"), std::string::npos) << told.back().message;
    const auto at = alerts.arrivals("syslog.connection_refused");
    EXPECT_LT(at[0] - first_refused, 1500ms) << "the first refusal is told at once, not after the 2 s interval";
    for (std::size_t i = 1; i < at.size(); ++i)
        EXPECT_GE(at[i] - at[i - 1], 1900ms) << "alert " << i << " came sooner than the interval after the one before";
    const std::size_t before = told.size();
    std::this_thread::sleep_for(2500ms);  // a time-based property: one interval with nothing new
    EXPECT_EQ(alerts.of("syslog.connection_refused").size(), before) << "nothing new, nothing told";
}

TEST(ListenerLimits, PerPeerLimitEvictsThatPeersOwnIdleConnectionOnly) {
    CollectingSink sink;
    Probe probe;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.max_connections_per_peer = 2;
    o.evict_min_idle = 1s;
    auto l = start(o, sink, probe);
    ASSERT_TRUE(l);
    Conn other(l->port(), "127.0.0.2");
    ASSERT_TRUE(eventually([&] { return probe.connections_open.load() == 1; }));
    std::this_thread::sleep_for(50ms);
    Conn a1(l->port(), "127.0.0.1");
    Conn a2(l->port(), "127.0.0.1");
    ASSERT_TRUE(eventually([&] { return probe.connections_open.load() == 3; }));
    // a1 and a2 are busy (younger than 1 s): a third from 127.0.0.1 is refused...
    Conn a3(l->port(), "127.0.0.1");
    EXPECT_TRUE(a3.closed_by_peer());
    EXPECT_EQ(probe.connections_rejected.load(), 1u);
    // ...and once they are idle, a fourth takes a1's place; 127.0.0.2's older connection stays.
    std::this_thread::sleep_for(1100ms);
    Conn a4(l->port(), "127.0.0.1");
    ASSERT_TRUE(a4.send("<13>1 - h a - - - a4\n"));
    EXPECT_EQ(sink.wait_for(1).size(), 1u);
    EXPECT_TRUE(a1.closed_by_peer());
    EXPECT_FALSE(other.closed_by_peer(0ms));
    EXPECT_EQ(probe.connections_evicted.load(), 1u);
}

TEST(ListenerLimits, AFullSinkHoldsTcpBackWithoutLossAndDropsDatagramsCounted) {
    CollectingSink sink;
    Probe probe;
    RecordingAlerts alerts;
    TestGate gate;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.backpressure = &gate;
    o.alerts = &alerts;
    o.idle_timeout = 300ms;  // a connection held back with bytes waiting is not idle
    auto tcp = start(o, sink, probe);
    o.endpoint = "udp:127.0.0.1:0";
    auto udp = start(o, sink, probe);
    ASSERT_TRUE(tcp && udp);
    Conn c(tcp->port());
    ASSERT_TRUE(c.send("<13>1 - h a - - - before\n"));
    ASSERT_EQ(sink.wait_for(1).size(), 1u);
    sink.take();

    gate.close();
    // Held back: what the sender writes stays in the kernel until its window closes; the sender
    // is slowed down (its sends take nothing more), nothing is read or lost.
    const std::string line(1000, 'x');
    std::size_t sent = 0, lines = 0;
    std::string pending;
    for (int stalls = 0; stalls < 20;) {
        if (pending.empty()) pending = "<13>1 - h a - - - " + std::to_string(lines++) + " " + line + "\n";
        const auto n = c.send_some(pending);
        if (n == 0) {
            ++stalls;
            std::this_thread::sleep_for(20ms);
            continue;
        }
        stalls = 0;
        sent += n;
        pending.erase(0, n);
    }
    EXPECT_GT(sent, 64u * 1024) << "the kernel buffers some before the window closes";
    std::this_thread::sleep_for(400ms);  // past the idle timeout, held back
    EXPECT_TRUE(sink.take().empty()) << "nothing is read while the sink is full";
    EXPECT_EQ(probe.connections_idle_closed.load(), 0u);
    Conn dgram(udp->port(), "127.0.0.1", SOCK_DGRAM);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(dgram.send("<13>1 - h a - - - datagram"));
    ASSERT_TRUE(eventually([&] { return probe.dropped_full.load() == 5; }));
    ASSERT_TRUE(eventually([&] { return !alerts.of("syslog.datagrams_dropped").empty(); }));
    EXPECT_EQ(alerts.of("syslog.datagrams_dropped")[0].severity, agent::Severity::critical);

    gate.open();
    ASSERT_TRUE(c.send(pending));  // the rest of the last line, now that it is read again
    const std::size_t complete = lines;
    const auto got = sink.wait_for(complete);
    ASSERT_EQ(got.size(), complete);
    for (std::size_t i = 0; i < complete; ++i)
        ASSERT_EQ(got[i].msg, std::to_string(i) + " " + line) << "in order, none lost";
    ASSERT_TRUE(dgram.send("<13>1 - h a - - - after"));
    EXPECT_EQ(sink.wait_for(complete + 1).size(), complete + 1);
}

TEST(ListenerLimits, StopReturnsWhileHeldBack) {
    CollectingSink sink;
    Probe probe;
    TestGate gate;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.backpressure = &gate;
    auto l = start(o, sink, probe);
    ASSERT_TRUE(l);
    Conn c(l->port());
    ASSERT_TRUE(eventually([&] { return probe.connections_open.load() == 1; }));
    gate.close();
    ASSERT_TRUE(c.send("<13>1 - h a - - - waiting\n"));
    const auto t0 = std::chrono::steady_clock::now();
    l->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(probe.connections_open.load(), 0u);
}

TEST(ListenerLimits, BadOptionsAreRefused) {
    CollectingSink sink;
    Probe probe;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.idle_timeout = -1ms;
    EXPECT_FALSE(SyslogListener::start(o, sink, probe));
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
