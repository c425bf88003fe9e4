// Syslog listeners: unix datagram socket, UDP and TCP, one thread each.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "agent/api/alerts.h"
#include "agent/api/notice_limiter.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "collectors/syslog/backpressure.h"
#include "collectors/syslog/detail/thread_guard.h"
#include "collectors/syslog/message.h"
#include "collectors/syslog/parser.h"
#include "collectors/syslog/probe.h"

namespace hsmaudit::collectors::syslog {

/// Configuration of one SyslogListener. A value type, read once by start().
struct ListenerOptions {
    /// "unix:/run/hsmaudit/syslog.sock", "udp:127.0.0.1:514", "tcp:127.0.0.1:601" (port 0: any free port;
    /// read it back with port()). IPv6 as "udp:[::1]:514".
    std::string endpoint;
    std::size_t max_message_bytes = kDefaultMaxMessageBytes;  // longer messages are cut and flagged oversized
    int receive_buffer_bytes = 0;                             // SO_RCVBUF for datagram sockets; 0 = default
    // TCP limits (issue 17). At a limit, a new connection first takes the place of the one idle
    // longest (no byte for evict_min_idle and none waiting unread); only when every connection is
    // busy is it refused (accepted and closed at once). Refusals and evictions are counted and
    // alerted (rate-limited).
    std::size_t max_connections = 256;
    std::size_t max_connections_per_peer = 0;  // connections from one source address; 0: only max_connections
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};   // no byte for this long: closed; 0: never
    std::chrono::milliseconds evict_min_idle{std::chrono::seconds(1)};  // a connection quieter is "idle"
    /// When set, TCP connections are not read while it has no room (the kernel's window closes;
    /// nothing is dropped), and datagrams are read and dropped (counted in Probe::dropped_full).
    const Backpressure* backpressure = nullptr;
    /// Alerts syslog.connection_refused, syslog.connection_evicted (warning) and
    /// syslog.datagrams_dropped (critical; the spool full or the kernel's queue), each at most once
    /// per notify_interval with the count since the last one. Null: logged only. Must outlive the
    /// listener; called from the listener's thread.
    agent::AlertSink* alerts = nullptr;
    std::chrono::milliseconds notify_interval{std::chrono::minutes(1)};
    /// An exception that escapes the thread (from the sink, or out of memory) stops this listener:
    /// counted in Probe::thread_failures and told here (the owner alerts).
    ThreadFailureHandler on_failure = {};
};

/// Checks a listener endpoint as start() would before it binds (the syntax, the port range, a
/// numeric host, a unix path's length and that an existing file there is a socket), without
/// binding: for hsmauditd --check-config. Errors as start()'s (errc::invalid_argument).
Status check_listener_endpoint(const std::string& endpoint);

/// Receives syslog on one endpoint and delivers every message, parsed, to a sink: datagrams are one
/// message each; TCP connections are framed by StreamFramer (octet counting or LF, per connection).
/// Malformed, oversized and binary input is delivered flagged (see SyslogMessage) and counted; kernel
/// drops of datagrams are counted (SO_RXQ_OVFL). A unix socket path is created at start (an existing
/// socket file is replaced; any other file is an error) and removed at stop. ListenerOptions says
/// how TCP connections are limited, timed out and held back when the sink is full.
/// Thread-safety: one internal thread (poll loop) calls the sink; start/stop/port from the owner thread.
/// The sink and the probe must outlive the listener.
class SyslogListener {
public:
    static Result<std::unique_ptr<SyslogListener>> start(ListenerOptions options, SyslogSink& sink, Probe& probe);
    ~SyslogListener();
    SyslogListener(const SyslogListener&) = delete;
    SyslogListener& operator=(const SyslogListener&) = delete;

    /// Stops the thread and closes every socket; idempotent.
    void stop();
    /// The bound port (UDP, TCP), 0 for unix sockets.
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] Transport transport() const noexcept { return transport_; }

private:
    SyslogListener(ListenerOptions options, SyslogSink& sink, Probe& probe);
    Status bind_socket();
    void run(const std::stop_token& stop);
    void run_datagram(const std::stop_token& stop);
    void run_stream(const std::stop_token& stop);
    void deliver(std::string_view bytes, bool oversized, bool truncated, bool framing_error, std::string peer);
    [[nodiscard]] bool has_room() const {
        return options_.backpressure == nullptr || options_.backpressure->has_room();
    }
    void notice(agent::NoticeLimiter& limiter, std::string_view kind, agent::Severity severity, const std::string& what,
                const std::string& detail);
    /// Sends the notices due; returns the poll timeout (ms, -1: none) until the next one pending.
    int report_notices();

    ListenerOptions options_;
    SyslogSink& sink_;
    Probe& probe_;
    Transport transport_ = Transport::udp;
    std::string unix_path_;
    std::uint16_t port_ = 0;
    UniqueFd fd_;
    Waker waker_;
    // The listener thread's notices (rate-limited) and the last detail each is to tell.
    agent::NoticeLimiter refused_, evicted_, dropped_;
    std::string refused_detail_, evicted_detail_, dropped_detail_;
    std::jthread thread_;  // last: joined before the members it uses go
};

}  // namespace hsmaudit::collectors::syslog
