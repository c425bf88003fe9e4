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
         "The destination's kind: `relp`, `syslog` (RFC 5425 TLS, RFC 6587 TCP, or UDP), `kafka`, `snmp`. Each "
         "destination is a section `exporters.<name>` with a name you choose (lower-case letters, digits, `-`, `_`)."},
        {"exporters.*.enabled", base::KeyType::boolean, "true",
         "A disabled destination is not built and keeps its cursor."},
        {"exporters.*.streams", base::KeyType::string, "audit,alerts,checkpoints",
         "What the destination receives, comma-separated: `audit` (the module's records), `syslog` (the appliance's "
         "syslog), `alerts` (the agent's alerts), `checkpoints` (the module's signed chain heads). A destination "
         "carries audit or syslog, not both, and two destinations at one host:port may not carry one audit and the "
         "other syslog (as on the appliance)."},
        {"exporters.*.min_severity", base::KeyType::choice, "debug",
         "Deliver only events at least this severe (docs/SIEM.md, \"Severities\"); the others are skipped and count "
         "as delivered.",
         0, INT64_MAX, "emerg|alert|crit|err|warning|notice|info|debug"},
        {"exporters.*.classes", base::KeyType::string, "",
         "Audit records of these event classes only (comma-separated: failure, success, access, manage, keymanage, "
         "usage, first, external, logmanage); empty: all."},
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
         "At shutdown, how long to wait for outstanding acknowledgements.", 0, 600'000},
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

Result<std::unique_ptr<ExportManager>> ExportManager::create(const base::Config& c,
                                                             std::span<const ExporterFactory> factories,
                                                             const ExportContext& ctx) {
    HSMAUDIT_TRY(validate_exporters(c, factories));
    std::unique_ptr<ExportManager> m(new ExportManager());
    m->alerts_ = &ctx.alerts;
    // One ledger of store damage for every destination: one alert per damaged place.
    auto damage = std::make_shared<StoreDamageLedger>(ctx.alerts, ctx.now_ms);
    for (const auto& name : c.instances("exporters")) {
        if (!c.boolean(key(name, "enabled"))) continue;
        const std::string& type = c.str(key(name, "type"));
        const ExporterFactory* f = find_factory(factories, type);
        auto p = parse_common(c, name);
        if (!p) return std::move(p).error();
        const std::string dir = (fs::path(ctx.state_dir) / "export" / name).string();
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
        fs::permissions(dir, fs::perms::owner_all, ec);
        ExporterContext ec_ctx{name, c, dir, ctx.alerts, ctx.agent_status};
        auto exporter = f->create(ec_ctx);
        if (!exporter) return make_error(errc::config_error, "exporters." + name + ": " + exporter.error().describe());
        RunnerOptions o;
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
        o.cursor_path = (fs::path(dir) / "cursor").string();
        auto source = make_store_event_source(StoreSourceOptions{ctx.state_dir, ctx.key, ctx.serial, ctx.host,
                                                                 c.boolean(key(name, "chain_lines")), damage});
        auto runner = ExportRunner::open(std::move(o), std::move(*exporter), std::move(source), ctx.alerts, ctx.now_ms);
        if (!runner) return make_error(errc::io_error, "exporters." + name + ": " + runner.error().describe());
        m->runners_.push_back(Runner{name, type, std::move(*runner)});
    }
    return m;
}

ExportManager::~ExportManager() {
    stop();
}

void ExportManager::start() {
    for (auto& r : runners_) r.runner->start();
}

void ExportManager::stop() {
    // Each runner waits for its outstanding acknowledgements: stop them side by side.
    std::vector<std::jthread> stoppers;
    stoppers.reserve(runners_.size());
    for (auto& r : runners_) {
        // Last resort: an exception stopping one runner is alerted and does not end the agent
        // (an exception escaping a std::thread body calls std::terminate).
        auto stop_one = [this, &r] {
            (void)detail::run_guarded(
                "exporter '" + r.name + "' (stopping)", [&] { r.runner->stop(); }, alerts_);
        };
        try {
            stoppers.emplace_back(stop_one);
        } catch (...) {
            stop_one();  // no thread to be had: stop this one here
        }
    }
}

std::optional<std::uint64_t> ExportManager::min_delivered_seq() const {
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

std::vector<ExportManager::Entry> ExportManager::stats() const {
    std::vector<Entry> out;
    for (const auto& r : runners_)
        out.push_back(
            Entry{r.name, r.type, r.runner->options().streams, r.runner->stats(), &r.runner->delivery_latency()});
    return out;
}

}  // namespace hsmaudit::agent
