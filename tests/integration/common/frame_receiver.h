// An RFC 6587 octet-counting TCP receiver on 127.0.0.1, on a port the kernel chose: the in-test
// peer of a `syslog` destination over plain TCP (the agent tests' receivers build on it and keep
// what they need of each frame).
//
// Thread-safety: port() and connections() from any thread; `on_frame` runs on the receiver's own
// thread only, one frame at a time, in arrival order per connection. The thread is stopped and
// joined by the destructor, before any member goes: an owner that keeps what `on_frame` stores
// declares the receiver after that storage (members are destroyed in reverse order).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace hsmaudit::testing {

class OctetCountedReceiver {
public:
    using OnFrame = std::function<void(std::string_view frame)>;

    explicit OctetCountedReceiver(OnFrame on_frame) : on_frame_(std::move(on_frame)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listen_fd_, 16) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            return;  // port() stays 0: the test's ASSERT on it says so
        port_ = ntohs(addr.sin_port);
        thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
    }
    ~OctetCountedReceiver() {
        thread_ = {};  // stops and joins
        for (const auto& c : conns_) ::close(c.fd);
        if (listen_fd_ >= 0) ::close(listen_fd_);
    }
    OctetCountedReceiver(const OctetCountedReceiver&) = delete;
    OctetCountedReceiver& operator=(const OctetCountedReceiver&) = delete;

    /// The bound port, 0 if the socket could not be set up.
    [[nodiscard]] int port() const { return port_; }
    /// Connections accepted so far.
    [[nodiscard]] int connections() const { return accepted_.load(); }

private:
    struct Conn {
        int fd;
        std::string buffer;
    };
    void run(const std::stop_token& stop) {
        std::vector<char> buf(std::size_t{1} << 20);
        while (!stop.stop_requested()) {
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
            for (const auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
            if ((fds[0].revents & POLLIN) != 0) {
                const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd >= 0) {
                    conns_.push_back(Conn{fd, {}});
                    ++accepted_;
                }
            }
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
                Conn& c = conns_[i - 1];
                const ssize_t n = ::read(c.fd, buf.data(), buf.size());
                if (n <= 0) {
                    ::close(c.fd);
                    c.fd = -1;
                    continue;
                }
                c.buffer.append(buf.data(), static_cast<std::size_t>(n));
                take_frames(c.buffer);
            }
            std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
        }
    }
    /// "<length> <frame>"...: hands over every complete frame, keeps the rest for the next read.
    void take_frames(std::string& b) {
        std::size_t pos = 0;
        for (;;) {
            const std::size_t sp = b.find(' ', pos);
            if (sp == std::string::npos) break;
            const std::size_t len = std::stoul(b.substr(pos, sp - pos));
            if (b.size() < sp + 1 + len) break;
            on_frame_(std::string_view(b.data() + sp + 1, len));
            pos = sp + 1 + len;
        }
        b.erase(0, pos);
    }

    OnFrame on_frame_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<int> accepted_{0};
    std::vector<Conn> conns_;  // the thread's
    std::jthread thread_;      // last: joined first
};

}  // namespace hsmaudit::testing
