// Sends formatted syslog messages to a local destination: unix datagram socket, UDP or TCP (RFC 6587).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"
#include "hsmcore/appliance/probe.h"

namespace hsmaudit::appliance {

/// Where the stream goes: "unix:/run/syslog.sock", "udp:127.0.0.1:514", "tcp:127.0.0.1:601" ("[::1]:601"
/// for IPv6). Host names other than "localhost" are refused: the destination is local and must not stall
/// on DNS. A value type.
struct SyslogDestination {
    enum class Kind : std::uint8_t { unix_datagram, udp, tcp };
    Kind kind = Kind::udp;
    std::string path;  // unix
    std::string host;  // numeric address (udp, tcp)
    std::uint16_t port = 0;

    static Result<SyslogDestination> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;
};

/// Tuning of a SyslogSender. A value type, read once by open().
struct SenderOptions {
    std::size_t queue_capacity = 4096;              // messages; send() drops beyond it
    std::chrono::milliseconds reconnect_min{100};   // first back-off after a failed connect
    std::chrono::milliseconds reconnect_max{5000};  // back-off doubles up to this
    std::chrono::milliseconds io_timeout{2000};     // a write or connect waiting longer is abandoned
};

/// Owns the socket and a sender thread fed by a bounded queue: send() never blocks (a full queue drops
/// and counts); TCP reconnects with back-off and keeps the message that failed at the head of the queue.
/// TCP frames are RFC 6587 octet-counted. Datagrams are one message each.
/// Thread-safety: send(), stats(), wait_idle() may be called from any thread; stop() or destruction stops
/// the thread (queued messages get one non-blocking attempt, the rest are counted as undeliverable).
class SyslogSender {
public:
    static Result<std::unique_ptr<SyslogSender>> open(SyslogDestination destination, SenderOptions options = {});
    ~SyslogSender();
    SyslogSender(const SyslogSender&) = delete;
    SyslogSender& operator=(const SyslogSender&) = delete;

    /// Stops the sender thread (see the class comment); idempotent. Counters stay readable.
    void stop();
    /// Queues one formatted RFC 5424 message. Returns false (and counts it) when the queue is full or the
    /// sender was stopped.
    bool send(std::string message);
    /// Waits (up to `timeout`) until the queue is empty and no message is in flight; true if so.
    bool wait_idle(std::chrono::milliseconds timeout);
    [[nodiscard]] SenderStats stats() const noexcept { return probe_.snapshot(); }
    [[nodiscard]] const SyslogDestination& destination() const noexcept { return destination_; }

private:
    SyslogSender(SyslogDestination destination, SenderOptions options);
    void run(const std::stop_token& stop);
    bool connect_socket(const std::stop_token& stop);
    // Writes all of `bytes`; false on error or timeout. `blocking` waits up to io_timeout for room.
    bool write_all(std::string_view bytes, bool blocking);
    bool peer_closed() const;

    SyslogDestination destination_;
    SenderOptions options_;
    SenderProbe probe_;
    Waker waker_;
    UniqueFd fd_;  // sender thread only

    mutable std::mutex mutex_;
    std::condition_variable_any cv_;
    std::deque<std::string> queue_;
    bool in_flight_ = false;
    bool stopped_ = false;  // send() after stop() drops
    std::jthread thread_;   // last: joined before the members it uses are destroyed
};

}  // namespace hsmaudit::appliance
