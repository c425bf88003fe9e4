#include "agent/engine/export/manager.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "agent/engine/export/store_source.h"
#include "base/logger.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSeverityNames[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

int severity_of(std::string_view name) {
    for (std::size_t i = 0; i < std::size(kSeverityNames); ++i)
        if (kSeverityNames[i] == name) return static_cast<int>(i);
    return -1;
}

constexpr std::string_view kClasses[] = {"failure", "success", "access",   "manage",   "keymanage",
                                         "usage",   "first",   "external", "logmanage"};

std::string key(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + "." + std::string(k);
}

const ExporterFactory* find_factory(std::span<const ExporterFactory> factories, std::string_view type) {
    for (const auto& f : factories)
        if (f.type == type) return &f;
    return nullptr;
}

struct Parsed {
    std::array<bool, 4> streams{};
    int max_severity = 7;
    std::vector<std::string> classes;
};

Result<Parsed> parse_common(const base::Config& c, const std::string& name) {
    auto bad = [&](std::string_view k, const std::string& what) {
        return make_error(errc::config_error,
                          c.source_name() + ": " + key(name, k) + " (" + c.origin(key(name, k)) + "): " + what);
    };
    Parsed p;
    const auto streams = base::split_list(c.str(key(name, "streams")));
    if (streams.empty()) return bad("streams", "names no stream (use audit, syslog, alerts, checkpoints)");
    for (const auto& s : streams) {
        Stream st{};
        if (!parse_stream(s, st))
            return bad("streams", "unknown stream '" + s + "' (use audit, syslog, alerts, checkpoints)");
        p.streams[static_cast<std::size_t>(st)] = true;
    }
    p.max_severity = severity_of(c.str(key(name, "min_severity")));
    for (const auto& cl : base::split_list(c.str(key(name, "classes")))) {
        if (std::find(std::begin(kClasses), std::end(kClasses), cl) == std::end(kClasses))
            return bad("classes", "unknown event class '" + cl +
                                      "' (failure, success, access, manage, keymanage, usage, first, external, "
                                      "logmanage)");
        p.classes.push_back(cl);
    }
    return p;
}

}  // namespace

