// ExportManager: the configured destinations ("exporters.<name>.*"), each an ExportRunner with
// its own Exporter, store reader, cursor and thread. It validates the destinations' common keys,
// builds each through the registered ExporterFactory of its type, and tells retention and the
// archiver how far every destination has delivered the audit trail (DeliveryCursors).
//
// A reload changes the set in two steps: prepare() compares the new configuration with what runs
// (every key under exporters.<name>.) and builds each destination to add or rebuild, touching
// nothing that runs, so a destination that cannot be built (a missing TLS file, a damaged cursor
// file) refuses the whole reload; apply() then stops the removed and changed destinations
// (ExportRunner::StopMode::in_flight_only), rebuilds the changed ones at their previous runner's
// cursor, and starts the added ones. Unchanged destinations are not touched (no reconnection). A
// removed destination's cursor file stays on disk (the same name added again resumes there); it
// no longer counts in min_delivered_seq(), so it holds back neither the archiver nor retention.
//
// Thread-safety: create/start/stop/prepare/apply from one owner thread (the service's main
// thread); min_delivered_seq(), stats() and size() from any thread. The set of runners is guarded
// by a mutex that apply() holds only to swap entries (never while a runner stops or starts), and
// that readers hold while they copy a runner's figures; the owner thread, the only writer, reads
// it without the mutex.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/api/exporter.h"
#include "agent/api/latency_histogram.h"
#include "agent/engine/export/runner.h"
#include "agent/engine/store/retention.h"
#include "base/config/config.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

class StoreDamageLedger;

/// The keys every destination has (type, streams, filters, start, batching, back-off).
std::span<const base::KeySpec> export_config_keys();

/// Checks the destinations in `config` against the registered kinds: a known type, valid
/// streams and filters, and remote audit and remote syslog never sharing a host:port (as on the
/// appliance). An error names the destination and the key.
Status validate_exporters(const base::Config& config, std::span<const ExporterFactory> factories);

/// A destination's common keys (exporters.<name>.streams, min_severity, classes, start, batch,
/// back-off, chain_lines) as its runner and its store reader use them: what `hsmaudit tap` reads
/// to show exactly what the runner would send. An error names the key and the bad entry.
struct DestinationSettings {
    RunnerOptions runner;  // every field the keys set; cursor_path and file_system left as defaults
    bool chain_lines = false;
};
Result<DestinationSettings> read_destination_settings(const base::Config& config, const std::string& name);

/// <state>/export/<name>/cursor: the destination's cursor file (runner.h has its format).
std::string cursor_path_of(const std::string& state_dir, const std::string& name);

struct ExportContext {
    std::string state_dir;
    const mac::AuditKey* key = nullptr;  // decrypts the store; must outlive the manager
    std::string serial;
    std::string host;
    AlertSink& alerts;
    AgentStatusProvider agent_status;  // the agent's status snapshot, for exporters (any thread)
    std::function<std::int64_t()> now_ms;
    /// Rung after each commit of the drain; every runner listens (RunnerOptions::store_appended).
    /// Null: runners notice new events within their idle wait. Must outlive the manager.
    DoorbellSet* store_appended = nullptr;
};

class ExportManager final : public DeliveryCursors {
public:
    /// Builds every enabled destination (nothing connects until start()). `context` is kept for
    /// the destinations a reload adds.
    static Result<std::unique_ptr<ExportManager>> create(const base::Config& config,
                                                         std::span<const ExporterFactory> factories,
                                                         const ExportContext& context);
    ~ExportManager() override;
    ExportManager(const ExportManager&) = delete;
    ExportManager& operator=(const ExportManager&) = delete;

    void start();
    /// Stops every runner (they wait for outstanding acknowledgements in parallel).
    void stop();

    /// A destination built by prepare() and not yet running.
    struct Pending;
    /// What a reload changes in the destinations: built by prepare(), put in place by apply().
    /// Dropping a plan applies nothing (the runners it built never started).
    class Plan {
    public:
        Plan();
        ~Plan();
        Plan(Plan&&) noexcept;
        Plan& operator=(Plan&&) noexcept;
        [[nodiscard]] bool empty() const { return added_.empty() && changed_.empty() && removed_.empty(); }
        /// "added siem2; changed siem (exporters.siem.syslog.port); removed old", or "" if empty.
        [[nodiscard]] std::string summary() const;

    private:
        friend class ExportManager;
        std::vector<std::unique_ptr<Pending>> added_;    // runners opened (cursor resolved), not started
        std::vector<std::unique_ptr<Pending>> changed_;  // exporters built; runners open in apply()
        std::vector<std::string> removed_;
        std::vector<std::string> cleanup_;  // cursor files prepare() created, removed if the plan is dropped
    };
    /// Compares `next` with the running destinations and builds each one to add (its runner opened:
    /// its cursor file read, or its start position resolved) or to rebuild (its exporter, with the
    /// new settings: files, TLS material, formats). Nothing running is touched. An error names the
    /// destination and the key.
    Result<Plan> prepare(const base::Config& next, std::span<const ExporterFactory> factories);
    /// Puts `plan` in place (after start()): stops the removed and changed destinations in
    /// parallel (each waits up to its stop_timeout for what is in flight), starts each changed one
    /// anew at the cursor its previous runner stopped at, starts the added ones. Returns the
    /// plan's summary.
    std::string apply(Plan plan);

    [[nodiscard]] std::optional<std::uint64_t> min_delivered_seq() const override;
    [[nodiscard]] std::size_t size() const;
    /// Each destination's name, type and stats.
    struct Entry {
        std::string name;
        std::string type;
        std::array<bool, 4> streams{};  // subscribed, indexed by Stream
        RunnerStats stats;
        std::optional<LatencyHistogram::Snapshot> delivery_latency;
    };
    [[nodiscard]] std::vector<Entry> stats() const;

private:
    ExportManager() = default;
    struct Runner {
        std::string name;
        std::string type;
        std::map<std::string, std::string> settings;  // every key under exporters.<name>. it was built from
        std::unique_ptr<ExportRunner> runner;
    };
    static Result<std::unique_ptr<Pending>> build(const base::Config& config, const std::string& name,
                                                  std::span<const ExporterFactory> factories,
                                                  const ExportContext& context,
                                                  const std::shared_ptr<StoreDamageLedger>& damage);
    static Status open(Pending& pending, const ExportContext& context);
    void stop_runners(const std::vector<ExportRunner*>& runners, ExportRunner::StopMode mode);

    std::vector<Runner> runners_;  // written by the owner thread under set_mutex_
    mutable std::mutex set_mutex_;
    std::optional<ExportContext> context_;
    std::shared_ptr<StoreDamageLedger> damage_;  // one ledger of store damage for every destination
    AlertSink* alerts_ = nullptr;                // the context's; outlives the manager
};

}  // namespace hsmaudit::agent
