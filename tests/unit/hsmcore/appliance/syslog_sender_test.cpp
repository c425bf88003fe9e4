#include "hsmcore/appliance/syslog_sender.h"

#include <gtest/gtest.h>

#include "tests/unit/hsmcore/appliance/loopback_peers.h"

namespace hsmaudit::appliance {
namespace {

using namespace std::chrono_literals;
using testing::DatagramPeer;
using testing::TcpPeer;

constexpr auto kIdle = 10'000ms;  // only fails a stuck test

std::unique_ptr<SyslogSender> open_sender(const std::string& dest, SenderOptions o = {}) {
    auto d = SyslogDestination::parse(dest);
    EXPECT_TRUE(d) << dest;
    auto s = SyslogSender::open(*d, o);
    EXPECT_TRUE(s);
    return std::move(*s);
}

TEST(SyslogSender, UdpDeliversOneDatagramPerMessage) {
    auto peer = DatagramPeer::udp();
    auto s = open_sender("udp:127.0.0.1:" + std::to_string(peer.port()));
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(s->send("<14>1 - - - - - - message " + std::to_string(i)));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(peer.receive(), "<14>1 - - - - - - message " + std::to_string(i));
    ASSERT_TRUE(s->wait_idle(kIdle));
    EXPECT_EQ(s->stats().sent, 5u);
    EXPECT_EQ(s->stats().dropped_queue_full, 0u);
}

TEST(SyslogSender, UnixDatagramDelivers) {
    const auto dir = testing::make_temp_dir();
    auto peer = DatagramPeer::unix_socket(dir / "log.sock");
    {
        auto s = open_sender("unix:" + (dir / "log.sock").string());
        EXPECT_TRUE(s->send("<174>1 - myLuna NTLS 1234 - - hello"));
        EXPECT_EQ(peer.receive(), "<174>1 - myLuna NTLS 1234 - - hello");
    }
    std::filesystem::remove_all(dir);
}

TEST(SyslogSender, UnixDatagramWithoutReceiverRetriesUntilItAppears) {
    const auto dir = testing::make_temp_dir();
    SenderOptions o;
    o.reconnect_min = 1ms;
    o.reconnect_max = 5ms;
    auto s = open_sender("unix:" + (dir / "late.sock").string(), o);
    EXPECT_TRUE(s->send("early"));
    EXPECT_FALSE(s->wait_idle(50ms));  // nobody listens: the message stays queued
    EXPECT_GE(s->stats().connect_failures, 1u);
    auto peer = DatagramPeer::unix_socket(dir / "late.sock");
    EXPECT_EQ(peer.receive(), "early");
    s.reset();
    std::filesystem::remove_all(dir);
}

TEST(SyslogSender, TcpUsesOctetCountingAndReconnects) {
    TcpPeer peer;
    SenderOptions o;
    o.reconnect_min = 1ms;
    o.reconnect_max = 20ms;
    auto s = open_sender("tcp:127.0.0.1:" + std::to_string(peer.port()), o);
    const std::string with_newline = "<174>1 - h a - - - two\nlines";
    s->send("<174>1 - h a - - - first");
    s->send(with_newline);
    ASSERT_TRUE(peer.accept_one());
    EXPECT_EQ(peer.receive_frame(), "<174>1 - h a - - - first");
    EXPECT_EQ(peer.receive_frame(), with_newline);
    ASSERT_TRUE(s->wait_idle(kIdle));

    peer.close_connection();  // the collector restarts
    s->send("<174>1 - h a - - - after reconnect");
    ASSERT_TRUE(peer.accept_one());
    EXPECT_EQ(peer.receive_frame(), "<174>1 - h a - - - after reconnect");
    ASSERT_TRUE(s->wait_idle(kIdle));
    EXPECT_EQ(s->stats().connects, 2u);
    EXPECT_EQ(s->stats().sent, 3u);
}

TEST(SyslogSender, FullQueueDropsAndCountsWithoutBlocking) {
    // A port nobody listens on: bind one, read it back, close it.
    std::uint16_t port = 0;
    { port = TcpPeer().port(); }
    SenderOptions o;
    o.queue_capacity = 2;
    o.reconnect_min = 1000ms;  // stays down for the whole test
    o.reconnect_max = 1000ms;
    auto s = open_sender("tcp:127.0.0.1:" + std::to_string(port), o);
    int accepted = 0;
    for (int i = 0; i < 5; ++i) accepted += s->send("m" + std::to_string(i)) ? 1 : 0;
    EXPECT_EQ(accepted, 2);
    EXPECT_EQ(s->stats().dropped_queue_full, 3u);
    s.reset();  // stops promptly although the back-off is long
}

TEST(SyslogSender, QueuedMessagesAtStopAreCountedUndeliverable) {
    std::uint16_t port = 0;
    { port = TcpPeer().port(); }
    SenderOptions o;
    o.reconnect_min = 1000ms;
    o.reconnect_max = 1000ms;
    auto s = open_sender("tcp:127.0.0.1:" + std::to_string(port), o);
    s->send("a");
    s->send("b");
    s->stop();
    s->stop();  // idempotent
    EXPECT_EQ(s->stats().enqueued, 2u);
    EXPECT_EQ(s->stats().sent, 0u);
    EXPECT_EQ(s->stats().dropped_undeliverable, 2u);
}

TEST(SyslogSender, RejectsBadOptions) {
    auto d = SyslogDestination::parse("udp:127.0.0.1:514");
    SenderOptions o;
    o.queue_capacity = 0;
    EXPECT_FALSE(SyslogSender::open(*d, o));
    o = {};
    o.reconnect_max = 1ms;
    o.reconnect_min = 10ms;
    EXPECT_FALSE(SyslogSender::open(*d, o));
}

}  // namespace
}  // namespace hsmaudit::appliance
