// ConnectWatchdog: bounds librelp's TLS handshake in time.
//
// librelp's TCP connect honours its connection timeout, but its OpenSSL driver then performs the
// TLS handshake on a blocking socket without any timeout: a server that accepts TCP and never
// answers (a hung receiver, a load balancer, a plain syslog port) would hold relpCltConnect() for
// ever. librelp exposes neither the socket nor a handshake timeout, so the watchdog, armed on the
// connecting thread around the call, does it from outside: past the deadline it finds the socket
// that thread is blocked on (its read or write, from /proc/self/task/<tid>/syscall) and shuts it
// down (shutdown(2) on a dup of it; it never closes a descriptor it does not own). The blocked read
// then returns, the handshake fails and librelp closes its socket itself.
//
// It touches only that one socket, identified by the connecting thread, never by address: another
// destination's connection to the same receiver (librelp re-establishes broken sessions inside
// relpCltSendSyslog, on that destination's own thread) is left alone, and no other descriptor of
// the process is even looked at. As a guard the socket must also be connected to one of the
// target's addresses.
//
// Thread-safety: construct and destroy on the connecting thread; it runs its own thread in between.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace hsmaudit::exporters::relp::detail {

class ConnectWatchdog {
public:
    /// Arms the watchdog for the calling thread's connect.
    ConnectWatchdog(std::vector<sockaddr_storage> targets, std::chrono::milliseconds timeout);
    /// Disarms it and joins its thread.
    ~ConnectWatchdog();
    ConnectWatchdog(const ConnectWatchdog&) = delete;
    ConnectWatchdog& operator=(const ConnectWatchdog&) = delete;

    /// True if the deadline passed and the connecting thread's socket was shut down.
    [[nodiscard]] bool fired() const { return fired_.load(); }

    /// The addresses `host`:`port` resolves to (for TCP); empty if it does not resolve.
    static std::vector<sockaddr_storage> resolve(const std::string& host, const std::string& port);

private:
    void run(std::stop_token stop, std::chrono::steady_clock::time_point deadline);
    /// Shuts down the socket the connecting thread is blocked on, if it is one of ours; true if it did.
    bool shut_own_socket();

    pid_t connecting_tid_;  // the thread that armed the watchdog and calls relpCltConnect()
    std::vector<sockaddr_storage> targets_;
    std::atomic<bool> fired_{false};
    std::mutex mutex_;
    std::condition_variable_any cv_;
    std::jthread thread_;
};

}  // namespace hsmaudit::exporters::relp::detail
