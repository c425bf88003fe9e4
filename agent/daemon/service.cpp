#include "agent/daemon/service.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "agent/engine/config_keys.h"
#include "agent/api/errc.h"
#include "agent/engine/export/probe.h"
#include "base/logger.h"
#include "agent/engine/pipeline/probe.h"
#include "agent/engine/store/probe.h"
#include "agent/engine/store/state_layout.h"
#include "collectors/syslog/probe_collector.h"
#include "hsmcore/host/module_host.h"
#include "base/files.h"
#include "mac/record.h"

namespace hsmaudit::agent {
namespace {
namespace fs = std::filesystem;
}  // namespace

std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string status_file_path(const std::string& state_dir) {
    return (fs::path(state_dir) / "status.json").string();
}

Service::Service(base::Config config, ServicePlugins plugins) : config_(std::move(config)), plugins_(std::move(plugins)) {}

Service::~Service() {
    stop();
}

Result<std::unique_ptr<Service>> Service::create(base::Config config, ServicePlugins plugins) {
    HSMAUDIT_TRY(validate_exporters(config, plugins.exporters));
    std::unique_ptr<Service> s(new Service(std::move(config), std::move(plugins)));
    s->state_dir_ = s->config_.str("agent.state_dir");
    s->module_dir_ = s->config_.str("module.dir");
    return s;
}

Result<std::string> Service::start() {
    started_ms_ = wall_clock_ms();
    std::error_code ec;
    fs::create_directories(state_dir_, ec);
    if (ec) return make_error(errc::io_error, "cannot create the state directory " + state_dir_ + ": " + ec.message());
    fs::permissions(state_dir_, fs::perms::owner_all, ec);

    // The module.
    std::unique_ptr<hsmcore::host::ModuleHost> host;
    if (config_.str("module.mode") == "embedded") {
        if (!fs::exists(fs::path(module_dir_) / hsmcore::module::kModuleConfigFile)) {
            hsmcore::module::InitOptions init;
            init.serial = config_.str("module.serial");
            init.ring_bytes = static_cast<std::size_t>(config_.integer("module.ring_size"));
            if (auto st = hsmcore::module::Module::init(module_dir_, init); !st)
                return make_error(errc::config_error,
                                  "cannot create the embedded module in " + module_dir_ + ": " + st.error().describe());
            base::logger().info("created an embedded module (serial {}) in {}", init.serial, module_dir_);
        }
        auto m = hsmcore::module::Module::open(module_dir_);
        if (!m) return make_error(errc::io_error, "cannot start the embedded module: " + m.error().describe());
        module_ = std::move(*m);
        host = hsmcore::host::make_in_process_host(*module_);
    } else {
        auto h = hsmcore::host::connect_host(module_dir_);
        if (!h)
            return make_error(errc::io_error,
                              "cannot reach the module in " + module_dir_ + ": " + h.error().describe());
        host = std::move(*h);
    }
    source_ = std::make_unique<collectors::ModuleRingSource>(std::move(host));

    // The audit key, the store, the alerts.
    std::string key_path = config_.str("audit.key");
    if (key_path.empty()) key_path = (fs::path(module_dir_) / mac::kAuditKeyFile).string();
    auto key = mac::load_audit_key(key_path);
    if (!key) return make_error(errc::config_error, "audit.key: " + key.error().describe());
    key_.emplace(std::move(*key));
    auto alerts = AlertLog::open((fs::path(state_dir_) / "alerts").string());
    if (!alerts) return std::move(alerts).error();
    alerts_ = std::move(*alerts);
    auto store = AuditStore::open(make_store_options(config_, audit_dir_of(state_dir_)), *key_);
    if (!store) return std::move(store).error();
    store_ = std::move(*store);
    if (!store_->recovery_summary().empty()) base::logger().warn("store recovery:\n{}", store_->recovery_summary());

    // The drain.
    drain_ = std::make_unique<Drain>(*source_, *store_, *key_, *alerts_, make_drain_options(config_), wall_clock_ms);
    HSMAUDIT_TRY(drain_->restore());
    auto checkpoints = LineLog::open((fs::path(state_dir_) / "checkpoints").string(), "checkpoints.log");
    if (!checkpoints) return std::move(checkpoints).error();
    checkpoints_ = std::move(*checkpoints);
    drain_->set_checkpoint_sink([this](const std::string& line) {
        if (auto st = checkpoints_->append(line); !st)
            alerts_->alert(
                Alert{"checkpoint.store_failed", Severity::critical, st.error().describe(), 0, wall_clock_ms()});
    });
    drain_->start();

    // The appliance's syslog stream, spooled on its own (it is not part of the module's chain).
    auto intake = SyslogIntake::start(config_, (fs::path(state_dir_) / "syslog").string(), alerts_.get());
    if (!intake) return std::move(intake).error();
    syslog_ = std::move(*intake);

    // The destinations, each reading the store after its own cursor on its own thread.
    if (module_) {
        serial_ = std::string(module_->serial());
    } else if (auto st = source_->status(); st) {
        serial_ = st->serial;
    }
    std::string hostname = config_.str("agent.hostname");
    if (hostname.empty()) {
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) == 0) hostname = name;
    }
    auto exports = ExportManager::create(config_, plugins_.exporters,
                                         ExportContext{state_dir_, &*key_, serial_, hostname, *alerts_,
                                                       [this] { return status_json(); }, wall_clock_ms});
    if (!exports) return std::move(exports).error();
    exports_ = std::move(*exports);
    exports_->start();

    // Archives and retention, each on its own thread, out of the drain's way. A segment is
    // archived, and an archive deleted, only once every destination has delivered it.
    const std::string audit_dir = audit_dir_of(state_dir_);
    archiver_ = std::make_unique<Archiver>(
        make_archiver_options(config_, audit_dir), *key_, *alerts_, [this] { return drain_->stats().sealed_epoch; },
        wall_clock_ms);
    if (exports_->size() > 0) archiver_->set_delivery_gate([this] { return exports_->min_delivered_seq(); });
    archiver_->start();
    const DeliveryCursors& delivery =
        exports_->size() > 0 ? static_cast<const DeliveryCursors&>(*exports_) : no_exporters_;
    retention_ = std::make_unique<Retention>(
        make_retention_options(config_, audit_dir), delivery, *alerts_,
        [this](bool paused, const std::string& reason) { drain_->set_ack_paused(paused, reason); }, wall_clock_ms);
    retention_->start();

    // The built-in workload (embedded demo).
    if (module_ && config_.integer("module.workload.rate") > 0) {
        auto mix = parse_workload_mix(config_.str("module.workload.mix"));
        if (!mix) return make_error(errc::config_error, "module.workload.mix: " + mix.error().message);
        workload_ = std::make_unique<EmbeddedWorkload>(
            *module_, module_dir_, static_cast<unsigned>(config_.integer("module.workload.rate")), *mix);
        if (auto st = workload_->start(); !st)
            return make_error(errc::internal, "cannot start the built-in workload: " + st.error().describe());
    }
    const std::string line = "draining module " + (serial_.empty() ? std::string("(served)") : serial_) + " into " +
                             state_dir_ + " from entry " + std::to_string(store_->durable().entry_no + 1) + ", " +
                             std::to_string(exports_->size()) + " destination" + (exports_->size() == 1 ? "" : "s");
    base::logger().info("{}", line);
    alerts_->alert(Alert{"agent.started", Severity::info, line, 0, wall_clock_ms()});
    make_probes();
    return line;
}

