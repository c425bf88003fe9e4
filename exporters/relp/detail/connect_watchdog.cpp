#include "exporters/relp/detail/connect_watchdog.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "agent/api/thread_guard.h"
#include "base/unique_fd.h"

namespace hsmaudit::exporters::relp::detail {
namespace {

/// The descriptor thread `tid` of this process is blocked on in a system call that reads, writes or
/// connects one, or -1 (running, in another call, or /proc does not say). The kernel lets a thread
/// group read its own threads' syscall files.
int blocked_fd(pid_t tid) {
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
    UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.valid()) return -1;
    char text[256] = {};
    const ssize_t n = ::read(f.get(), text, sizeof text - 1);
    if (n <= 0) return -1;
    // "<number> 0x<arg1> 0x<arg2> ... 0x<sp> 0x<pc>", "-1 <sp> <pc>" (blocked outside a call) or "running".
    char* end = nullptr;
    const long nr = std::strtol(text, &end, 10);
    if (end == text) return -1;
    switch (nr) {
        case SYS_read:
        case SYS_readv:
        case SYS_recvfrom:
        case SYS_recvmsg:
        case SYS_write:
        case SYS_writev:
        case SYS_sendto:
        case SYS_sendmsg:
        case SYS_connect: {
            const unsigned long long fd = std::strtoull(end, nullptr, 16);
            return fd <= 0x7fffffff ? static_cast<int>(fd) : -1;
        }
        default: return -1;
    }
}

bool same_endpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
    if (a.ss_family != b.ss_family) return false;
    if (a.ss_family == AF_INET) {
        const auto& x = reinterpret_cast<const sockaddr_in&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in&>(b);
        return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    if (a.ss_family == AF_INET6) {
        const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
        return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
    }
    return false;
}

}  // namespace

ConnectWatchdog::ConnectWatchdog(std::vector<sockaddr_storage> targets, std::chrono::milliseconds timeout)
    : connecting_tid_(::gettid()), targets_(std::move(targets)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    thread_ = std::jthread([this, deadline](std::stop_token stop) { run(std::move(stop), deadline); });
}

ConnectWatchdog::~ConnectWatchdog() {
    thread_.request_stop();
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ConnectWatchdog::run(std::stop_token stop, std::chrono::steady_clock::time_point deadline) {
    // Last resort: an exception here (a failed lock, out of memory) leaves this one handshake
    // unbounded; it must not end the agent.
    (void)agent::detail::run_guarded("relp connect watchdog", [&] {
        std::unique_lock lock(mutex_);
        auto wake = deadline;
        for (;;) {
            (void)cv_.wait_until(lock, stop, wake, [] { return false; });
            if (stop.stop_requested() || shut_own_socket()) return;
            // The connecting thread is between two calls, or in one that names no descriptor:
            // look again shortly (until the connect returns and the destructor stops us).
            wake = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
        }
    });
}

bool ConnectWatchdog::shut_own_socket() {
    const int fd = blocked_fd(connecting_tid_);
    if (fd < 0) return false;
    // Our own descriptor for that socket: the number `fd` may be closed and reused meanwhile.
    const UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own.valid()) return false;
    // Still blocked on the same number after the dup: `own` is the socket the thread waits on.
    if (blocked_fd(connecting_tid_) != fd) return false;
    struct stat st {};
    if (::fstat(own.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(own.get(), reinterpret_cast<sockaddr*>(&peer), &len) != 0) return false;
    for (const auto& t : targets_) {
        if (same_endpoint(peer, t)) {
            // Before the shutdown: the connecting thread reads fired() as soon as its read returns.
            fired_.store(true);
            ::shutdown(own.get(), SHUT_RDWR);  // the socket, not only our descriptor
            return true;
        }
    }
    return false;
}

std::vector<sockaddr_storage> ConnectWatchdog::resolve(const std::string& host, const std::string& port) {
    std::vector<sockaddr_storage> out;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return out;
    for (const addrinfo* r = res; r != nullptr; r = r->ai_next) {
        sockaddr_storage s{};
        std::memcpy(&s, r->ai_addr, r->ai_addrlen);
        out.push_back(s);
    }
    ::freeaddrinfo(res);
    return out;
}

}  // namespace hsmaudit::exporters::relp::detail
