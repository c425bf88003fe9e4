#include "exporters/relp/detail/connect_watchdog.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "agent/api/thread_guard.h"

namespace hsmaudit::exporters::relp::detail {
namespace {

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

/// Calls `fn(fd, inode)` for every socket descriptor of this process.
template <class Fn>
void for_each_socket(Fn&& fn) {
    std::unique_ptr<DIR, DirCloser> dir(::opendir("/proc/self/fd"));
    if (!dir) return;
    const int own = ::dirfd(dir.get());
    while (const dirent* entry = ::readdir(dir.get())) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        const int fd = std::atoi(entry->d_name);
        if (fd == own) continue;
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        fn(fd, st.st_ino);
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
    : targets_(std::move(targets)) {
    for_each_socket([&](int, ino_t inode) { before_.insert(inode); });
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    thread_ = std::jthread([this, deadline](std::stop_token stop) { run(stop, deadline); });
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
        if (cv_.wait_until(lock, stop, deadline, [] { return false; }) || stop.stop_requested()) return;
        shut_new_sockets();
    });
}

void ConnectWatchdog::shut_new_sockets() {
    for_each_socket([&](int fd, ino_t inode) {
        if (before_.count(inode) != 0) return;
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return;
        for (const auto& t : targets_) {
            if (same_endpoint(peer, t)) {
                ::shutdown(fd, SHUT_RDWR);
                fired_.store(true);
                return;
            }
        }
    });
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
