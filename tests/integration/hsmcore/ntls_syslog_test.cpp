// `hsmcore serve --syslog unix:SOCKET` emits the appliance's host syslog: a client's control
// connection making module requests is an NTLS link that comes up and goes down; the agent's
// host-only connection (ACK, SEAL, STATUS, CHECKPOINT) is not.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/common/process.h"

namespace hsmaudit::hsmcore {
namespace {

namespace fs = std::filesystem;
using testing::Process;

const std::string kHsmcore = std::string(HSMAUDIT_BINARY_DIR) + "/hsmcore/hsmcore";

TEST(NtlsSyslog, ModuleClientsAreNtlsLinksUpThenDown) {
    std::string tmpl = (fs::temp_directory_path() / "hsmntls_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    const std::string dir = tmpl;
    const std::string sock_path = dir + "/syslog.sock";
    const int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sock, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const timeval timeout{0, 200'000};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    auto [code, out] = testing::run({kHsmcore, "init", "--dir", dir + "/m", "--ring-size", "1048576"}, dir + "/init");
    ASSERT_EQ(code, 0) << out;
    Process serve({kHsmcore, "serve", "--dir", dir + "/m", "--syslog", "unix:" + sock_path}, dir + "/serve.out",
                  dir + "/serve.err");
    for (int i = 0; i < 500 && !fs::exists(dir + "/m/control.sock"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto [lcode, lout] = testing::run(
        {kHsmcore, "load", "--dir", dir + "/m", "--rate", "200", "--duration", "0.5", "--threads", "2"}, dir + "/load");
    ASSERT_EQ(lcode, 0) << lout;
    // The status command reads the ring directly: no control connection, no link.
    std::vector<std::string> messages;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto count = [&](const std::string& needle) {
        int n = 0;
        for (const auto& m : messages) n += m.find(needle) != std::string::npos ? 1 : 0;
        return n;
    };
    while (std::chrono::steady_clock::now() < deadline && count("Link down") < 2) {
        char buf[8192];
        const ssize_t n = ::recv(sock, buf, sizeof buf, 0);
        if (n > 0) messages.emplace_back(buf, static_cast<std::size_t>(n));
    }
    serve.signal(SIGTERM);
    serve.wait(std::chrono::seconds(30));
    ::close(sock);
    EXPECT_EQ(count("Link up"), 2) << "one per load client connection";
    EXPECT_EQ(count("Link down"), 2);
    EXPECT_GE(count("NTLS"), 4);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace hsmaudit::hsmcore
