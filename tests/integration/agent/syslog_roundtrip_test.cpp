// Issue 17's "byte-exact round trip": 10,000 random syslog messages (any bytes, CR, LF,
// backslashes, NUL, invalid UTF-8, long ones up to syslog.max_message_bytes) sent to the real
// hsmauditd's listeners (octet-counted over TCP, UDP datagrams, unix datagrams), spooled, and
// delivered by a destination with format json (the syslog exporter over TCP, octet counting) to a
// receiver in this test, which must be able to recover the exact bytes of every message from what
// it got: `syslog.raw`, or `syslog.raw_base64` where the bytes are not UTF-8.
//
// UDP has no flow control: the test sends datagrams in windows small enough for the socket's
// default receive buffer and waits until the agent counted them received (status.json) before the
// next window, so a loss is the agent's, not the test's. TCP and unix datagram senders block.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "daemon_harness.h"
#include "mac/note.h"
#include "tests/integration/common/frame_receiver.h"
#include "tests/integration/common/ports.h"

namespace {

using namespace hsmaudit::testing;
using nlohmann::json;

constexpr std::size_t kMessages = 10'000;
constexpr std::size_t kMaxMessage = 65'000;  // syslog.max_message_bytes; fits one UDP datagram

/// Receives RFC 6587 octet-counted frames holding JSON events and keeps, per event id, the bytes
/// the event says were received (raw_base64, else raw). Its thread stops with it.
/// Thread-safety: the accessors from any thread.
class JsonReceiver {
public:
    [[nodiscard]] int port() const { return receiver_.port(); }
    [[nodiscard]] std::size_t count() const {
        std::lock_guard lock(mutex_);
        return by_id_.size();
    }
    [[nodiscard]] std::map<std::string, std::string> events() const {
        std::lock_guard lock(mutex_);
        return by_id_;
    }
    [[nodiscard]] std::vector<std::string> problems() const {
        std::lock_guard lock(mutex_);
        return problems_;
    }

private:
    void take(std::string_view frame) {
        const json j = json::parse(frame, nullptr, false);
        std::lock_guard lock(mutex_);
        if (!j.is_object() || !j.contains("syslog")) {
            problems_.push_back("not a JSON syslog event: " + std::string(frame.substr(0, 200)));
            return;
        }
        const json& s = j["syslog"];
        std::string bytes;
        if (s.contains("raw_base64")) {
            auto decoded = hsmaudit::mac::base64_decode(s["raw_base64"].get<std::string>());
            if (!decoded) {
                problems_.push_back("raw_base64 does not decode in " + j.value("event_id", ""));
                return;
            }
            bytes = std::move(*decoded);
        } else {
            bytes = s.value("raw", "");
        }
        if (j.value("truncated", false)) problems_.push_back("truncated: " + j.value("event_id", ""));
        by_id_[j.value("event_id", "")] = std::move(bytes);
    }

