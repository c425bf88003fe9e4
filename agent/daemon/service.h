// Service: hsmauditd's composition root. It builds the components from the configuration (the
// explicit list of sources; the exporter kinds the program registers), starts them in dependency
// order, reloads what can change at run time, and stops them in reverse order.
//
//   module (embedded, or a served module reached through its control socket)
//     -> ModuleRingSource -> Drain (verify online) -> AuditStore -> acknowledge
//   alerts -> AlertLog;  status -> <state>/status.json (for `hsmaudit status`)
//   store (audit, syslog spool, alerts, checkpoints) -> ExportManager -> one ExportRunner per
//     destination (exporters.<name>), built by the exporter kinds the program registers
//
// Start order: every component an exporter reads (the store, the alert log, the drain, archives,
// retention, the first status snapshot) exists before the destinations start, so no thread reads
// a member that start() assigns after that thread started.
//
// Thread-safety: start(), reload(), tick(), write_status(), stop() from the main thread (the one
// that created the Service). config() and status() from any thread: each returns an immutable
// snapshot (the configuration is swapped whole by reload(); the status is rebuilt by tick()).
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "agent/api/agent_status.h"
#include "agent/api/doorbell.h"
#include "agent/daemon/embedded_workload.h"
#include "agent/daemon/syslog_intake.h"
#include "agent/engine/alert_log.h"
#include "agent/engine/export/manager.h"
#include "agent/engine/pipeline/drain.h"
#include "agent/engine/status_file.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/retention.h"
#include "base/config/config.h"
#include "base/published.h"
#include "collectors/module/ring_source.h"
#include "hsmcore/module/module.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

/// What the program that runs the service adds to it: the exporter kinds it links (its explicit
/// registration list, agent/daemon/exporter_registry.cpp) and their configuration keys.
struct ServicePlugins {
    std::span<const ExporterFactory> exporters;
    std::vector<base::KeySpec> keys;
};

class Service {
public:
    static Result<std::unique_ptr<Service>> create(base::Config config, ServicePlugins plugins = {});
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    /// Opens (and in embedded mode creates) the module, recovers the store, starts the drain and
    /// the workload. Returns a line for sd_notify STATUS=.
    Result<std::string> start();
    /// Applies a new configuration: drain options and log level, and the destinations (added,
    /// removed, or rebuilt when a key under exporters.<name>. changed; ExportManager::prepare and
    /// apply); other keys need a restart (listed in the returned message). An error (a new or
    /// changed destination cannot be built) refuses the whole reload: nothing changed.
    Result<std::string> reload(base::Config config);
    /// Stops the workload, lets the drain finish its batch, commits, stops the module.
    void stop();

    /// True while the drain made progress recently (for the systemd watchdog).
    [[nodiscard]] bool healthy(std::int64_t now_ms, std::int64_t max_silence_ms) const;

    /// The main loop's status tick: publishes a new status snapshot once a second (kStatusTickMs)
    /// and writes it to <state>/status.json every agent.status_interval.
    void tick(std::int64_t now_ms);
    /// Builds the status from the components' stats and publishes it (the only producer).
    std::shared_ptr<const AgentStatus> publish_status();
    /// The latest published snapshot (nullptr before start()). Any thread.
    [[nodiscard]] std::shared_ptr<const AgentStatus> status() const { return status_.load(); }
    /// Publishes a fresh snapshot and writes it to <state>/status.json atomically (UTF-8 safe).
    /// Failures are counted (status_file in the next snapshot), logged rate-limited and backed off
    /// here: callers need not log. After stop() the final status is attempted even while backing off.
    Status write_status();
    /// The running configuration (replaced whole by reload()). Any thread.
    [[nodiscard]] std::shared_ptr<const base::Config> config() const { return config_.load(); }
    [[nodiscard]] const std::string& state_dir() const { return state_dir_; }
    [[nodiscard]] std::int64_t status_file_interval_ms() const { return config()->integer("agent.status_interval"); }
    /// The components' metrics (their probes, docs/METRICS.md), built by start(). They read the
    /// components: whoever serves them must stop before this Service is destroyed.
    [[nodiscard]] const std::vector<std::shared_ptr<prometheus::Collectable>>& probes() const { return probes_; }

    /// How often tick() publishes a status snapshot (exporters read it: SNMP varbinds).
    static constexpr std::int64_t kStatusTickMs = 1000;

private:
    Service(base::Config config, ServicePlugins plugins);
    void make_probes();
    [[nodiscard]] AgentStatus build_status(std::int64_t now_ms);

    base::Published<base::Config> config_;
    std::string state_dir_;
    std::string module_dir_;
    std::int64_t started_ms_ = 0;
    bool stopped_ = false;
    std::optional<mac::AuditKey> key_;
    // Rung by the drain after each commit and by the syslog spool after each flush, heard by every
    // export runner (declared before all three: it outlives their threads).
    DoorbellSet store_appended_;
    std::unique_ptr<hsmcore::module::Module> module_;
    std::unique_ptr<EmbeddedWorkload> workload_;
    std::unique_ptr<collectors::ModuleRingSource> source_;
    std::unique_ptr<AuditStore> store_;
    std::unique_ptr<AlertLog> alerts_;
    std::unique_ptr<Drain> drain_;
    std::unique_ptr<SyslogIntake> syslog_;
    std::unique_ptr<LineLog> checkpoints_;
    ServicePlugins plugins_;
    std::string serial_;
    std::unique_ptr<ExportManager> exports_;
    std::unique_ptr<Archiver> archiver_;
    std::unique_ptr<Retention> retention_;
    std::vector<std::shared_ptr<prometheus::Collectable>> probes_;
    mutable StatusFile status_file_;                     // write_status(): counts, backoff, rate-limited log
    std::atomic<std::uint64_t> checkpoint_failures_{0};  // the drain thread's checkpoint sink counts
    base::Published<AgentStatus> status_;
    // The status producer's own state (main thread): the drain rate and the last acknowledgement.
    std::int64_t last_publish_ms_ = 0;
    std::int64_t last_write_ms_ = 0;
    std::uint64_t rate_records_ = 0;
    std::int64_t rate_time_ms_ = 0;
    std::uint64_t last_acked_ = 0;
    std::int64_t last_ack_ms_ = 0;
};

/// Milliseconds since the Unix epoch, UTC (the agent's clock).
std::int64_t wall_clock_ms();

/// Path of the status file under a state directory.
std::string status_file_path(const std::string& state_dir);

}  // namespace hsmaudit::agent
