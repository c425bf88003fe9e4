// ExportManager: the configured destinations ("exporters.<name>.*"), each an ExportRunner with
// its own Exporter, store reader, cursor and thread. It validates the destinations' common keys,
// builds each through the registered ExporterFactory of its type, and tells retention and the
// archiver how far every destination has delivered the audit trail (DeliveryCursors).
//
// Thread-safety: create/start/stop from the service's thread; min_delivered_seq() and stats() from
// any thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/api/exporter.h"
#include "agent/engine/export/runner.h"
#include "agent/engine/store/retention.h"
#include "base/config/config.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

/// The keys every destination has (type, streams, filters, start, batching, back-off).
std::span<const base::KeySpec> export_config_keys();

/// Checks the destinations in `config` against the registered kinds: a known type, valid
/// streams and filters, and remote audit and remote syslog never sharing a host:port (as on the
/// appliance). An error names the destination and the key.
Status validate_exporters(const base::Config& config, std::span<const ExporterFactory> factories);

struct ExportContext {
    std::string state_dir;
    const mac::AuditKey* key = nullptr;  // decrypts the store; must outlive the manager
    std::string serial;
    std::string host;
    AlertSink& alerts;
    AgentStatusProvider agent_status;  // the agent's status snapshot, for exporters (any thread)
    std::function<std::int64_t()> now_ms;
};

class ExportManager final : public DeliveryCursors {
public:
    /// Builds every enabled destination (nothing connects until start()).
    static Result<std::unique_ptr<ExportManager>> create(const base::Config& config,
                                                         std::span<const ExporterFactory> factories,
                                                         const ExportContext& context);
    ~ExportManager() override;
    ExportManager(const ExportManager&) = delete;
    ExportManager& operator=(const ExportManager&) = delete;

    void start();
    /// Stops every runner (they wait for outstanding acknowledgements in parallel).
    void stop();

    [[nodiscard]] std::optional<std::uint64_t> min_delivered_seq() const override;
    [[nodiscard]] std::size_t size() const { return runners_.size(); }
    /// Each destination's name, type and stats.
    struct Entry {
        std::string name;
        std::string type;
        std::array<bool, 4> streams{};  // subscribed, indexed by Stream
        RunnerStats stats;
        const LatencyHistogram* delivery_latency = nullptr;  // lives as long as the manager
    };
    [[nodiscard]] std::vector<Entry> stats() const;

private:
    ExportManager() = default;
    struct Runner {
        std::string name;
        std::string type;
        std::unique_ptr<ExportRunner> runner;
    };
    std::vector<Runner> runners_;
    AlertSink* alerts_ = nullptr;  // the context's; outlives the manager
};

}  // namespace hsmaudit::agent