void Service::make_probes() {
    probes_.clear();
    probes_.push_back(std::make_shared<DrainProbe>(*drain_));
    probes_.push_back(std::make_shared<collectors::ModuleProbeCollector>(source_->probe()));
    auto store = std::make_shared<StoreProbe>(audit_dir_of(state_dir_), retention_.get(), archiver_.get());
    if (syslog_) {
        store->set_spool([this] { return syslog_->spool_stats(); });
        // One probe counts every syslog source of the intake together.
        probes_.push_back(std::make_shared<collectors::syslog::ProbeCollector>(
            std::vector<std::pair<std::string, const collectors::syslog::Probe*>>{{"all", &syslog_->probe()}}));
    }
    probes_.push_back(std::move(store));
    auto exports = std::make_shared<ExportProbe>(wall_clock_ms);
    for (const auto& e : exports_->stats()) {
        const std::string name = e.name;
        exports->add({e.name, e.type, e.streams,
                      [this, name] {
                          for (auto& x : exports_->stats())
                              if (x.name == name) return x.stats;
                          return RunnerStats{};
                      },
                      e.delivery_latency});
    }
    probes_.push_back(std::move(exports));
}

namespace {
/// Keys a SIGHUP applies at once: the drain's batching, rotation and alert thresholds, and the log
/// level. Every other key (directories, module, keys, store, archives, syslog) needs a restart.
bool reloadable(std::string_view key) {
    return key.starts_with("drain.") || key.starts_with("rotation.") || key.starts_with("alerts.") ||
           key.starts_with("checkpoint.") || key == "agent.log_level";
}
}  // namespace

