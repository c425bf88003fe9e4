#include "collectors/syslog/listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>
#include <latch>
#include <random>

#include "collectors/syslog/errc.h"
#include "hsmcore/appliance/appliance.h"
#include "hsmcore/appliance/syslog_sender.h"
#include "tests/unit/collectors/syslog/test_sink.h"

namespace hsmaudit::collectors::syslog {
namespace {

using namespace std::chrono_literals;
using testing::CollectingSink;

// A plain client socket for hostile input.
class Client {
public:
    static Client udp(std::uint16_t port) {
        Client c;
        c.fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        c.connect_inet(port);
        return c;
    }
    static Client tcp(std::uint16_t port) {
        Client c;
        c.fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        c.connect_inet(port);
        return c;
    }
    static Client unix_dgram(const std::string& path) {
        Client c;
        c.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        c.ok_ = ::connect(c.fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        return c;
    }
    bool ok() const { return ok_; }
    bool send(std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    void close() { fd_.reset(); }
    /// True if the peer closed the connection (read returns 0) within the stuck bound.
    bool wait_closed_by_peer() {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 20'000) <= 0) return false;
        char c;
        return ::recv(fd_.get(), &c, 1, 0) <= 0;
    }

private:
    void connect_inet(std::uint16_t port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    UniqueFd fd_;
    bool ok_ = false;
};

std::unique_ptr<SyslogListener> listen(const std::string& endpoint, SyslogSink& sink, Probe& probe,
                                       std::size_t max_bytes = kDefaultMaxMessageBytes) {
    ListenerOptions o;
    o.endpoint = endpoint;
    o.max_message_bytes = max_bytes;
    auto l = SyslogListener::start(o, sink, probe);
    EXPECT_TRUE(l) << (l ? "" : l.error().message);
    return l ? std::move(*l) : nullptr;
}

TEST(SyslogListener, UdpReceivesParsesAndCountsHostileDatagrams) {
    CollectingSink sink;
    Probe probe;
    auto l = listen("udp:127.0.0.1:0", sink, probe, 1024);
    ASSERT_NE(l->port(), 0);
    auto c = Client::udp(l->port());
    ASSERT_TRUE(c.ok());
    c.send("<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 - hello\n");
    c.send(std::string("\x00\xFF\xFE binary \x01", 12));
    c.send("<999>bad pri");
    c.send(std::string(5000, 'Z'));  // oversized datagram
    c.send("<13>Oct 11 22:14:15 host tag: last");
    const auto got = sink.wait_for(5);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[0].msg, "hello");
    EXPECT_EQ(got[0].transport, Transport::udp);
    EXPECT_EQ(got[0].peer.rfind("127.0.0.1:", 0), 0u);
    EXPECT_TRUE(got[1].malformed);
    EXPECT_EQ(got[1].raw, std::string("\x00\xFF\xFE binary \x01", 12)) << "the datagram's bytes exactly";
    EXPECT_TRUE(got[2].malformed);
    EXPECT_TRUE(got[3].oversized);
    EXPECT_EQ(got[3].raw.size(), 1024u);
    EXPECT_EQ(got[4].app_name, "tag");
    const auto s = probe.snapshot();
    EXPECT_EQ(s.received, 5u);
    EXPECT_EQ(s.malformed, 3u);  // binary, bad PRI, the Z run (no PRI, no timestamp)
    EXPECT_EQ(s.oversized, 1u);
    l->stop();
}

TEST(SyslogListener, UnixDatagramSocketIsCreatedAndRemoved) {
    const auto dir = testing::make_temp_dir();
    const std::string path = (dir / "log.sock").string();
    {
        CollectingSink sink;
        Probe probe;
        auto l = listen("unix:" + path, sink, probe);
        auto c = Client::unix_dgram(path);
        ASSERT_TRUE(c.ok());
        c.send("<174>1 - myLuna NTLS 1234 LINKUP - up");
        const auto got = sink.wait_for(1);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].transport, Transport::unix_datagram);
        EXPECT_EQ(got[0].app_name, "NTLS");
        l->stop();
        EXPECT_FALSE(std::filesystem::exists(path));
    }
    // A regular file in the way is not replaced.
    { std::ofstream(dir / "file") << "keep"; }
    CollectingSink sink;
    Probe probe;
    auto r = SyslogListener::start({"unix:" + (dir / "file").string()}, sink, probe);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("not a socket"), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(dir / "file"));
    std::filesystem::remove_all(dir);
}

TEST(SyslogListener, TcpDetectsFramingPerConnectionAndSurvivesHostileStreams) {
    CollectingSink sink;
    Probe probe;
    auto l = listen("tcp:127.0.0.1:0", sink, probe, 4096);
    auto octet = Client::tcp(l->port());
    auto lf = Client::tcp(l->port());
    auto hostile = Client::tcp(l->port());
    ASSERT_TRUE(octet.ok() && lf.ok() && hostile.ok());
    octet.send("17 <13>1 - - - - - -21 <13>1 - - - - - - a\nb");
    lf.send("2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: info : 0 : Starting up NTLS........\n");
    std::string huge = "<13>";
    huge.append(1 << 20, 'h');  // a 1 MiB line
    hostile.send(huge + "\n" + std::string("\xFF\x00\x80\n", 4));
    auto got = sink.wait_for(5);
    ASSERT_EQ(got.size(), 5u);
    int octets = 0, luna = 0, oversized = 0, binary = 0;
    for (const auto& m : got) {
        if (m.format == SyslogFormat::rfc5424) ++octets;
        if (m.format == SyslogFormat::luna_file) ++luna;
        if (m.oversized) {
            ++oversized;
            EXPECT_EQ(m.raw.size(), 4096u);
        }
        if (m.raw.find('\n') != std::string::npos || m.raw.find('\xFF') != std::string::npos) ++binary;
        if (m.format == SyslogFormat::rfc5424 && m.raw.find('\n') != std::string::npos) {
            EXPECT_EQ(m.msg, "a\nb") << "an octet-counted message keeps its LF: one event";
        }
    }
    EXPECT_EQ(octets, 2);
    EXPECT_EQ(luna, 1);
    EXPECT_EQ(oversized, 1);
    EXPECT_EQ(binary, 2);  // the binary line, and the octet-counted message with a newline (kept in raw)
    // A frame cut by the peer closing is delivered as malformed.
    octet.send("40 <13>1 - - - - - - cut");
    octet.close();
    got = sink.wait_for(6);
    ASSERT_EQ(got.size(), 6u);
    EXPECT_TRUE(got[5].malformed);
    EXPECT_NE(got[5].malformed_reason.find("truncated"), std::string::npos);
    EXPECT_EQ(probe.snapshot().framing_errors, 1u);
    EXPECT_EQ(probe.snapshot().connections_accepted, 3u);
    l->stop();
}

TEST(SyslogListener, ConnectionsOverTheLimitAreRejected) {
    CollectingSink sink;
    Probe probe;
    ListenerOptions o;
    o.endpoint = "tcp:127.0.0.1:0";
    o.max_connections = 2;
    o.evict_min_idle = std::chrono::hours(1);  // both busy: none makes room (tests/.../listener_limits_test.cpp)
    auto l = SyslogListener::start(o, sink, probe);
    ASSERT_TRUE(l);
    auto a = Client::tcp((*l)->port());
    auto b = Client::tcp((*l)->port());
    a.send("<13>a\n");
    b.send("<13>b\n");
    sink.wait_for(2);
    auto c = Client::tcp((*l)->port());
    EXPECT_TRUE(c.wait_closed_by_peer());
    EXPECT_EQ(probe.snapshot().connections_rejected, 1u);
    EXPECT_EQ(probe.snapshot().connections_accepted, 2u);
}

TEST(SyslogListener, BadEndpointsAreNamed) {
    CollectingSink sink;
    Probe probe;
    for (const char* ep : {"udp:127.0.0.1", "ftp:1.2.3.4:21", "tcp:host.example:601", "udp:127.0.0.1:99999", "unix:"}) {
        auto r = SyslogListener::start({ep}, sink, probe);
        ASSERT_FALSE(r) << ep;
        EXPECT_EQ(r.error().code, errc::invalid_argument) << ep;
    }
}

// Blocks the listener's thread in the sink until released: the kernel queue then overflows.
class GateSink final : public SyslogSink {
public:
    void on_message(SyslogMessage&& m) override {
        gate_.wait();
        inner.on_message(std::move(m));
    }
    void open() { gate_.count_down(); }
    CollectingSink inner;

private:
    std::latch gate_{1};
};

TEST(SyslogListener, KernelDropsAreCounted) {
    GateSink sink;
    Probe probe;
    ListenerOptions o;
    o.endpoint = "udp:127.0.0.1:0";
    o.receive_buffer_bytes = 4096;
    auto l = SyslogListener::start(o, sink, probe);
    ASSERT_TRUE(l);
    auto c = Client::udp((*l)->port());
    constexpr int kSent = 2000;
    for (int i = 0; i < kSent; ++i) c.send("<13>1 - h a p m - datagram " + std::to_string(i));
    sink.open();
    // Every datagram is either delivered or counted as dropped. The kernel stamps the drop count on the
    // next datagram it queues, so keep sending markers until the books balance.
    int markers = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto s = probe.snapshot();
        if (markers > 0 &&
            s.received + s.dropped == static_cast<std::uint64_t>(kSent) + static_cast<std::uint64_t>(markers))
            break;
        c.send("<13>1 - h a p m - marker");
        ++markers;
        std::this_thread::sleep_for(10ms);
    }
    const auto s = probe.snapshot();
    EXPECT_GT(s.dropped, 0u);
    EXPECT_EQ(s.received + s.dropped, static_cast<std::uint64_t>(kSent + markers));
    (*l)->stop();
}

