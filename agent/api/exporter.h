// The agent's small interface to a destination (RELP, TLS syslog, Kafka, SNMP...), and the
// factory by which hsmauditd's explicit registration list (agent/daemon/exporter_registry.cpp) adds one.
//
// Delivery model (docs/ARCHITECTURE.md, "Exporters"): one ExportRunner thread per configured
// destination reads events from the durable store after the destination's own cursor, filters
// them, and hands them to its Exporter in order. The exporter tells which of them the receiver
// has acknowledged, as a count from the first event sent on the current connection; only those
// advance the durable cursor. After a failure the runner disconnects, backs off (capped
// exponential, with jitter), reconnects and sends again everything after the acknowledged
// prefix: at-least-once, in order, duplicates bounded by what was in flight and identifiable by
// Event::event_id. A dead destination only stalls its own runner.
//
// Thread-safety: an Exporter is driven by its runner's thread only (construction, connect, send,
// acknowledged, disconnect, destruction); stats() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/api/agent_status.h"
#include "agent/api/alerts.h"
#include "agent/api/doorbell.h"
#include "agent/api/event.h"
#include "base/config/config.h"
#include "base/result.h"

namespace hsmaudit::agent {

/// Counters an exporter keeps about its transport (the runner keeps the delivery counters).
struct TransportStats {
    std::uint64_t connects = 0;          // successful connections (or sessions) opened
    std::uint64_t connect_failures = 0;  // refused, TLS or authentication failed, timed out
    std::uint64_t bytes_sent = 0;
    std::string peer;  // what it is connected to ("relp+tls://siem.example:2514")
    /// The kind's own counters (name, value), monotonic: SNMP's traps_sent, informs_acked...
    /// Exposed as hsmaudit_exporter_transport_events_total{counter="<name>"}.
    std::vector<std::pair<std::string, std::uint64_t>> counters;
};

class Exporter {
public:
    virtual ~Exporter() = default;

    /// Opens the connection (TCP, TLS handshake and peer authentication...). An error names what
    /// failed ("siem.example:2514: certificate name 'x' is not permitted"); the runner retries
    /// with back-off and raises exporter.down.
    virtual Status connect() = 0;

    /// Sends `events` in order, each rendered in the destination's format. May block while the
    /// transport's window is full (bounded by the exporter's own timeout). An error means the
    /// connection is broken: the runner calls disconnect() and later connect(), then sends again
    /// every event after the acknowledged prefix.
    virtual Status send(std::span<const Event> events) = 0;

    /// How many of the events sent since the last connect() the receiver has acknowledged,
    /// counted from the first one sent: events [0, n) are delivered. Never decreases within a
    /// connection and never exceeds the number sent. May wait up to `wait` for acknowledgements
    /// that are due (the runner passes a non-zero wait when it has nothing else to send, and at
    /// shutdown). An error means the connection is broken (as for send()).
    ///
    /// A transport without application-level acknowledgements (plain TCP or TLS syslog, SNMP
    /// traps) counts an event acknowledged once it was written to the kernel (documented as its
    /// weaker guarantee in docs/SIEM.md).
    virtual Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) = 0;

    /// How the runner learns that acknowledgements advanced: the exporter's answer to
    /// attach_doorbell(). With `doorbell` or `on_calls`, the runner never waits inside
    /// acknowledged() while it runs (it passes 0; a wait only when it stops) and waits on its
    /// doorbell instead, which the store's commits ring too, so neither a new event nor an
    /// acknowledgement waits for the other's timeout; it still calls acknowledged(0) at least every
    /// idle wait while events are in flight, so time-driven confirmations happen.
    enum class AckSignal {
        wait_inside,  ///< acknowledged(wait) waits for them: the runner passes a wait when idle
        doorbell,     ///< the exporter rings the doorbell when they may have advanced (any thread)
        on_calls,     ///< they advance only inside the exporter's own calls (send, acknowledged)
    };
    /// Optional: offers the runner's doorbell, which the exporter may keep and ring from any thread
    /// (its transport's own, e.g. librdkafka's when a delivery report is queued). Called once,
    /// before the runner's thread starts; `doorbell` outlives the exporter. The default keeps
    /// nothing and answers wait_inside.
    virtual AckSignal attach_doorbell(Doorbell* doorbell) {
        (void)doorbell;
        return AckSignal::wait_inside;
    }
    /// Closes the connection, gracefully if it still works. Unacknowledged events are sent again
    /// after the next connect().
    virtual void disconnect() = 0;

    [[nodiscard]] virtual TransportStats stats() const = 0;
};

/// Renders one event as a destination's exporter sends it: the message (the destination's format,
/// its syslog header included), without the transport's framing (octet count, RELP frame, Kafka
/// record). What `hsmaudit tap` prints. Callable from the thread that made it.
using EventRenderer = std::function<void(const Event& event, std::string& out)>;

/// What a factory gets to build one destination.
struct ExporterContext {
    std::string name;  // the destination's name: its keys are "exporters.<name>.*"
    const base::Config&
        config;  // read "exporters.<name>.<type>.<key>" (declared by the factory as "exporters.*.<type>.<key>")
    std::string state_dir;  // <state>/export/<name>: the exporter's own files (created 0700)
    AlertSink& alerts;
    /// The agent's latest status snapshot (agent/api/agent_status.h: module, ring, drain, store,
    /// exporters...), for exporters that report state (SNMP varbinds). Callable from any thread;
    /// may be empty, or return nullptr, in tests.
    AgentStatusProvider agent_status;
};

/// One kind of exporter, as the registration list names it.
struct ExporterFactory {
    std::string_view type;  // the value of "exporters.<name>.type": "relp", "syslog", "kafka", "snmp"
    /// Its configuration keys, declared as "exporters.*.<type>.<key>".
    std::span<const base::KeySpec> (*keys)();
    /// Builds (does not connect) the destination. An error names the key that is wrong.
    Result<std::unique_ptr<Exporter>> (*create)(const ExporterContext& context);
    /// The network endpoint the destination sends to ("tcp:siem.example:2514", "udp:..."), used to
    /// refuse remote audit and remote syslog sharing a host:port; "" if not applicable.
    std::string (*endpoint)(const base::Config& config, std::string_view name);
    /// Checks everything create() and connect() would refuse in the configuration, without side
    /// effects: no connection, no file written, context.state_dir unused (it may be empty). Files
    /// the destination names exist with the right modes and parse (TLS CA, certificates, keys),
    /// ports are in range, the format and its options are valid. `hsmauditd --check-config`, the
    /// start and a reload call it before anything opens. An error names the key that is wrong
    /// ("exporters.siem.relp.key: ..."); the caller adds the file and line. nullptr: nothing
    /// beyond create() (which is then not called by the check).
    Status (*validate)(const ExporterContext& context) = nullptr;
    /// How the destination renders its events: the formatter built from the configuration exactly
    /// as create() builds it, for `hsmaudit tap`. No connection, no file, no log line. An error
    /// names the key that is wrong. nullptr: the kind sends no rendered message (snmp: varbinds).
    Result<EventRenderer> (*renderer)(const base::Config& config, std::string_view name) = nullptr;
};

}  // namespace hsmaudit::agent