Result<std::string> Service::reload(base::Config next) {
    std::string restart_needed;
    for (const base::KeySpec& spec : all_config_keys(plugins_.keys)) {
        if (spec.key.find('*') != std::string_view::npos) continue;  // destinations: compared below
        if (reloadable(spec.key) || next.str(spec.key) == config_.str(spec.key)) continue;
        restart_needed += std::string(restart_needed.empty() ? "" : ", ") + std::string(spec.key);
        // Keep the running value, so status and later reloads stay true to what runs.
        next.keep(spec.key, config_);
    }
    // Destinations are rebuilt only at a restart (their cursors and connections stay as they are).
    bool exporters_changed = next.instances("exporters") != config_.instances("exporters");
    for (const base::KeySpec& spec : all_config_keys(plugins_.keys)) {
        const std::string_view k = spec.key;
        if (!k.starts_with("exporters.*.")) continue;
        for (const auto& name : config_.instances("exporters")) {
            const std::string concrete = "exporters." + name + std::string(k.substr(11));
            if (next.has(concrete) && next.str(concrete) != config_.str(concrete)) exporters_changed = true;
        }
    }
    if (exporters_changed) {
        restart_needed += std::string(restart_needed.empty() ? "" : ", ") + "exporters";
        for (const base::KeySpec& spec : all_config_keys(plugins_.keys))
            if (std::string_view(spec.key).starts_with("exporters.*."))
                for (const auto& name : config_.instances("exporters"))
                    next.keep("exporters." + name + std::string(std::string_view(spec.key).substr(11)), config_);
    }
    drain_->set_options(make_drain_options(next));
    base::logger().set_level(spdlog::level::from_str(next.str("agent.log_level")));
    config_ = std::move(next);
    return restart_needed.empty()
               ? std::string("configuration reloaded")
               : "configuration reloaded; these keys take effect at the next restart: " + restart_needed;
}

void Service::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (alerts_) alerts_->alert(Alert{"agent.stopping", Severity::info, "the agent is stopping", 0, wall_clock_ms()});
    if (syslog_) syslog_->stop();
    if (workload_) workload_->stop();
    if (retention_) retention_->stop();
    if (archiver_) archiver_->stop();
    if (drain_) drain_->stop();
    // Last: the destinations deliver what the drain committed (each waits for its acknowledgements).
    if (exports_) exports_->stop();
    if (store_ && drain_) {
        const auto st = drain_->stats();
        base::logger().info("stopped: {} records stored, acknowledged through entry {}", st.records, st.acked_entry_no);
    }
    // Objects stay until destruction (reverse declaration order) so the final status is complete.
}

bool Service::healthy(std::int64_t now_ms, std::int64_t max_silence_ms) const {
    if (!drain_) return false;
    return now_ms - drain_->stats().last_step_ms <= max_silence_ms;
}

