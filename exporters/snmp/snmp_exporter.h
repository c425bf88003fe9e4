// SnmpExporter: the SNMP destination (exporters.<name>.type: snmp). It turns the events of the
// streams it is given (alerts and syslog; `exporters.<name>.streams: alerts,syslog`) into
// HSMAUDIT-MIB notifications: agent alerts through a fixed table (alert_map.h), syslog lines
// through rules (rules.h); de-duplicates and damps flapping conditions (holddown.h); and sends
// them to every receiver (sender.h) as v2c or v3 traps or informs.
//
// Acknowledgement (Exporter::acknowledged): an event is acknowledged when every receiver has its
// notification (trap: sent; inform: answered), or at once if it maps to none (no rule matched, a
// duplicate, held down). Decisions are remembered by Event::event_id, so events sent again after
// a reconnect produce the same notifications (not new hold-down verdicts).
//
// Thread-safety: as agent::Exporter: the runner's thread drives it; stats(), probe() and
// receiver_stats() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/api/agent_status.h"
#include "agent/api/exporter.h"
#include "exporters/snmp/holddown.h"
#include "exporters/snmp/probe.h"
#include "exporters/snmp/rules.h"
#include "exporters/snmp/sender.h"

namespace hsmaudit::exporters::snmp {

struct SnmpOptions {
    std::string name;  // the destination
    std::vector<ReceiverConfig> receivers;
    Oid base;  // the MIB module's arc (enterprise_oid)
    std::chrono::milliseconds holddown{60'000};
    std::uint32_t flap_limit = 2;
    RuleSet rules;
    std::string state_dir;                // the engine state file lives here
    std::vector<std::uint8_t> engine_id;  // configured; empty: generated and persisted
};

class SnmpExporter final : public agent::Exporter {
public:
    using NowMs = std::function<std::int64_t()>;

    /// Loads (and increments) the engine state and prepares the receivers. `status` gives the
    /// agent's latest status snapshot (may be empty or return nullptr: the state varbinds are then
    /// sent empty or 0); `now_ms` is the clock for sysUpTime, engine time and the hold-down
    /// (injected by tests).
    static Result<std::unique_ptr<SnmpExporter>> create(SnmpOptions options, agent::AgentStatusProvider status,
                                                        NowMs now_ms);

    Status connect() override;
    Status send(std::span<const agent::Event> events) override;
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override;
    void disconnect() override;
    [[nodiscard]] agent::TransportStats stats() const override;

    [[nodiscard]] ProbeStats probe() const { return probe_.snapshot(); }
    [[nodiscard]] std::vector<ReceiverStats> receiver_stats() const { return sender_->receiver_stats(); }
    [[nodiscard]] const EngineState& engine() const { return sender_->engine(); }

    /// The notification `e` maps to before the hold-down (nullopt: none), with every varbind value
    /// filled: the event's own, then the agent's state from the latest status snapshot
    /// (status_varbinds()). Exposed for tests.
    [[nodiscard]] std::optional<Notification> notification_for(const agent::Event& e) const;

private:
    SnmpExporter(SnmpOptions options, agent::AgentStatusProvider status, NowMs now_ms, std::unique_ptr<Sender> sender);
    void flush_holddown();

    SnmpOptions options_;
    agent::AgentStatusProvider status_;
    NowMs now_ms_;
    Probe probe_;
    std::unique_ptr<Sender> sender_;
    HoldDown holddown_;

    // Runner thread only.
    bool connected_ = false;
    std::vector<std::optional<std::uint64_t>> tickets_;  // per event sent on this connection
    std::vector<std::string> event_ids_;                 // parallel to tickets_
    std::uint64_t acked_ = 0;
    /// Decisions by event id, kept until acknowledged: nullopt = nothing to send.
    std::map<std::string, std::optional<Notification>, std::less<>> decided_;

    mutable std::mutex mutex_;
    agent::TransportStats transport_;
};

/// One HSMAUDIT-MIB object whose value comes from the agent's status snapshot (not from the event):
/// `value` gives it as the notification's text, nullopt when the snapshot does not have it.
struct StatusVarbind {
    std::string_view object;
    std::optional<std::string> (*value)(const agent::AgentStatus& status);
};
/// Every object the exporter fills from the status snapshot (hsmModuleSerial, hsmRingUsedRecords,
/// hsmModuleBootCounter...), in MIB order.
std::span<const StatusVarbind> status_varbinds();

/// The factory for agent/daemon/exporter_registry.cpp: type "snmp".
agent::ExporterFactory factory();

/// The configuration keys ("exporters.*.snmp.*").
std::span<const base::KeySpec> config_keys();

/// Builds SnmpOptions from the configuration of destination `name` (reads the credential files,
/// with the 0600 check, and the rules file). An error names the key or file that is wrong.
Result<SnmpOptions> options_from_config(const base::Config& config, const std::string& name,
                                        const std::string& state_dir);

}  // namespace hsmaudit::exporters::snmp