    mutable std::mutex mutex_;
    std::map<std::string, std::string> by_id_;
    std::vector<std::string> problems_;
    hsmaudit::testing::OctetCountedReceiver receiver_{[this](std::string_view frame) { take(frame); }};  // last
};

enum class Via { tcp, udp, unix_dgram };

/// A random message: any bytes, or a syslog-shaped one whose fields and MSG hold hostile bytes.
std::string random_message(std::mt19937_64& rng) {
    std::size_t len = 0;
    const auto r = rng() % 1000;
    if (r < 850)
        len = 1 + rng() % 200;
    else if (r < 980)
        len = 200 + rng() % 3900;
    else if (r < 995)
        len = 4096 + rng() % (kMaxMessage - 4096);
    else
        len = kMaxMessage;  // exactly the limit
    static const std::string kSpecial = std::string("\r\n\\\"]=|^\t\0", 10);
    auto byte = [&]() -> char {
        const auto k = rng() % 10;
        if (k < 3) return kSpecial[rng() % kSpecial.size()];
        if (k < 7) return static_cast<char>(' ' + rng() % 95);
        return static_cast<char>(rng());  // any byte, invalid UTF-8 likely
    };
    std::string m;
    switch (rng() % 4) {
        case 0:
            m = "<" + std::to_string(rng() % 192) + ">1 2026-11-24T06:29:00.123+02:00 myLuna app 1 ID [x@1 a=\"v\"] ";
            break;
        case 1: m = "<13>Nov 24 06:29:00 myLuna tag[42]: "; break;
        case 2: m = "2026 Nov 24 06:29:00 myLuna local5 info NTLS [1234]: "; break;
        default: break;  // no grammar at all
    }
    if (m.size() > len) m.resize(len);
    while (m.size() < len) m += byte();
    if (rng() % 20 == 0) m += "C:\\\\dir \\x0A";  // the two examples
    if (m.size() > kMaxMessage) m.resize(kMaxMessage);
    return m;
}

class SyslogRoundTrip : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
        ASSERT_TRUE(dir_.ok());
        listener_.emplace(dir_ / "notify");
        ASSERT_TRUE(listener_->ok());
    }

    [[nodiscard]] json status() const {
        const json s = json::parse(slurp(dir_ / "state/status.json"), nullptr, false);
        return s.is_object() ? s : json::object();
    }
    [[nodiscard]] std::uint64_t received() const {
        const json s = status();
        return s.contains("syslog") ? s["syslog"].value("received", std::uint64_t{0}) : 0;
    }

    TempDir dir_;
    std::optional<NotifyListener> listener_;
    std::optional<Daemon> daemon_;
};