nlohmann::json Service::status_json() const {
    using nlohmann::json;
    json j;
    j["time"] = mac::format_time(wall_clock_ms());
    j["pid"] = static_cast<std::int64_t>(::getpid());
    j["started"] = mac::format_time(started_ms_);
    j["state_dir"] = state_dir_;
    if (drain_) {
        const DrainStats d = drain_->stats();
        j["drain"] = {{"entries", d.entries},  {"records", d.records}, {"seals", d.seals},
                      {"commits", d.commits},  {"faults", d.faults},   {"acked_entry_no", d.acked_entry_no},
                      {"last_seq", d.last_seq}};
        j["ring"] = {{"fill", d.ring_fill},
                     {"fill_peak", d.ring_fill_peak},
                     {"seconds_to_reserve", d.seconds_to_reserve},
                     {"blocked", d.module_blocked}};
    }
    if (store_) {
        // AuditStore belongs to the drain thread: this thread reads the committed position file
        // and the directories instead.
        json s;
        const std::string audit_dir = audit_dir_of(state_dir_);
        s["dir"] = audit_dir;
        if (auto pos = read_store_position(audit_dir); pos) {
            s["durable_entry_no"] = pos->entry_no;
            s["open_segment"] = pos->current;
            s["open_segment_bytes"] = pos->current_bytes;
        }
        std::uint64_t sealed = 0;
        std::uint64_t bytes = 0;
        std::error_code ec;
        for (const char* sub : {"current", "ready_for_archive"}) {
            for (fs::directory_iterator it(fs::path(audit_dir) / sub, ec), end; !ec && it != end; it.increment(ec)) {
                if (it->path().extension() != ".log") continue;
                if (std::string_view(sub) == "ready_for_archive") ++sealed;
                const auto size = it->file_size(ec);
                if (!ec) bytes += size;
                ec.clear();
            }
            ec.clear();
        }
        s["sealed_segments"] = sealed;
        s["bytes"] = bytes;
        s["encrypted"] = config_.boolean("store.encrypt");
        j["store"] = std::move(s);
    }
    if (archiver_) {
        const ArchiverStats a = archiver_->stats();
        j["archive"] = {{"runs", a.runs},
                        {"failures", a.failures},
                        {"archives_written", a.archives_written},
                        {"segments_archived", a.segments_archived},
                        {"duplicates_removed", a.duplicates_removed},
                        {"consecutive_failures", a.consecutive_failures},
                        {"stopped", a.stopped},
                        {"last_archive", a.last_archive},
                        {"last_error", a.last_error}};
    }
    if (retention_) {
        const RetentionStats r = retention_->stats();
        j["retention"] = {{"used_bytes", r.used_bytes},
                          {"protected_bytes", r.protected_bytes},
                          {"quota_bytes", r.quota_bytes},
                          {"level", std::string(to_string(r.level))},
                          {"acks_paused", r.acks_paused},
                          {"archives_deleted", r.archives_deleted},
                          {"disk_full", r.disk_full},
                          {"failures", r.failures},
                          {"stopped", r.stopped},
                          {"last_error", r.last_error},
                          {"exporters", r.delivered_seq.has_value()}};
    }
    if (alerts_) {
        json counts = json::object();
        for (const auto& [k, v] : alerts_->counts()) counts[k] = v;
        json recent = json::array();
        for (const auto& a : alerts_->recent())
            recent.push_back({{"time", mac::format_time(a.time_ms)},
                              {"kind", a.kind},
                              {"severity", std::string(to_string(a.severity))},
                              {"message", a.message}});
        j["alerts"] = {{"counts", counts}, {"recent", recent}};
    }
    if (syslog_) j["syslog"] = syslog_->status_json();
    j["module"] = {{"serial", serial_}, {"mode", config_.str("module.mode")}};
    j["exporters"] = exports_ ? exports_->status_json() : json::array();
    if (workload_) {
        const auto w = workload_->stats();
        j["workload"] = {{"ops", w.ops}, {"refused", w.refused}, {"errors", w.errors}};
    }
    const StatusFileStats sf = status_file_.stats();
    j["status_file"] = {{"writes", sf.writes},
                        {"failures", sf.failures},
                        {"consecutive_failures", sf.consecutive_failures},
                        {"last_error", sf.last_error}};
    return j;
}

Status Service::write_status() const {
    // Alerts whose write failed (a full disk) are kept by the alert log; write them now if the
    // disk allows, so they reach the destinations.
    if (alerts_) (void)alerts_->retry();
    // No exception from a component's stats may end the caller's loop; after stop() the final
    // status is attempted even while backing off.
    nlohmann::json j;
    try {
        j = status_json();
    } catch (const std::exception& e) {
        j = {{"time", mac::format_time(wall_clock_ms())},
             {"pid", static_cast<std::int64_t>(::getpid())},
             {"error", std::string("cannot gather the status: ") + e.what()}};
    }
    return status_file_.write(status_file_path(state_dir_), j, wall_clock_ms(), stopped_);
}

}  // namespace hsmaudit::agent
