// Sender: delivers notifications to the configured receivers with net-snmp: SNMPv2c or SNMPv3 USM
// authPriv, traps or informs, each receiver with its own version and credentials.
//
// A trap is done once net-snmp handed it to the kernel (the sender cannot know whether it
// arrived, nor whether a v3 receiver accepted its credentials). An inform is done when the
// receiver's response arrives: net-snmp retransmits it (`retries` times, `timeout` apart); if no
// response comes (timeout) or a report does (wrong credentials, unknown user: counted apart), the
// sender sends it again `retry_interval` later, for as long as it is not acknowledged. A receiver
// whose session cannot be opened (a v3 inform receiver that does not answer engine discovery) is
// tried again `retry_interval` later, keeping its notifications queued.
//
// For v3 traps the exporter is the authoritative engine: the session carries the exporter's engine
// ID, boots and time (engine.h), and the receiver must have the user under that engine ID.
//
// Thread-safety: every member but receiver_stats() is called from one thread (the runner's);
// receiver_stats() may be called from any thread. Senders of several exporters run on their own
// threads at once: every net-snmp call holds the process-wide net-snmp lock (detail/netsnmp.h),
// never across the wait for responses.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "exporters/snmp/engine.h"
#include "exporters/snmp/mib.h"
#include "exporters/snmp/notification.h"
#include "exporters/snmp/probe.h"

namespace hsmaudit::exporters::snmp {

namespace detail {
class NetSnmpLibrary;
}

struct ReceiverConfig {
    std::string name;     // exporters.<name>.snmp.receiver.<this>
    std::string address;  // net-snmp transport address: "udp:192.0.2.5:162", "udp6:[2001:db8::5]:162"
    bool v3 = true;
    bool inform = false;
    std::string community;                           // v2c (secret: never logged)
    std::string user;                                // v3
    std::string auth = "SHA-256";                    // SHA-256 | SHA-384 | SHA-512
    std::string auth_password;                       // secret
    std::string priv = "AES";                        // AES (128) | AES-192 | AES-256 (Blumenthal key extension)
    std::string priv_password;                       // secret
    std::chrono::milliseconds timeout{1000};         // an inform's response timeout per transmission
    int retries = 2;                                 // net-snmp's retransmissions before a timeout is counted
    std::chrono::milliseconds retry_interval{5000};  // after a timeout or report, or a failed session open
};

/// One receiver's counters and state. A value type.
struct ReceiverStats {
    std::string name;
    std::string address;
    std::string mode;  // "v2c trap", "v3 inform"...
    bool session_open = false;
    std::uint64_t sent = 0;          // PDUs sent (informs: every try)
    std::uint64_t acknowledged = 0;  // informs answered
    std::uint64_t timeouts = 0;
    std::uint64_t reports = 0;  // informs answered with a report (authentication failed, unknown user...)
    std::uint64_t send_errors = 0;
    std::uint64_t open_failures = 0;
    std::uint64_t queued = 0;  // not yet done
    std::string last_error;
};

class Sender {
public:
    using NowMs = std::function<std::int64_t()>;

    /// Checks the receivers (protocols, credentials present) and prepares them; opens nothing yet.
    /// `now_ms` gives sysUpTime (hundredths since `start_ms`) and the v3 engine time.
    static Result<std::unique_ptr<Sender>> create(std::vector<ReceiverConfig> receivers, EngineState engine, Oid base,
                                                  Probe& probe, NowMs now_ms);
    ~Sender();
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;

    /// Queues `n` for every receiver and sends it where a session is open; returns a ticket.
    std::uint64_t submit(const Notification& n);
    /// Opens sessions that are due, sends what is due, reads responses and handles timeouts, for
    /// up to `wait` (returns early once nothing is outstanding).
    void pump(std::chrono::milliseconds wait);
    /// True once every receiver has the ticket's notification (trap sent, inform acknowledged).
    [[nodiscard]] bool complete(std::uint64_t ticket) const;
    /// Drops everything queued and closes the sessions (the exporter's disconnect()).
    void reset();
    [[nodiscard]] std::size_t outstanding() const { return remaining_.size(); }

    [[nodiscard]] std::vector<ReceiverStats> receiver_stats() const;
    [[nodiscard]] const EngineState& engine() const { return engine_; }

    /// Builds the PDU's varbinds for `n` (exposed for tests): (OID, SMI type, value text) in order,
    /// sysUpTime.0 and snmpTrapOID.0 first.
    struct Varbind {
        Oid oid;
        std::string type;  // "timeticks", "oid", "octets", "integer", "unsigned", "gauge", "counter64"
        std::string value;
    };
    [[nodiscard]] std::vector<Varbind> varbinds(const Notification& n) const;

    struct Receiver;  // detail (sender.cpp)

private:
    Sender(detail::NetSnmpLibrary& netsnmp, EngineState engine, Oid base, Probe& probe, NowMs now_ms);
    void finish(std::uint64_t ticket);
    [[nodiscard]] std::uint32_t engine_time() const;  // seconds since this run started

    detail::NetSnmpLibrary& netsnmp_;  // its lock() is held around every net-snmp call
    EngineState engine_;
    Oid base_;
    Probe& probe_;
    NowMs now_ms_;
    std::int64_t start_ms_ = 0;
    std::uint64_t next_ticket_ = 1;
    std::unordered_map<std::uint64_t, std::uint32_t> remaining_;  // ticket -> receivers not done
    std::vector<std::unique_ptr<Receiver>> receivers_;
    mutable std::mutex stats_mutex_;  // guards each receiver's stats
};

}  // namespace hsmaudit::exporters::snmp
