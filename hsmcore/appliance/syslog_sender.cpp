#include "hsmcore/appliance/syslog_sender.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "hsmcore/appliance/errc.h"
#include "hsmcore/appliance/syslog_format.h"

namespace hsmaudit::appliance {
namespace {

struct SockAddr {
    sockaddr_storage storage{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
};

Result<SockAddr> resolve(const SyslogDestination& d) {
    SockAddr a;
    if (d.kind == SyslogDestination::Kind::unix_datagram) {
        auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, d.path.data(), d.path.size());
        a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + d.path.size() + 1);
        a.family = AF_UNIX;
        return a;
    }
    auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    if (::inet_pton(AF_INET, d.host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(d.port);
        a.len = sizeof(sockaddr_in);
        a.family = AF_INET;
        return a;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    if (::inet_pton(AF_INET6, d.host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(d.port);
        a.len = sizeof(sockaddr_in6);
        a.family = AF_INET6;
        return a;
    }
    return make_error(errc::invalid_argument, "syslog destination host '" + d.host + "' is not a numeric address");
}

// Waits for `events` on fd, or the waker, up to timeout. Returns revents of fd (0 on timeout or wake).
short wait_fd(int fd, short events, int waker_fd, std::chrono::milliseconds timeout) {
    pollfd p[2] = {{fd, events, 0}, {waker_fd, POLLIN, 0}};
    const int n = ::poll(p, waker_fd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
    if (n <= 0) return 0;
    return p[0].revents;
}

}  // namespace

Result<SyslogDestination> SyslogDestination::parse(std::string_view text) {
    SyslogDestination d;
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return make_error(errc::invalid_argument,
                          "syslog destination '" + std::string(text) +
                              "' lacks a scheme: use unix:/path, udp:HOST:PORT or tcp:HOST:PORT");
    }
    const std::string_view scheme = text.substr(0, colon);
    const std::string_view rest = text.substr(colon + 1);
    if (scheme == "unix") {
        d.kind = Kind::unix_datagram;
        if (rest.empty() || rest.size() >= sizeof(sockaddr_un::sun_path) || rest.find('\0') != std::string_view::npos) {
            return make_error(errc::invalid_argument, "syslog destination unix path '" + std::string(rest) +
                                                          "' is empty or longer than 107 bytes");
        }
        d.path = std::string(rest);
        return d;
    }
    if (scheme == "udp") {
        d.kind = Kind::udp;
    } else if (scheme == "tcp") {
        d.kind = Kind::tcp;
    } else {
        return make_error(errc::invalid_argument,
                          "syslog destination scheme '" + std::string(scheme) + "' is not unix, udp or tcp");
    }
    const auto pc = rest.rfind(':');
    if (pc == std::string_view::npos || pc == 0) {
        return make_error(errc::invalid_argument, "syslog destination '" + std::string(text) + "' lacks HOST:PORT");
    }
    std::string_view host = rest.substr(0, pc);
    const std::string_view port = rest.substr(pc + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535) {
        return make_error(errc::invalid_argument,
                          "syslog destination port '" + std::string(port) + "' is not a number in 1..65535");
    }
    d.host = host == "localhost" ? "127.0.0.1" : std::string(host);
    d.port = static_cast<std::uint16_t>(value);
    HSMAUDIT_TRY(resolve(d));
    return d;
}

std::string SyslogDestination::to_string() const {
    switch (kind) {
        case Kind::unix_datagram: return "unix:" + path;
        case Kind::udp:
            return "udp:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                   std::to_string(port);
        case Kind::tcp:
            return "tcp:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                   std::to_string(port);
    }
    return {};
}

Result<std::unique_ptr<SyslogSender>> SyslogSender::open(SyslogDestination destination, SenderOptions options) {
    HSMAUDIT_TRY(resolve(destination));
    if (options.queue_capacity == 0) return make_error(errc::invalid_argument, "sender queue_capacity must be > 0");
    if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min ||
        options.io_timeout.count() <= 0) {
        return make_error(errc::invalid_argument, "sender back-off and io_timeout must be positive, min <= max");
    }
    std::unique_ptr<SyslogSender> s(new SyslogSender(std::move(destination), options));
    if (!s->waker_.valid()) return make_error(errc::io_error, std::string("eventfd: ") + std::strerror(errno));
    s->thread_ = std::jthread([raw = s.get()](const std::stop_token& st) { raw->run(st); });
    return s;
}

SyslogSender::SyslogSender(SyslogDestination destination, SenderOptions options)
    : destination_(std::move(destination)), options_(options) {}

SyslogSender::~SyslogSender() {
    stop();
}

void SyslogSender::stop() {
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
    }
    if (thread_.joinable()) {
        thread_.request_stop();
        waker_.wake();
        thread_.join();
    }
}

bool SyslogSender::send(std::string message) {
    {
        std::lock_guard lock(mutex_);
        if (stopped_) {
            probe_.dropped_undeliverable.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        if (queue_.size() >= options_.queue_capacity) {
            probe_.dropped_queue_full.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        queue_.push_back(std::move(message));
    }
    probe_.enqueued.fetch_add(1, std::memory_order_relaxed);
    cv_.notify_all();
    return true;
}

bool SyslogSender::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !in_flight_; });
}