std::span<const base::KeySpec> export_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"exporters.*.type", base::KeyType::string, "",
         "The destination's kind: `relp`, `syslog` (RFC 5425 TLS, RFC 6587 TCP, or UDP), `kafka`, `snmp`, `splunk_hec` "
         "(Splunk HTTP Event Collector). Each "
         "destination is a section `exporters.<name>` with a name you choose (lower-case letters, digits, `-`, `_`). A "
         "reload (SIGHUP) adds, removes and rebuilds destinations (docs/ARCHITECTURE.md, \"Reloading destinations\")."},
        {"exporters.*.enabled", base::KeyType::boolean, "true",
         "A disabled destination is not built and keeps its cursor."},
        {"exporters.*.streams", base::KeyType::list, "audit,alerts,checkpoints",
         "What the destination receives, a YAML list (`[audit, alerts]`) or a comma-separated string: `audit` (the "
         "module's records), `syslog` (the appliance's syslog), `alerts` (the agent's alerts), `checkpoints` (the "
         "module's signed chain heads). A destination carries audit or syslog, not both, and two destinations at one "
         "host:port may not carry one audit and the other syslog (as on the appliance)."},
        {"exporters.*.min_severity", base::KeyType::choice, "debug",
         "Deliver only events at least this severe (docs/SIEM.md, \"Severities\"); the others are skipped and count "
         "as delivered.",
         0, INT64_MAX, "emerg|alert|crit|err|warning|notice|info|debug"},
        {"exporters.*.classes", base::KeyType::list, "",
         "Audit records of these event classes only, a YAML list or a comma-separated string of: failure, success, "
         "access, manage, keymanage, usage, first, external, logmanage; empty: all."},
        {"exporters.*.start", base::KeyType::choice, "oldest",
         "Where a destination without a cursor starts: `oldest` (everything the store still holds) or `newest` "
         "(only what arrives from now on).",
         0, INT64_MAX, "oldest|newest"},
        {"exporters.*.chain_lines", base::KeyType::boolean, "false",
         "Also deliver the segments' open and seal entries, so a remote verifier (`hsmaudit verify --kafka`) can "
         "follow the chain's key epochs."},
        {"exporters.*.batch", base::KeyType::integer, "512", "Events per send.", 1, 100'000},
        {"exporters.*.max_in_flight", base::KeyType::integer, "10000",
         "Events sent and not yet acknowledged, at most (bounds memory; the store buffers the rest).", 1, 1'000'000},
        {"exporters.*.backoff_initial", base::KeyType::duration, "500ms",
         "First wait before reconnecting after a failure; doubles per failure (with jitter).", 10, 3'600'000},
        {"exporters.*.backoff_max", base::KeyType::duration, "30s", "Longest wait between reconnection attempts.", 10,
         3'600'000},
        {"exporters.*.ack_timeout", base::KeyType::duration, "30s",
         "Events in flight and no acknowledgement for this long: the destination counts as down (alert, "
         "reconnect, resend), even when its transport has not noticed.",
         1000, 3'600'000},
        {"exporters.*.cursor_sync", base::KeyType::duration, "250ms",
         "How often the destination's cursor file is written (fsync, rename) while it delivers: after a crash, "
         "what was acknowledged since the last write is delivered again.",
         10, 60'000},
        {"exporters.*.stop_timeout", base::KeyType::duration, "5s",
         "At shutdown, and when a reload (SIGHUP) removes the destination or changes one of its keys, how long to "
         "wait for outstanding acknowledgements (what is not acknowledged by then is sent again after the cursor).",
         0, 600'000},
    };
    return kKeys;
}

Status validate_exporters(const base::Config& c, std::span<const ExporterFactory> factories) {
    struct Use {
        std::string name;
        bool audit = false;
        bool syslog = false;
    };
    std::map<std::string, std::vector<Use>> by_endpoint;
    for (const auto& name : c.instances("exporters")) {
        if (!c.boolean(key(name, "enabled"))) continue;
        const std::string& type = c.str(key(name, "type"));
        if (type.empty())
            return make_error(errc::config_error,
                              c.source_name() + ": " + key(name, "type") + " is missing (the destination's kind)");
        const ExporterFactory* f = find_factory(factories, type);
        if (f == nullptr) {
            std::string known;
            for (const auto& g : factories) known += (known.empty() ? "" : ", ") + std::string(g.type);
            return make_error(errc::config_error, c.source_name() + ": " + key(name, "type") + " (" +
                                                      c.origin(key(name, "type")) + "): unknown kind '" + type +
                                                      "' (this build knows: " + (known.empty() ? "none" : known) + ")");
        }
        auto p = parse_common(c, name);
        if (!p) return std::move(p).error();
        const bool audit = p->streams[static_cast<std::size_t>(Stream::audit)];
        const bool syslog = p->streams[static_cast<std::size_t>(Stream::syslog)];
        if (audit && syslog)
            return make_error(errc::config_error,
                              c.source_name() + ": " + key(name, "streams") + " (" + c.origin(key(name, "streams")) +
                                  "): one destination may not carry both audit and syslog: remote audit and remote "
                                  "syslog must not share a host:port (configure two destinations)");
        const std::string endpoint = f->endpoint != nullptr ? f->endpoint(c, name) : "";
        if (!endpoint.empty()) by_endpoint[endpoint].push_back(Use{name, audit, syslog});
    }
    for (const auto& [endpoint, uses] : by_endpoint) {
        const auto a = std::find_if(uses.begin(), uses.end(), [](const Use& u) { return u.audit; });
        const auto s = std::find_if(uses.begin(), uses.end(), [](const Use& u) { return u.syslog; });
        if (a != uses.end() && s != uses.end())
            return make_error(errc::config_error, c.source_name() + ": exporters." + a->name +
                                                      " (audit) and exporters." + s->name + " (syslog) both send to " +
                                                      endpoint +
                                                      ": remote audit and remote syslog must not share a host:port");
    }
    return {};
}

Result<DestinationSettings> read_destination_settings(const base::Config& c, const std::string& name) {
    auto p = parse_common(c, name);
    if (!p) return std::move(p).error();
    DestinationSettings s;
    RunnerOptions& o = s.runner;
    o.name = name;
    o.streams = p->streams;
    o.max_severity = p->max_severity;
    o.classes = p->classes;
    o.start_newest = c.str(key(name, "start")) == "newest";
    o.batch = static_cast<std::size_t>(c.integer(key(name, "batch")));
    o.max_in_flight = static_cast<std::size_t>(c.integer(key(name, "max_in_flight")));
    o.backoff_initial = std::chrono::milliseconds(c.integer(key(name, "backoff_initial")));
    o.backoff_max = std::chrono::milliseconds(c.integer(key(name, "backoff_max")));
    o.stop_timeout = std::chrono::milliseconds(c.integer(key(name, "stop_timeout")));
    o.cursor_sync = std::chrono::milliseconds(c.integer(key(name, "cursor_sync")));
    o.ack_timeout = std::chrono::milliseconds(c.integer(key(name, "ack_timeout")));
    s.chain_lines = c.boolean(key(name, "chain_lines"));
    return s;
}

std::string cursor_path_of(const std::string& state_dir, const std::string& name) {
    return (fs::path(state_dir) / "export" / name / "cursor").string();
}

/// One destination built from the configuration, not yet running.
struct ExportManager::Pending {
    std::string name;
    std::string type;
    std::map<std::string, std::string> settings;
    std::vector<std::string> changed_keys;  // a rebuilt destination: the keys that differ
    RunnerOptions options;
    std::unique_ptr<Exporter> exporter;
    std::unique_ptr<EventSource> source;
    std::unique_ptr<ExportRunner> runner;  // once opened
};

ExportManager::Plan::Plan() = default;
ExportManager::Plan::Plan(Plan&&) noexcept = default;
ExportManager::Plan& ExportManager::Plan::operator=(Plan&&) noexcept = default;
ExportManager::Plan::~Plan() {
    // Dropped (the reload refused): a new destination's first cursor file, written when its start
    // was resolved, goes too, so a later reload or start resolves its start again.
    for (const auto& path : cleanup_) {
        std::error_code ec;
        fs::remove(path, ec);
    }
}

std::string ExportManager::Plan::summary() const {
    std::string out;
    auto list = [&](std::string_view what, const std::vector<std::string>& names) {
        if (names.empty()) return;
        out += (out.empty() ? "" : "; ") + std::string(what);
        for (std::size_t i = 0; i < names.size(); ++i) out += (i == 0 ? " " : ", ") + names[i];
    };
    std::vector<std::string> added;
    for (const auto& p : added_) added.push_back(p->name);
    std::vector<std::string> changed;
    for (const auto& p : changed_) {
        std::string keys;
        for (const auto& k : p->changed_keys) keys += (keys.empty() ? "" : ", ") + k;
        changed.push_back(p->name + " (" + keys + ")");
    }
    list("added", added);
    list("changed", changed);
    list("removed", removed_);
    return out;
}

namespace {

/// Every key under exporters.<name>. with its value's text: what a destination is built from.
std::map<std::string, std::string> settings_of(const base::Config& c, const std::string& name) {
    return c.values_under("exporters." + name + ".");
}

std::vector<std::string> differing_keys(const std::map<std::string, std::string>& a,
                                        const std::map<std::string, std::string>& b) {
    std::vector<std::string> out;
    for (const auto& [k, v] : a) {
        const auto it = b.find(k);
        if (it == b.end() || it->second != v) out.push_back(k);
    }
    for (const auto& [k, v] : b)
        if (!a.contains(k)) out.push_back(k);
    std::sort(out.begin(), out.end());
    return out;
}

std::string cursor_line(const RunnerStats& s, const std::array<bool, 4>& streams) {
    std::string out;
    for (Stream st : kAllStreams) {
        const auto i = static_cast<std::size_t>(st);
        if (!streams[i]) continue;
        out += (out.empty() ? "" : ", ") + std::string(to_string(st)) + " " + std::to_string(s.cursor[i]);
    }
    return out;
}

}  // namespace

Result<std::unique_ptr<ExportManager::Pending>> ExportManager::build(const base::Config& c, const std::string& name,
                                                                     std::span<const ExporterFactory> factories,
                                                                     const ExportContext& ctx,
                                                                     const std::shared_ptr<StoreDamageLedger>& damage) {
    auto pending = std::make_unique<Pending>();
    pending->name = name;
    pending->type = c.str(key(name, "type"));
    pending->settings = settings_of(c, name);
    const ExporterFactory* f = find_factory(factories, pending->type);
    if (f == nullptr)
        return make_error(errc::config_error, "exporters." + name + ": unknown kind '" + pending->type + "'");
    auto settings = read_destination_settings(c, name);
    if (!settings) return std::move(settings).error();
    const std::string dir = (fs::path(ctx.state_dir) / "export" / name).string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
    ExporterContext ec_ctx{name, c, dir, ctx.alerts, ctx.agent_status};
    auto exporter = f->create(ec_ctx);
    if (!exporter) return make_error(errc::config_error, "exporters." + name + ": " + exporter.error().describe());
    pending->exporter = std::move(*exporter);
    pending->options = std::move(settings->runner);
    pending->options.cursor_path = cursor_path_of(ctx.state_dir, name);
    pending->options.store_appended = ctx.store_appended;
    pending->source = make_store_event_source(
        StoreSourceOptions{ctx.state_dir, ctx.key, ctx.serial, ctx.host, settings->chain_lines, damage});
    return pending;
}

Status ExportManager::open(Pending& p, const ExportContext& ctx) {
    auto runner =
        ExportRunner::open(std::move(p.options), std::move(p.exporter), std::move(p.source), ctx.alerts, ctx.now_ms);
    if (!runner) return make_error(errc::io_error, "exporters." + p.name + ": " + runner.error().describe());
    p.runner = std::move(*runner);
    return {};
}

Result<std::unique_ptr<ExportManager>> ExportManager::create(const base::Config& c,
                                                             std::span<const ExporterFactory> factories,
                                                             const ExportContext& ctx) {
    HSMAUDIT_TRY(validate_exporters(c, factories));
    std::unique_ptr<ExportManager> m(new ExportManager());
    m->alerts_ = &ctx.alerts;
    m->context_.emplace(ctx);
    // One ledger of store damage for every destination: one alert per damaged place.
    m->damage_ = std::make_shared<StoreDamageLedger>(ctx.alerts, ctx.now_ms);
    for (const auto& name : c.instances("exporters")) {
        if (!c.boolean(key(name, "enabled"))) continue;
        auto pending = build(c, name, factories, ctx, m->damage_);
        if (!pending) return std::move(pending).error();
        HSMAUDIT_TRY(open(**pending, ctx));
        Pending& p = **pending;
        m->runners_.push_back(Runner{p.name, p.type, std::move(p.settings), std::move(p.runner)});
    }
    return m;
}

Result<ExportManager::Plan> ExportManager::prepare(const base::Config& next,
                                                   std::span<const ExporterFactory> factories) {
    HSMAUDIT_TRY(validate_exporters(next, factories));
    const ExportContext& ctx = *context_;
    std::vector<std::string> wanted;
    for (const auto& name : next.instances("exporters"))
        if (next.boolean(key(name, "enabled"))) wanted.push_back(name);
    Plan plan;
    for (const auto& r : runners_) {
        if (std::find(wanted.begin(), wanted.end(), r.name) == wanted.end()) plan.removed_.push_back(r.name);
    }
    // Build everything new before opening any runner: an exporter that cannot be built (a missing
    // TLS file, a bad format key) refuses the reload before a cursor file is written.
    for (const auto& name : wanted) {
        const auto running =
            std::find_if(runners_.begin(), runners_.end(), [&](const Runner& r) { return r.name == name; });
        std::vector<std::string> changed_keys;
        if (running != runners_.end()) {
            changed_keys = differing_keys(running->settings, settings_of(next, name));
            if (changed_keys.empty()) continue;  // unchanged: not touched
        }
        auto pending = build(next, name, factories, ctx, damage_);
        if (!pending) return std::move(pending).error();
        (*pending)->changed_keys = std::move(changed_keys);
        (running != runners_.end() ? plan.changed_ : plan.added_).push_back(std::move(*pending));
    }
    // A new destination's runner opens now (its cursor file read, or its start resolved and
    // written), so a damaged cursor file refuses the reload too.
    for (auto& p : plan.added_) {
        const std::string cursor = p->options.cursor_path;
        std::error_code ec;
        const bool had_cursor = fs::exists(cursor, ec);
        HSMAUDIT_TRY(open(*p, ctx));
        if (!had_cursor) plan.cleanup_.push_back(cursor);
    }
    return plan;
}

std::string ExportManager::apply(Plan plan) {
    plan.cleanup_.clear();  // applied: the cursor files stay
    std::string summary = plan.summary();
    auto index_of = [this](const std::string& name) -> std::size_t {
        for (std::size_t i = 0; i < runners_.size(); ++i)
            if (runners_[i].name == name) return i;
        return runners_.size();
    };
    // 1. The removed and changed destinations stop, side by side: each waits for the
    //    acknowledgements of what it has in flight (its stop_timeout at most) and writes its cursor.
    //    They stay in the set meanwhile, so retention and the archiver still see their cursors.
    std::vector<ExportRunner*> stopping;
    for (const auto& name : plan.removed_) stopping.push_back(runners_[index_of(name)].runner.get());
    for (const auto& p : plan.changed_) stopping.push_back(runners_[index_of(p->name)].runner.get());
    stop_runners(stopping, ExportRunner::StopMode::in_flight_only);
    // 2. Each changed destination's new runner resumes where the old one stopped.
    std::vector<std::unique_ptr<Pending>> rebuilt;
    for (auto& p : plan.changed_) {
        const ExportRunner& old = *runners_[index_of(p->name)].runner;
        const RunnerStats last = old.stats();
        p->options.resume = RunnerOptions::Resume{last.cursor, last.durable};
        const std::array<bool, 4> streams = p->options.streams;
        if (auto st = open(*p, *context_); !st) {
            // Cannot happen with a resume point (no file is read); if it does, the old runner stays
            // in the set, stopped, its cursor still holding retention back: nothing is lost.
            base::logger().error("exporter {}: cannot start it with its new settings: {}; it stays stopped", p->name,
                                 st.error().describe());
            alerts_->alert(Alert{"exporter.failed", Severity::critical,
                                 "destination '" + p->name + "' could not be rebuilt by the reload (" +
                                     st.error().describe() + "); it stays stopped until the agent restarts",
                                 0, context_->now_ms()});
            continue;
        }
        base::logger().info(
            "exporter {}: settings changed ({}); resumes at {} with them", p->name,
            [&] {
                std::string keys;
                for (const auto& k : p->changed_keys) keys += (keys.empty() ? "" : ", ") + k;
                return keys;
            }(),
            cursor_line(last, streams));
        rebuilt.push_back(std::move(p));
    }
    // 3. The set changes under the mutex (readers copy figures under it), nothing stops or starts
    //    while it is held. The runners taken out are destroyed here, on the owner thread, after.
    std::vector<std::unique_ptr<ExportRunner>> retired;
    std::vector<ExportRunner*> starting;
    {
        std::lock_guard lock(set_mutex_);
        for (const auto& name : plan.removed_) {
            const std::size_t i = index_of(name);
            retired.push_back(std::move(runners_[i].runner));
            runners_.erase(runners_.begin() + static_cast<std::ptrdiff_t>(i));
        }
        for (auto& p : rebuilt) {
            Runner& r = runners_[index_of(p->name)];
            retired.push_back(std::move(r.runner));
            r.type = p->type;
            r.settings = std::move(p->settings);
            r.runner = std::move(p->runner);
            starting.push_back(r.runner.get());
        }
        for (auto& p : plan.added_) {
            runners_.push_back(Runner{p->name, p->type, std::move(p->settings), std::move(p->runner)});
            starting.push_back(runners_.back().runner.get());
        }
    }
    for (const auto& name : plan.removed_)
        base::logger().info(
            "exporter {}: removed; its cursor stays in {} (the same name added again resumes there); it no longer "
            "holds back the archiver or retention",
            name, (fs::path(context_->state_dir) / "export" / name / "cursor").string());
    for (const auto& p : plan.added_)
        base::logger().info("exporter {}: added ({}), starts at {}", p->name, p->type,
                            cursor_line(runners_[index_of(p->name)].runner->stats(),
                                        runners_[index_of(p->name)].runner->options().streams));
    retired.clear();
    // 4. Last: the new runners start.
    for (ExportRunner* r : starting) r->start();
    return summary;
}

ExportManager::~ExportManager() {
    stop();
}

void ExportManager::start() {
    for (auto& r : runners_) r.runner->start();
}

void ExportManager::stop() {
    std::vector<ExportRunner*> all;
    all.reserve(runners_.size());
    for (auto& r : runners_) all.push_back(r.runner.get());
    stop_runners(all, ExportRunner::StopMode::deliver_stored);
}

void ExportManager::stop_runners(const std::vector<ExportRunner*>& runners, ExportRunner::StopMode mode) {
    // Each runner waits for its outstanding acknowledgements: stop them side by side.
    std::vector<std::jthread> stoppers;
    stoppers.reserve(runners.size());
    for (ExportRunner* r : runners) {
        // Last resort: an exception stopping one runner is alerted and does not end the agent
        // (an exception escaping a std::thread body calls std::terminate).
        auto stop_one = [this, r, mode] {
            (void)detail::run_guarded(
                "exporter '" + r->options().name + "' (stopping)", [&] { r->stop(mode); }, alerts_);
        };
        try {
            stoppers.emplace_back(stop_one);
        } catch (...) {
            stop_one();  // no thread to be had: stop this one here
        }
    }
}

std::optional<std::uint64_t> ExportManager::min_delivered_seq() const {
    std::lock_guard lock(set_mutex_);
    std::optional<std::uint64_t> min;
    for (const auto& r : runners_) {
        if (!r.runner->options().streams[static_cast<std::size_t>(Stream::audit)]) continue;
        // The durable cursor: what a restart resumes at, so nothing is archived or deleted that
        // a destination could still need after a crash (its cursor file may lag while writes fail).
        const std::uint64_t d = r.runner->durable_through(Stream::audit);
        min = min ? std::min(*min, d) : d;
    }
    return min;
}

std::size_t ExportManager::size() const {
    std::lock_guard lock(set_mutex_);
    return runners_.size();
}

std::vector<ExportManager::Entry> ExportManager::stats() const {
    std::lock_guard lock(set_mutex_);
    std::vector<Entry> out;
    out.reserve(runners_.size());
    for (const auto& r : runners_)
        out.push_back(Entry{r.name, r.type, r.runner->options().streams, r.runner->stats(),
                            r.runner->delivery_latency().snapshot()});
    return out;
}

}  // namespace hsmaudit::agent
