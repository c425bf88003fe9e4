// ConnectWatchdog: bounds librelp's TLS handshake in time.
//
// librelp's TCP connect honours its connection timeout, but its OpenSSL driver then performs the
// TLS handshake on a blocking socket without any timeout: a server that accepts TCP and never
// answers (a hung receiver, a load balancer, a plain syslog port) would hold relpCltConnect() for
// ever. librelp exposes neither the socket nor a handshake timeout, so the watchdog, armed around
// the call, does it from outside: at the deadline it shuts down (shutdown(2); it never closes a
// descriptor it does not own) every socket of this process that was created after it was armed
// and is connected to one of the target's addresses. The blocked read then returns, the handshake
// fails and librelp closes its socket itself.
//
// Thread-safety: construct and destroy on one thread; it runs its own thread in between.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace hsmaudit::exporters::relp::detail {

class ConnectWatchdog {
public:
    /// Arms the watchdog: sockets existing now are never touched.
    ConnectWatchdog(std::vector<sockaddr_storage> targets, std::chrono::milliseconds timeout);
    /// Disarms it and joins its thread.
    ~ConnectWatchdog();
    ConnectWatchdog(const ConnectWatchdog&) = delete;
    ConnectWatchdog& operator=(const ConnectWatchdog&) = delete;

    /// True if the deadline passed and a matching socket was shut down.
    [[nodiscard]] bool fired() const { return fired_.load(); }

    /// The addresses `host`:`port` resolves to (for TCP); empty if it does not resolve.
    static std::vector<sockaddr_storage> resolve(const std::string& host, const std::string& port);

private:
    void run(std::stop_token stop, std::chrono::steady_clock::time_point deadline);
    void shut_new_sockets();

    std::vector<sockaddr_storage> targets_;
    std::set<ino_t> before_;  // socket inodes that existed when armed
    std::atomic<bool> fired_{false};
    std::mutex mutex_;
    std::condition_variable_any cv_;
    std::jthread thread_;
};

}  // namespace hsmaudit::exporters::relp::detail
