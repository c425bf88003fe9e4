// Service: hsmauditd's composition root. It builds the components from the configuration (the
// explicit list of sources; exporters join here as they arrive), starts them in dependency
// order, reloads what can change at run time, and stops them in reverse order.
//
//   module (embedded, or a served module reached through its control socket)
//     -> ModuleRingSource -> Drain (verify online) -> AuditStore -> acknowledge
//   alerts -> AlertLog;  status -> <state>/status.json (for `hsmaudit status`)
//   store (audit, syslog spool, alerts, checkpoints) -> ExportManager -> one ExportRunner per
//     destination (exporters.<name>), built by the exporter kinds the program registers
//
// Thread-safety: start(), reload(), stop() from the main thread; status_json() from any thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <nlohmann/json.hpp>

#include "agent/engine/alert_log.h"
#include "base/config/config.h"
#include "agent/daemon/embedded_workload.h"
#include "agent/daemon/syslog_intake.h"
#include "agent/engine/export/manager.h"
#include "agent/engine/pipeline/drain.h"
#include "agent/engine/status_file.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/retention.h"
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
    /// Applies a new configuration: drain options and log level now; other keys need a restart
    /// (listed in the returned message).
    Result<std::string> reload(base::Config config);
    /// Stops the workload, lets the drain finish its batch, commits, stops the module.
    void stop();

    /// True while the drain made progress recently (for the systemd watchdog).
    [[nodiscard]] bool healthy(std::int64_t now_ms, std::int64_t max_silence_ms) const;
    [[nodiscard]] nlohmann::json status_json() const;
    /// Writes status_json() to <state>/status.json atomically (UTF-8 safe). Failures are counted
    /// (status_json()["status_file"]), logged rate-limited and backed off here: callers need not log.
    Status write_status() const;
    [[nodiscard]] const std::string& state_dir() const { return state_dir_; }
    [[nodiscard]] std::int64_t status_file_interval_ms() const { return config_.integer("agent.status_interval"); }
    /// The components' metrics (their probes, docs/METRICS.md), built by start(). They read the
    /// components: whoever serves them must stop before this Service is destroyed.
    [[nodiscard]] const std::vector<std::shared_ptr<prometheus::Collectable>>& probes() const { return probes_; }

private:
    Service(base::Config config, ServicePlugins plugins);
    void make_probes();

    base::Config config_;
    std::string state_dir_;
    std::string module_dir_;
    std::int64_t started_ms_ = 0;
    bool stopped_ = false;
    std::optional<mac::AuditKey> key_;
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
    NoExporters no_exporters_;
    std::unique_ptr<Archiver> archiver_;
    std::unique_ptr<Retention> retention_;
    std::vector<std::shared_ptr<prometheus::Collectable>> probes_;
    mutable StatusFile status_file_;  // write_status(): counts, backoff, rate-limited log
};

/// Milliseconds since the Unix epoch, UTC (the agent's clock).
std::int64_t wall_clock_ms();

/// Path of the status file under a state directory.
std::string status_file_path(const std::string& state_dir);

}  // namespace hsmaudit::agent
