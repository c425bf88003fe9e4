#include "agent/daemon/service.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "agent/api/errc.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/export/probe.h"
#include "agent/engine/pipeline/probe.h"
#include "agent/engine/store/probe.h"
#include "agent/engine/store/state_layout.h"
#include "base/files.h"
#include "base/logger.h"
#include "base/version/version.h"
#include "collectors/journal/probe_collector.h"
#include "collectors/syslog/probe_collector.h"
#include "hsmcore/host/module_host.h"
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

Service::Service(base::Config config, ServicePlugins plugins)
    : config_(std::make_shared<const base::Config>(std::move(config))), plugins_(std::move(plugins)) {}

Service::~Service() {
    stop();
}

Result<std::unique_ptr<Service>> Service::create(base::Config config, ServicePlugins plugins) {
    HSMAUDIT_TRY(validate_exporters(config, plugins.exporters));
    std::unique_ptr<Service> s(new Service(std::move(config), std::move(plugins)));
    const auto c = s->config();
    s->state_dir_ = c->str("agent.state_dir");
    s->module_dir_ = c->str("module.dir");
    return s;
}

Result<std::string> Service::start() {
    // One configuration for the whole start (reload() cannot run meanwhile: same thread).
    const std::shared_ptr<const base::Config> config_snapshot = config();
    const base::Config& cfg = *config_snapshot;
    started_ms_ = wall_clock_ms();
    std::error_code ec;
    fs::create_directories(state_dir_, ec);
    if (ec) return make_error(errc::io_error, "cannot create the state directory " + state_dir_ + ": " + ec.message());
    fs::permissions(state_dir_, fs::perms::owner_all, ec);

    // The module.
    std::unique_ptr<hsmcore::host::ModuleHost> host;
    if (cfg.str("module.mode") == "embedded") {
        if (!fs::exists(fs::path(module_dir_) / hsmcore::module::kModuleConfigFile)) {
            hsmcore::module::InitOptions init;
            init.serial = cfg.str("module.serial");
            init.ring_bytes = static_cast<std::size_t>(cfg.integer("module.ring_size"));
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
    std::string key_path = cfg.str("audit.key");
    if (key_path.empty()) key_path = (fs::path(module_dir_) / mac::kAuditKeyFile).string();
    auto key = mac::load_audit_key(key_path);
    if (!key) return make_error(errc::config_error, "audit.key: " + key.error().describe());
    key_.emplace(std::move(*key));
    auto alerts = AlertLog::open((fs::path(state_dir_) / "alerts").string());
    if (!alerts) return std::move(alerts).error();
    alerts_ = std::move(*alerts);
    auto store = AuditStore::open(make_store_options(cfg, audit_dir_of(state_dir_)), *key_);
    if (!store) return std::move(store).error();
    store_ = std::move(*store);
    if (!store_->recovery_summary().empty()) base::logger().warn("store recovery:\n{}", store_->recovery_summary());

    // The drain.
    drain_ = std::make_unique<Drain>(*source_, *store_, *key_, *alerts_, make_drain_options(cfg), wall_clock_ms);
    HSMAUDIT_TRY(drain_->restore(module_ != nullptr));  // embedded: this start restarted the module
    auto checkpoints = LineLog::open((fs::path(state_dir_) / "checkpoints").string(), "checkpoints.log");
    if (!checkpoints) return std::move(checkpoints).error();
    checkpoints_ = std::move(*checkpoints);
    drain_->set_commit_listener([this] { store_appended_.ring(); });
    drain_->set_checkpoint_sink([this](const std::string& line) {
        if (auto st = checkpoints_->append(line); !st) {
            checkpoint_failures_.fetch_add(1, std::memory_order_relaxed);
            alerts_->alert(
                Alert{"checkpoint.store_failed", Severity::critical, st.error().describe(), 0, wall_clock_ms()});
        }
    });
    // The module's figures (serial, boot counter, ring use) read once before the drain thread owns
    // the source, so the first status snapshot carries them.
    auto module_status = source_->status();
    if (!module_status)
        base::logger().warn("cannot read the module's status yet: {}", module_status.error().describe());
    // The store belongs to the drain thread once it runs: read what the start line reports now.
    const std::uint64_t first_entry = store_->durable().entry_no + 1;
    drain_->start();

    // The appliance's syslog stream, spooled on its own (it is not part of the module's chain).
    // The spool's flushes ring the runners like the drain's commits: a destination reading the
    // syslog stream notices new lines as soon as they are durable.
    auto intake = SyslogIntake::start(cfg, (fs::path(state_dir_) / "syslog").string(), alerts_.get(),
                                      [this] { store_appended_.ring(); });
    if (!intake) return std::move(intake).error();
    syslog_ = std::move(*intake);

    // The destinations, each reading the store after its own cursor on its own thread.
    if (module_) {
        serial_ = std::string(module_->serial());
    } else if (module_status) {
        serial_ = module_status->serial;
    }
    const std::string hostname = appliance_host_name(cfg);
    auto exports = ExportManager::create(cfg, plugins_.exporters,
                                         ExportContext{state_dir_, &*key_, serial_, hostname, *alerts_,
                                                       [this] { return status(); }, wall_clock_ms, &store_appended_});
    if (!exports) return std::move(exports).error();
    exports_ = std::move(*exports);  // built here, started last (below)

    // Archives and retention, each on its own thread, out of the drain's way. A segment is
    // archived, and an archive deleted, only once every destination has delivered it.
    const std::string audit_dir = audit_dir_of(state_dir_);
    archiver_ = std::make_unique<Archiver>(
        make_archiver_options(cfg, audit_dir), *key_, *alerts_, [this] { return drain_->stats().sealed_epoch; },
        wall_clock_ms);
    // Set even without destinations (nullopt: no gate), since a reload may add some.
    archiver_->set_delivery_gate([this] { return exports_->min_delivered_seq(); });
    archiver_->start();
    retention_ = std::make_unique<Retention>(
        make_retention_options(cfg, audit_dir), *exports_, *alerts_,
        [this](bool paused, const std::string& reason) { drain_->set_ack_paused(paused, reason); }, wall_clock_ms);
    retention_->start();

    // The built-in workload (embedded demo).
    if (module_ && cfg.integer("module.workload.rate") > 0) {
        auto mix = parse_workload_mix(cfg.str("module.workload.mix"));
        if (!mix) return make_error(errc::config_error, "module.workload.mix: " + mix.error().message);
        workload_ = std::make_unique<EmbeddedWorkload>(
            *module_, module_dir_, static_cast<unsigned>(cfg.integer("module.workload.rate")), *mix);
        if (auto st = workload_->start(); !st)
            return make_error(errc::internal, "cannot start the built-in workload: " + st.error().describe());
    }
    const std::string line = "draining module " + (serial_.empty() ? std::string("(served)") : serial_) + " into " +
                             state_dir_ + " from entry " + std::to_string(first_entry) + ", " +
                             std::to_string(exports_->size()) + " destination" + (exports_->size() == 1 ? "" : "s");
    base::logger().info("{}", line);
    alerts_->alert(Alert{"agent.started", Severity::info, line, 0, wall_clock_ms()});
    make_probes();
    // Last: the destinations, once everything they read exists (the store, the alerts, the
    // delivery gates above, and a first status snapshot for the state they report).
    publish_status();
    exports_->start();
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
        if (const auto* journal = syslog_->journal_probe())
            probes_.push_back(std::make_shared<collectors::journal::ProbeCollector>(*journal));
    }
    probes_.push_back(std::move(store));
    // The destinations as they are at each scrape: a reload adds and removes some.
    auto exports = std::make_shared<ExportProbe>(wall_clock_ms, [this] {
        std::vector<ExporterFigures> out;
        for (auto& e : exports_->stats())
            out.push_back(ExporterFigures{std::move(e.name), std::move(e.type), e.streams, std::move(e.stats),
                                          std::move(e.delivery_latency)});
        return out;
    });
    probes_.push_back(std::move(exports));
}

namespace {
/// Keys a SIGHUP applies at once: the drain's batching, rotation and alert thresholds, and the log
/// level; the destinations (exporters.*) are compared and rebuilt on their own. Every other key
/// (directories, module, keys, store, archives, syslog, metrics) needs a restart.
/// How long a reload that adds a destination waits for an archiver pass under way.
constexpr std::chrono::milliseconds kReloadArchiverWait{5'000};

bool reloadable(std::string_view key) {
    return key.starts_with("drain.") || key.starts_with("rotation.") || key.starts_with("alerts.") ||
           key.starts_with("checkpoint.") || key == "agent.log_level";
}
}  // namespace

Result<std::string> Service::reload(base::Config next) {
    if (!exports_ || !drain_) return make_error(errc::internal, "the agent is not running yet");
    const std::shared_ptr<const base::Config> running = config();
    const base::Config& cfg = *running;
    std::string restart_needed;
    for (const base::KeySpec& spec : all_config_keys(plugins_.keys)) {
        if (spec.key.find('*') != std::string_view::npos) continue;  // destinations: below
        if (reloadable(spec.key) || next.str(spec.key) == cfg.str(spec.key)) continue;
        restart_needed += std::string(restart_needed.empty() ? "" : ", ") + std::string(spec.key);
        // Keep the running value, so status and later reloads stay true to what runs.
        next.keep(spec.key, cfg);
    }
    // The destinations: each new or changed one is built (and a new one's cursor resolved) before
    // anything changes, so one that cannot be built refuses the whole reload. A new destination
    // resolves its start (the oldest record outside archives) with the archiver's passes held off,
    // so no pass archives that record before the new cursor holds it back.
    std::set<std::string> running_names;
    for (const auto& e : exports_->stats()) running_names.insert(e.name);
    const auto names = next.instances("exporters");
    const bool adds = std::any_of(names.begin(), names.end(), [&](const std::string& name) {
        return next.boolean("exporters." + name + ".enabled") && !running_names.contains(name);
    });
    std::unique_lock<std::mutex> archive_hold;
    if (adds && archiver_) {
        // Bounded: a pass bundling many large segments may take long, and the main thread must
        // keep feeding the watchdog. Refused rather than racing the pass; the operator retries.
        archive_hold = archiver_->hold_passes(kReloadArchiverWait);
        if (!archive_hold.owns_lock())
            return make_error(errc::internal,
                              "the archiver is bundling segments (a pass under way for more than " +
                                  std::to_string(kReloadArchiverWait.count() / 1000) +
                                  " s) and a new destination must resolve its start outside it; nothing "
                                  "changed: reload again");
    }
    auto plan = exports_->prepare(next, plugins_.exporters);
    if (!plan) return std::move(plan).error();
    drain_->set_options(make_drain_options(next));
    base::logger().set_level(spdlog::level::from_str(next.str("agent.log_level")));
    const std::string destinations = plan->empty() ? std::string() : exports_->apply(std::move(*plan));
    if (archive_hold.owns_lock()) archive_hold.unlock();
    config_.store(std::make_shared<const base::Config>(std::move(next)));  // readers keep the snapshot they took
    std::string out = "configuration reloaded";
    if (!destinations.empty()) out += "; destinations " + destinations;
    if (!restart_needed.empty()) out += "; these keys take effect at the next restart: " + restart_needed;
    return out;
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

void Service::tick(std::int64_t now_ms) {
    const bool write_due = now_ms - last_write_ms_ >= status_file_interval_ms();
    if (write_due) {
        last_write_ms_ = now_ms;
        (void)write_status();  // failures: counted, backed off and logged (rate-limited) there
    } else if (now_ms - last_publish_ms_ >= kStatusTickMs) {
        publish_status();
    }
}

std::shared_ptr<const AgentStatus> Service::publish_status() {
    const std::int64_t now = wall_clock_ms();
    std::shared_ptr<const AgentStatus> snapshot;
    // No exception from a component's stats may end the caller's loop.
    try {
        snapshot = std::make_shared<const AgentStatus>(build_status(now));
    } catch (const std::exception& e) {
        AgentStatus failed;
        failed.time_ms = now;
        failed.pid = static_cast<std::int64_t>(::getpid());
        failed.started_ms = started_ms_;
        failed.state_dir = state_dir_;
        failed.error = std::string("cannot gather the status: ") + e.what();
        snapshot = std::make_shared<const AgentStatus>(std::move(failed));
    }
    last_publish_ms_ = now;
    status_.store(snapshot);
    return snapshot;
}

AgentStatus Service::build_status(std::int64_t now_ms) {
    const std::shared_ptr<const base::Config> config = this->config();
    AgentStatus s;
    s.time_ms = now_ms;
    s.version = std::string(base::version());
    s.pid = static_cast<std::int64_t>(::getpid());
    s.started_ms = started_ms_;
    s.state_dir = state_dir_;

    s.module.serial = serial_;
    s.module.mode = config->str("module.mode");
    if (source_) {
        const collectors::ModuleFigures f = source_->probe().snapshot();
        if (f.valid) {
            s.module.state = f.blocked ? "blocked" : "running";
            s.module.boot = static_cast<std::uint32_t>(f.boot);
            s.module.operation_requests = f.counters.op_requests;
            s.module.operation_errors = f.counters.op_errors;
            s.module.crypto_requests = f.counters.crypto_requests;
            s.module.crypto_errors = f.counters.crypto_errors;
            s.module.critical_events = f.counters.critical_events;
            s.module.noncritical_events = f.counters.noncritical_events;
            s.module.refused_log_full = f.counters.refused_log_full;
        }
        if (drain_) {
            const DrainStats d = drain_->stats();
            RingStatus ring;
            ring.fill = d.ring_fill;
            ring.fill_peak = d.ring_fill_peak;
            ring.seconds_to_reserve = d.seconds_to_reserve;
            ring.blocked = d.module_blocked;
            ring.fill_critical = config->ratio("alerts.ring_fill_critical");
            if (f.valid) {
                ring.capacity_bytes = f.capacity_bytes;
                ring.reserve_bytes = f.reserve_bytes;
                ring.used_bytes = f.used_bytes;
                ring.used_records = f.used_records;
                ring.used_entries = f.used_entries;
            }
            s.ring = ring;

            DrainStatus drain;
            drain.entries = d.entries;
            drain.records = d.records;
            drain.seals = d.seals;
            drain.commits = d.commits;
            drain.faults = d.faults;
            drain.acked_entry_no = d.acked_entry_no;
            drain.last_seq = d.last_seq;
            drain.failing = d.failing;
            drain.acks_paused = d.acks_paused;
            drain.step_failures = d.step_failures;
            drain.store_reopens = d.store_reopens;
            drain.last_step_ms = d.last_step_ms;
            // The rate over the last tick (at least half a second, so a burst of ticks does not measure noise).
            if (rate_time_ms_ != 0 && now_ms - rate_time_ms_ >= kStatusTickMs / 2 && d.records >= rate_records_)
                drain.records_per_s = static_cast<double>(d.records - rate_records_) * 1000.0 /
                                      static_cast<double>(now_ms - rate_time_ms_);
            if (rate_time_ms_ == 0 || now_ms - rate_time_ms_ >= kStatusTickMs / 2) {
                rate_records_ = d.records;
                rate_time_ms_ = now_ms;
            }
            if (d.acked_entry_no != last_acked_) {
                last_acked_ = d.acked_entry_no;
                last_ack_ms_ = now_ms;
            }
            drain.last_ack_ms = last_ack_ms_;
            s.drain = drain;
            s.checkpoint.taken = d.checkpoints;
        }
    }
    s.checkpoint.store_failures = checkpoint_failures_.load(std::memory_order_relaxed);
    if (store_) {
        // AuditStore belongs to the drain thread: this thread reads the committed position file
        // and the directories instead.
        StoreStatus st;
        const std::string audit_dir = audit_dir_of(state_dir_);
        st.dir = audit_dir;
        if (auto pos = read_store_position(audit_dir); pos) {
            st.durable_entry_no = pos->entry_no;
            st.open_segment = pos->current;
            st.open_segment_bytes = pos->current_bytes;
        }
        for (const StoredSegment& seg : list_store_segments(audit_dir)) {
            if (seg.sealed_dir) ++st.sealed_segments;
            std::error_code ec;
            const auto size = fs::file_size(seg.path, ec);
            if (!ec) st.bytes += size;
        }
        st.encrypted = config->boolean("store.encrypt");
        s.store = std::move(st);
    }
    if (archiver_) {
        const ArchiverStats a = archiver_->stats();
        s.archive = ArchiveStatus{a.runs,
                                  a.failures,
                                  a.archives_written,
                                  a.segments_archived,
                                  a.duplicates_removed,
                                  a.consecutive_failures,
                                  a.stopped,
                                  a.last_archive,
                                  a.last_error};
    }
    if (retention_) {
        const RetentionStats r = retention_->stats();
        RetentionStatus rs;
        rs.used_bytes = r.used_bytes;
        rs.protected_bytes = r.protected_bytes;
        rs.quota_bytes = r.quota_bytes;
        rs.level = std::string(to_string(r.level));
        rs.acks_paused = r.acks_paused;
        rs.archives_deleted = r.archives_deleted;
        rs.disk_full = r.disk_full;
        rs.failures = r.failures;
        rs.stopped = r.stopped;
        rs.last_error = r.last_error;
        rs.exporters = r.delivered_seq.has_value();
        s.retention = std::move(rs);
    }
    if (alerts_) {
        for (const auto& [k, v] : alerts_->counts()) s.alerts.counts[k] = v;
        for (const auto& a : alerts_->recent())
            s.alerts.recent.push_back(RecentAlert{a.time_ms, a.kind, std::string(to_string(a.severity)), a.message});
    }
    if (syslog_) {
        const auto p = syslog_->probe().snapshot();
        SyslogStatus sy;
        sy.received = p.received;
        sy.malformed = p.malformed;
        sy.oversized = p.oversized;
        sy.dropped_by_kernel = p.dropped;
        sy.framing_errors = p.framing_errors;
        sy.read_errors = p.read_errors;
        if (const auto sp = syslog_->spool_stats())
            sy.spool = SyslogStatus::Spool{sp->appended, sp->dropped, sp->deleted_segments, sp->write_errors};
        s.syslog = sy;
    }
    if (exports_) {
        for (const auto& e : exports_->stats()) {
            const RunnerStats& r = e.stats;
            ExporterStatus x;
            x.name = e.name;
            x.type = e.type;
            x.state = std::string(to_string(r.state));
            x.peer = r.transport.peer;
            for (Stream st : kAllStreams) {
                const auto i = static_cast<std::size_t>(st);
                if (r.cursor[i] != 0 || r.newest[i] != 0) x.cursor[std::string(to_string(st))] = r.cursor[i];
                if (r.delivered[i] != 0) x.delivered[std::string(to_string(st))] = r.delivered[i];
            }
            x.filtered = r.filtered;
            x.sent = r.sent;
            x.resent = r.resent;
            x.failures = r.failures;
            x.in_flight = r.in_flight;
            x.lag_records = r.lag_records();
            x.lag_seconds = r.lag_seconds();
            x.last_error = r.last_error;
            x.cursor_write_failures = r.cursor_write_failures;
            x.cursor_error = r.cursor_error;
            x.store_held = std::any_of(r.store_held.begin(), r.store_held.end(), [](bool h) { return h; });
            x.store_error = r.store_error;
            x.store_damaged_places = r.source.damaged_places;
            x.store_skipped_records = r.source.skipped_records;
            s.exporters.push_back(std::move(x));
        }
    }
    if (workload_) {
        const auto w = workload_->stats();
        s.workload = WorkloadStatus{w.ops, w.refused, w.errors};
    }
    const StatusFileStats sf = status_file_.stats();
    s.status_file = StatusFileStatus{sf.writes, sf.failures, sf.consecutive_failures, sf.last_error};
    return s;
}

Status Service::write_status() {
    // Alerts whose write failed (a full disk) are kept by the alert log; write them now if the
    // disk allows, so they reach the destinations.
    if (alerts_) (void)alerts_->retry();
    const auto snapshot = publish_status();
    return status_file_.write(status_file_path(state_dir_), *snapshot, wall_clock_ms(), stopped_);
}

}  // namespace hsmaudit::agent
