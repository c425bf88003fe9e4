// Several senders (one per exporter, each on its own runner thread) use net-snmp at the same time.
// net-snmp is not reentrant (request ids, the USM user list, the engine-time cache are process-wide):
// every net-snmp call holds NetSnmpLibrary's one lock. Here four senders, v2c and v3 traps, open
// sessions and send concurrently to a local UDP socket; every trap must arrive whole. Under the
// tsan preset this also checks our own side (stats, probe, sessions) for data races.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "exporters/snmp/engine.h"
#include "exporters/snmp/mib.h"
#include "exporters/snmp/probe.h"
#include "exporters/snmp/sender.h"

namespace hsmaudit::testing::snmp {
namespace {

namespace s = exporters::snmp;

constexpr int kSenders = 4;
constexpr int kTrapsEach = 40;

/// A UDP socket on 127.0.0.1 that counts the datagrams it receives.
class UdpSink {
public:
    UdpSink() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        if (!fd_.valid()) return;
        const int rcvbuf = 4 << 20;
        (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return;
        port_ = ntohs(a.sin_port);
        reader_ = std::jthread([this](const std::stop_token& stop) {
            char buf[65536];
            while (!stop.stop_requested()) {
                pollfd p{fd_.get(), POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                if (::recv(fd_.get(), buf, sizeof buf, 0) > 0) received_.fetch_add(1);
            }
        });
    }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] int received() const { return received_.load(); }

private:
    UniqueFd fd_;
    int port_ = 0;
    std::atomic<int> received_{0};
    std::jthread reader_;  // last: stops before the socket closes
};

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

TEST(SnmpSender, SendersOnSeveralThreadsShareNetSnmpAndEveryTrapArrives) {
    UdpSink sink;
    ASSERT_NE(sink.port(), 0);
    auto base = s::parse_oid(s::kDefaultEnterpriseOid);
    ASSERT_TRUE(base);
    const auto* def = s::find_notification("hsmFanAlarm");
    ASSERT_NE(def, nullptr);

    std::vector<s::Probe> probes(kSenders);
    std::vector<std::unique_ptr<s::Sender>> senders;
    for (int i = 0; i < kSenders; ++i) {
        s::ReceiverConfig r;
        r.name = "r" + std::to_string(i);
        r.address = "udp:127.0.0.1:" + std::to_string(sink.port());
        r.v3 = i % 2 == 1;  // v3 traps use the engine-time cache and the USM user list
        r.community = "public";
        r.user = "hsmaudit";
        r.auth_password = "auth-pass-1234";
        r.priv_password = "priv-pass-5678";
        s::EngineState engine;
        engine.engine_id = s::generate_engine_id(32473);
        engine.boots = 1;
        auto sender = s::Sender::create({r}, engine, *base, probes[static_cast<std::size_t>(i)], now_ms);
        ASSERT_TRUE(sender) << sender.error().describe();
        senders.push_back(std::move(*sender));
    }

    std::atomic<bool> go{false};
    std::vector<std::jthread> threads;
    threads.reserve(senders.size());
    for (auto& sender : senders) {
        threads.emplace_back([&go, &sender, def] {
            while (!go.load()) std::this_thread::yield();
            for (int n = 0; n < kTrapsEach; ++n) {
                s::Notification note;
                note.def = def;
                note.action = s::Action::raise;
                note.condition = "sensor:FAN" + std::to_string(n);
                note.time_ms = 1'795'500'000'000;
                const auto ticket = sender->submit(note);
                for (int i = 0; i < 100 && !sender->complete(ticket); ++i) sender->pump(std::chrono::milliseconds(10));
                if (n % 8 == 0) sender->reset();  // closes the session: the next trap opens a new one
            }
        });
    }
    // Meanwhile another thread reads the stats, as status and metrics do.
    std::jthread reader([&](const std::stop_token& stop) {
        while (!stop.stop_requested())
            for (const auto& sender : senders) (void)sender->receiver_stats();
    });
    go.store(true);
    for (auto& t : threads) t.join();
    reader.request_stop();
    reader.join();

    for (int i = 0; i < kSenders; ++i) {
        const auto st = probes[static_cast<std::size_t>(i)].snapshot();
        EXPECT_EQ(st.traps_sent, static_cast<std::uint64_t>(kTrapsEach)) << "sender " << i;
        EXPECT_EQ(st.send_errors, 0u) << "sender " << i;
        EXPECT_EQ(st.session_failures, 0u) << "sender " << i;
    }
    const int expected = kSenders * kTrapsEach;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (sink.received() < expected && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(sink.received(), expected);
}

}  // namespace
}  // namespace hsmaudit::testing::snmp
