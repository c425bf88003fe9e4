// Real loopback receivers for the sender tests: UDP and unix datagram sockets, a TCP listener.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "base/unique_fd.h"

namespace hsmaudit::appliance::testing {

// Generous bound that only fails a stuck test.
inline constexpr int kPollMs = 10'000;

inline std::filesystem::path make_temp_dir() {
    std::random_device rd;
    auto p = std::filesystem::temp_directory_path() / ("hsmaudit-appl-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(p);
    return p;
}

/// A datagram receiver (UDP on 127.0.0.1:0 or a unix socket path).
class DatagramPeer {
public:
    static DatagramPeer udp() {
        DatagramPeer p;
        p.fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(p.fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(p.fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        p.port_ = ntohs(a.sin_port);
        return p;
    }
    static DatagramPeer unix_socket(const std::filesystem::path& path) {
        DatagramPeer p;
        p.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        ::bind(p.fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        return p;
    }
    std::optional<std::string> receive(int timeout_ms = kPollMs) {
        pollfd pfd{fd_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, timeout_ms) <= 0) return std::nullopt;
        std::string buf(70000, '\0');
        const auto n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }
    std::uint16_t port() const { return port_; }

private:
    UniqueFd fd_;
    std::uint16_t port_ = 0;
};

/// A TCP listener on 127.0.0.1:0 that accepts one connection at a time and decodes octet-counted frames.
class TcpPeer {
public:
    TcpPeer() {
        listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(listen_.get(), 8);
        socklen_t len = sizeof a;
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    std::uint16_t port() const { return port_; }
    bool accept_one(int timeout_ms = kPollMs) {
        pollfd pfd{listen_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
        conn_.reset(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        buffer_.clear();
        return conn_.valid();
    }
    void close_connection() { conn_.reset(); }
    /// The next octet-counted frame's payload, or nullopt on timeout/EOF/bad framing.
    std::optional<std::string> receive_frame(int timeout_ms = kPollMs) {
        for (;;) {
            const auto sp = buffer_.find(' ');
            if (sp != std::string::npos) {
                const std::size_t len = std::stoul(buffer_.substr(0, sp));
                if (buffer_.size() >= sp + 1 + len) {
                    std::string msg = buffer_.substr(sp + 1, len);
                    buffer_.erase(0, sp + 1 + len);
                    return msg;
                }
            }
            pollfd pfd{conn_.get(), POLLIN, 0};
            if (::poll(&pfd, 1, timeout_ms) <= 0) return std::nullopt;
            char buf[4096];
            const auto n = ::recv(conn_.get(), buf, sizeof buf, 0);
            if (n <= 0) return std::nullopt;
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    UniqueFd listen_;
    UniqueFd conn_;
    std::string buffer_;
    std::uint16_t port_ = 0;
};

}  // namespace hsmaudit::appliance::testing