bool SyslogSender::connect_socket(const std::stop_token& stop) {
    auto addr = resolve(destination_);
    if (!addr) return false;
    const int type = destination_.kind == SyslogDestination::Kind::tcp ? SOCK_STREAM : SOCK_DGRAM;
    UniqueFd fd(::socket(addr->family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return false;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr->storage), addr->len) != 0) {
        if (errno != EINPROGRESS) return false;
        if (stop.stop_requested()) return false;
        const short rev = wait_fd(fd.get(), POLLOUT, waker_.fd(), options_.io_timeout);
        if (!(rev & POLLOUT)) return false;
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return false;
    }
    fd_ = std::move(fd);
    return true;
}

bool SyslogSender::peer_closed() const {
    if (destination_.kind != SyslogDestination::Kind::tcp) return false;
    char c;
    const auto n = ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
}

bool SyslogSender::write_all(std::string_view bytes, bool blocking) {
    while (!bytes.empty()) {
        const auto n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR) continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && blocking) {
            if (wait_fd(fd_.get(), POLLOUT, waker_.fd(), options_.io_timeout) & POLLOUT) continue;
        }
        return false;
    }
    return true;
}

void SyslogSender::run(const std::stop_token& stop) {
    std::stop_callback wake_on_stop(stop, [this] {
        waker_.wake();
        cv_.notify_all();
    });
    const bool tcp = destination_.kind == SyslogDestination::Kind::tcp;
    auto backoff = options_.reconnect_min;
    for (;;) {
        std::string message;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, stop, [&] { return !queue_.empty(); });
            if (queue_.empty()) break;  // stop requested, nothing left
            if (stop.stop_requested()) break;
            message = queue_.front();
            in_flight_ = true;
        }
        if (fd_.valid() && peer_closed()) fd_.reset();
        bool done = false;
        if (!fd_.valid()) {
            if (connect_socket(stop)) {
                probe_.connects.fetch_add(1, std::memory_order_relaxed);
                backoff = options_.reconnect_min;
            } else {
                probe_.connect_failures.fetch_add(1, std::memory_order_relaxed);
                std::unique_lock lock(mutex_);
                in_flight_ = false;
                cv_.notify_all();
                // The message stays at the head of the queue; wait, then try again (stop interrupts).
                cv_.wait_for(lock, stop, backoff, [] { return false; });
                backoff = std::min(backoff * 2, options_.reconnect_max);
                continue;
            }
        }
        const std::string framed = tcp ? frame_octet_counting(message) : std::string();
        if (write_all(tcp ? std::string_view(framed) : std::string_view(message), true)) {
            probe_.sent.fetch_add(1, std::memory_order_relaxed);
            done = true;
        } else {
            probe_.send_errors.fetch_add(1, std::memory_order_relaxed);
            fd_.reset();
            if (!tcp) {
                // A datagram the receiver refused (gone, or its queue full for io_timeout) is not retried.
                probe_.dropped_undeliverable.fetch_add(1, std::memory_order_relaxed);
                done = true;
            }
        }
        std::lock_guard lock(mutex_);
        if (done) queue_.pop_front();
        in_flight_ = false;
        cv_.notify_all();
    }
    // Stopping: one non-blocking attempt for what is still queued, then count the rest as undeliverable.
    std::deque<std::string> rest;
    {
        std::lock_guard lock(mutex_);
        rest.swap(queue_);
        in_flight_ = false;
    }
    for (auto& m : rest) {
        const std::string framed = tcp ? frame_octet_counting(m) : std::string();
        if (fd_.valid() && write_all(tcp ? std::string_view(framed) : std::string_view(m), false)) {
            probe_.sent.fetch_add(1, std::memory_order_relaxed);
        } else {
            probe_.dropped_undeliverable.fetch_add(1, std::memory_order_relaxed);
        }
    }
    cv_.notify_all();
}

}  // namespace hsmaudit::appliance
