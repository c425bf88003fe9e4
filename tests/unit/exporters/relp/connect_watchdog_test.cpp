// The RELP connect watchdog shuts down the socket its connecting thread is stuck on, and only that
// one: another destination's fresh connection to the same address (made after the watchdog was
// armed, as librelp's re-establishment of a broken session does on that destination's thread)
// must stay open.
#include "exporters/relp/detail/connect_watchdog.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "base/unique_fd.h"

namespace hsmaudit::testing::relp {
namespace {

using exporters::relp::detail::ConnectWatchdog;
using Clock = std::chrono::steady_clock;

/// A TCP listener on 127.0.0.1 that completes connections (the kernel's backlog) and never talks.
struct SilentServer {
    UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    int port = 0;

    SilentServer() {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd.get(), 8) == 0 &&
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0)
            port = ntohs(a.sin_port);
    }
    /// Accepts the connection whose client side is bound to `client_port`.
    UniqueFd accept_from(int client_port) const {
        for (int i = 0; i < 4; ++i) {
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            UniqueFd c(::accept4(fd.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
            if (!c.valid()) return {};
            if (ntohs(peer.sin_port) == client_port) return c;
        }
        return {};
    }
};

UniqueFd connect_to(int port) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (!s.valid() || ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
    return s;
}

int local_port(const UniqueFd& s) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
    return ntohs(a.sin_port);
}

TEST(RelpConnectWatchdog, ShutsDownOnlyTheSocketItsThreadIsBlockedOn) {
    SilentServer server;
    ASSERT_NE(server.port, 0);
    const auto targets = ConnectWatchdog::resolve("127.0.0.1", std::to_string(server.port));
    ASSERT_FALSE(targets.empty());

    std::promise<void> armed;
    std::promise<void> other_connected;
    auto other_ready = other_connected.get_future().share();
    struct Outcome {
        ssize_t read = -2;
        bool fired = false;
        std::chrono::milliseconds took{};
    };
    // The connecting thread: arms the watchdog, connects after the other destination did (both
    // sockets are new since arming and go to the same address), then blocks reading an answer
    // that never comes, as librelp's TLS handshake does.
    auto connecting = std::async(std::launch::async, [&] {
        Outcome o;
        const auto start = Clock::now();
        ConnectWatchdog watchdog(targets, std::chrono::milliseconds(300));
        armed.set_value();
        other_ready.wait();
        UniqueFd s = connect_to(server.port);
        if (!s.valid()) return o;
        char c = 0;
        o.read = ::read(s.get(), &c, 1);  // returns 0 once the watchdog shut the socket down
        o.fired = watchdog.fired();
        o.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        return o;
    });
    armed.get_future().wait();
    UniqueFd other = connect_to(server.port);  // another destination, same receiver
    other_connected.set_value();
    ASSERT_TRUE(other.valid());

    ASSERT_EQ(connecting.wait_for(std::chrono::seconds(30)), std::future_status::ready)
        << "the watchdog did not end the blocked read";
    const Outcome o = connecting.get();
    EXPECT_EQ(o.read, 0) << "the blocked read ends with end of file (shut down)";
    EXPECT_TRUE(o.fired);
    EXPECT_GE(o.took, std::chrono::milliseconds(300));

    // The other connection is whole: what the server sends arrives, and it can still send.
    UniqueFd served = server.accept_from(local_port(other));
    ASSERT_TRUE(served.valid());
    ASSERT_EQ(::write(served.get(), "x", 1), 1);
    pollfd p{other.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    char c = 0;
    EXPECT_EQ(::read(other.get(), &c, 1), 1) << "the other destination's connection was shut down";
    EXPECT_EQ(c, 'x');
    EXPECT_EQ(::write(other.get(), "y", 1), 1);
}

TEST(RelpConnectWatchdog, DoesNothingWhenTheConnectEndsInTime) {
    SilentServer server;
    ASSERT_NE(server.port, 0);
    UniqueFd s;
    bool fired = true;
    {
        ConnectWatchdog watchdog(ConnectWatchdog::resolve("127.0.0.1", std::to_string(server.port)),
                                 std::chrono::seconds(30));
        s = connect_to(server.port);
        fired = watchdog.fired();
    }  // disarmed (joins its thread) long before its deadline
    ASSERT_TRUE(s.valid());
    EXPECT_FALSE(fired);
    UniqueFd served = server.accept_from(local_port(s));
    ASSERT_TRUE(served.valid());
    ASSERT_EQ(::write(served.get(), "x", 1), 1);
    char c = 0;
    EXPECT_EQ(::read(s.get(), &c, 1), 1);
}

}  // namespace
}  // namespace hsmaudit::testing::relp