// Part 1's sender and appliance, over real sockets, into this collector.
TEST(RoundTrip, ApplianceStreamArrivesParsedOverEveryTransport) {
    using namespace std::chrono;
    const auto dir = testing::make_temp_dir();
    for (const std::string kind : {"udp", "tcp", "unix"}) {
        CollectingSink sink;
        Probe probe;
        const std::string ep = kind == "unix" ? "unix:" + (dir / "rt.sock").string() : kind + ":127.0.0.1:0";
        auto l = listen(ep, sink, probe);
        ASSERT_TRUE(l);
        appliance::ApplianceOptions o;
        o.destination = kind == "unix" ? ep : kind + ":127.0.0.1:" + std::to_string(l->port());
        o.tick_interval = 24h;
        const auto t0 = sys_days{year{2026} / 11 / 24} + 6h + 29min + 123456us;
        o.clock = [t0] { return t0; };
        auto a = appliance::Appliance::start(o);
        ASSERT_TRUE(a) << a.error().message;
        (*a)->login(appliance::LoginRole::admin, "admin", "10.0.0.9", false);
        (*a)->ntls_link_up("192.0.2.10", "app \"01\" ]");
        const auto got = sink.wait_for(3);
        ASSERT_EQ(got.size(), 3u) << kind;
        for (const auto& m : got) {
            EXPECT_FALSE(m.malformed) << kind << ": " << m.malformed_reason << " in " << m.raw;
            EXPECT_EQ(m.format, SyslogFormat::rfc5424);
            EXPECT_EQ(m.hostname, "myLuna");
            EXPECT_EQ(m.timestamp, time_point_cast<microseconds>(t0));
        }
        EXPECT_EQ(got[0].msgid, "STARTUP");
        EXPECT_EQ(got[1].facility, 21);
        EXPECT_EQ(got[1].severity, 4);
        EXPECT_EQ(got[1].app_name, "lunash");
        EXPECT_NE(got[1].msg.find("HSM Admin Login: incorrect password or PED key"), std::string::npos);
        ASSERT_EQ(got[2].structured_data.size(), 1u);
        EXPECT_EQ(got[2].structured_data[0].id, "ntls@32473");
        EXPECT_EQ(got[2].structured_data[0].params[2].value, "app \"01\" ]");
        (*a)->stop();
        l->stop();
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