TEST_F(SyslogRoundTrip, TenThousandRandomMessagesArriveByteForByte) {
    JsonReceiver receiver;
    ASSERT_GT(receiver.port(), 0);
    const int tcp_port = free_port(SOCK_STREAM);
    const int udp_port = free_port(SOCK_DGRAM);
    ASSERT_GT(tcp_port, 0);
    ASSERT_GT(udp_port, 0);
    const std::string sock = dir_ / "syslog.sock";
    const std::string config =
        "agent:\n  state_dir: " + (dir_ / "state") +
        "\n  log_level: info\n  status_interval: 100ms\n"
        "module:\n  mode: embedded\n  dir: " +
        (dir_ / "module") +
        "\n  serial: \"150777\"\n  ring_size: 1MiB\n"
        "syslog:\n  listen: \"tcp:127.0.0.1:" +
        std::to_string(tcp_port) + ", udp:127.0.0.1:" + std::to_string(udp_port) + ", unix:" + sock +
        "\"\n  max_message_bytes: " + std::to_string(kMaxMessage) +
        "\n"
        "exporters:\n  siem:\n    type: syslog\n    streams: syslog\n    format: json\n"
        // The JSON alone in each frame (no RFC 5424 header before it: docs/SIEM.md, "Syslog header").
        "    syslog_header: none\n"
        "    max_message_bytes: 16MiB\n    batch: 1000\n    max_in_flight: 4000\n    cursor_sync: 50ms\n"
        "    backoff_initial: 50ms\n    backoff_max: 200ms\n"
        "    syslog:\n      protocol: tcp\n      target: 127.0.0.1:" +
        std::to_string(receiver.port()) + "\n";
    spit(dir_ / "hsmauditd.yaml", config);
    daemon_.emplace(dir_ / "hsmauditd.yaml", dir_ / "hsmauditd.log", listener_->path(), 0);
    ASSERT_TRUE(listener_->wait_for(field_is("READY", "1")).has_value()) << daemon_->log();

    // Senders.
    const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int unx = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_TRUE(tcp >= 0 && udp >= 0 && unx >= 0);
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in4.sin_port = htons(static_cast<std::uint16_t>(tcp_port));
    ASSERT_EQ(::connect(tcp, reinterpret_cast<sockaddr*>(&in4), sizeof in4), 0);
    in4.sin_port = htons(static_cast<std::uint16_t>(udp_port));
    ASSERT_EQ(::connect(udp, reinterpret_cast<sockaddr*>(&in4), sizeof in4), 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    ASSERT_LT(sock.size(), sizeof un.sun_path);
    std::memcpy(un.sun_path, sock.c_str(), sock.size() + 1);
    ASSERT_EQ(::connect(unx, reinterpret_cast<sockaddr*>(&un), sizeof un), 0);

    std::mt19937_64 rng(20261204);
    std::map<std::string, std::size_t> sent;  // message -> copies
    std::size_t total = 0, udp_window_bytes = 0, udp_window_count = 0;
    std::size_t lf_inside = 0, binary = 0, at_limit = 0;
    const auto start = std::chrono::steady_clock::now();
    auto send_all = [](int fd, std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    };
    for (std::size_t i = 0; i < kMessages; ++i) {
        std::string m = random_message(rng);
        // The first TCP frame decides the connection's framing: "LEN SP <" is octet counting.
        const Via via = i == 0 ? Via::tcp : static_cast<Via>(rng() % 10 < 4 ? 0 : rng() % 2 + 1);
        if (i == 0) m = "<13>1 - h a p m - first\nframe";
        if (m.find('\n') != std::string::npos) ++lf_inside;
        if (m.size() == kMaxMessage) ++at_limit;
        for (char c : m)
            if (static_cast<unsigned char>(c) >= 0x80) {
                ++binary;
                break;
            }
        if (via == Via::udp &&
            (udp_window_bytes + m.size() + 1024 > std::size_t{96} * 1024 || udp_window_count >= 64)) {
            // Wait until the agent has everything sent so far (its socket buffer is empty again).
            ASSERT_TRUE(eventually([&] { return received() >= total; }))
                << "received " << received() << " of " << total;
            udp_window_bytes = 0;
            udp_window_count = 0;
        }
        switch (via) {
            case Via::tcp: ASSERT_TRUE(send_all(tcp, std::to_string(m.size()) + " " + m)); break;
            case Via::udp:
                ASSERT_EQ(::send(udp, m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
                udp_window_bytes += m.size() + 1024;
                ++udp_window_count;
                break;
            case Via::unix_dgram: ASSERT_EQ(::send(unx, m.data(), m.size(), 0), static_cast<ssize_t>(m.size())); break;
        }
        ++sent[m];
        ++total;
    }
    ::close(tcp);
    ::close(udp);
    ::close(unx);
    const bool all = eventually([&] { return receiver.count() >= kMessages; }, std::chrono::seconds(90));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const json st = status();
    ASSERT_TRUE(all) << "the receiver has " << receiver.count() << " of " << kMessages << " events; agent status "
                     << st.dump() << "\nlog:\n"
                     << daemon_->log().substr(0, 4000);
    EXPECT_TRUE(receiver.problems().empty()) << receiver.problems().front();

    std::map<std::string, std::size_t> got;
    for (const auto& [id, bytes] : receiver.events()) ++got[bytes];
    std::size_t missing = 0;
    std::string first_missing;
    for (const auto& [m, n] : sent) {
        const auto it = got.find(m);
        if (it == got.end() || it->second != n) {
            if (missing++ == 0) first_missing = m.substr(0, 200);
        }
    }
    EXPECT_EQ(missing, 0u) << "messages whose exact bytes did not arrive, e.g. '" << first_missing << "'";
    EXPECT_EQ(got.size(), sent.size());
    // The sample covered what the issue names.
    EXPECT_GT(lf_inside, 1000u);
    EXPECT_GT(binary, 1000u);
    EXPECT_GT(at_limit, 10u);
    ASSERT_TRUE(daemon_->signal(SIGTERM));
    EXPECT_EQ(daemon_->wait_exit().value_or(-1), 0) << daemon_->log();
    std::printf("round trip: %zu messages (%zu with LF inside, %zu with bytes >= 0x80, %zu of %zu bytes) in %.1f s\n",
                kMessages, lf_inside, binary, at_limit, kMaxMessage, seconds);
}

}  // namespace
