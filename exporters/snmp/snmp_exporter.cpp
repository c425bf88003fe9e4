#include "exporters/snmp/snmp_exporter.h"

#include <algorithm>
#include <set>

#include "base/files.h"
#include "exporters/snmp/alert_map.h"
#include "exporters/snmp/errc.h"
#include "exporters/snmp/logger.h"

namespace hsmaudit::exporters::snmp {
namespace {

using base::KeySpec;
using base::KeyType;

constexpr KeySpec kKeys[] = {
    {"exporters.*.snmp.receivers", KeyType::string, "",
     "SNMP: the receivers, comma-separated names; each is configured under "
     "`exporters.<name>.snmp.receiver.<receiver>.*`."},
    {"exporters.*.snmp.receiver.*.address", KeyType::string, "",
     "SNMP receiver: where notifications go, a net-snmp address (`udp:192.0.2.5:162`, `udp6:[2001:db8::5]:162`)."},
    {"exporters.*.snmp.receiver.*.version", KeyType::choice, "v3",
     "SNMP receiver: `v3` (USM authPriv) or `v2c` (community).", 0, INT64_MAX, "v2c|v3"},
    {"exporters.*.snmp.receiver.*.notify", KeyType::choice, "trap",
     "SNMP receiver: `trap` (unacknowledged) or `inform` (acknowledged, retried until answered).", 0, INT64_MAX,
     "trap|inform"},
    {"exporters.*.snmp.receiver.*.community_file", KeyType::string, "",
     "SNMP receiver, v2c: file holding the community (mode 0600; the first line is used)."},
    {"exporters.*.snmp.receiver.*.user", KeyType::string, "", "SNMP receiver, v3: the USM user name."},
    {"exporters.*.snmp.receiver.*.auth", KeyType::choice, "SHA-256",
     "SNMP receiver, v3: authentication protocol (HMAC-SHA-2).", 0, INT64_MAX, "SHA-256|SHA-384|SHA-512"},
    {"exporters.*.snmp.receiver.*.auth_password_file", KeyType::string, "",
     "SNMP receiver, v3: file holding the authentication passphrase (mode 0600, at least 8 characters)."},
    {"exporters.*.snmp.receiver.*.priv", KeyType::choice, "AES",
     "SNMP receiver, v3: privacy protocol (`AES` is AES-128-CFB; AES-192/256 use the Blumenthal key extension).", 0,
     INT64_MAX, "AES|AES-192|AES-256"},
    {"exporters.*.snmp.receiver.*.priv_password_file", KeyType::string, "",
     "SNMP receiver, v3: file holding the privacy passphrase (mode 0600, at least 8 characters)."},
    {"exporters.*.snmp.receiver.*.timeout", KeyType::duration, "1s",
     "SNMP receiver, informs: the response timeout of each transmission.", 10, 60'000},
    {"exporters.*.snmp.receiver.*.retries", KeyType::integer, "2",
     "SNMP receiver, informs: retransmissions before a timeout is counted.", 0, 10},
    {"exporters.*.snmp.receiver.*.retry_interval", KeyType::duration, "5s",
     "SNMP receiver: after a timeout, a refused inform or a failed session, wait this long before trying again.", 100,
     3'600'000},
    {"exporters.*.snmp.enterprise_oid", KeyType::string, "1.3.6.1.4.1.32473.1",
     "SNMP: the HSMAUDIT-MIB module's OID (the vendor's enterprise arc; must match the MIB file the NMS loads)."},
    {"exporters.*.snmp.engine_id", KeyType::string, "",
     "SNMP: the agent's SNMPv3 engine ID in hex (`0x80007ed905...`); empty: generated once and kept in the "
     "exporter's state directory."},
    {"exporters.*.snmp.holddown", KeyType::duration, "60s",
     "SNMP: the hold-down window of a condition: at most `flap_limit` notifications per window, then the latest "
     "state once the window ends.",
     0, 86'400'000},
    {"exporters.*.snmp.flap_limit", KeyType::integer, "2",
     "SNMP: notifications about one condition per hold-down window.", 1, 100},
    {"exporters.*.snmp.rules", KeyType::string, "",
     "SNMP: a YAML rules file mapping syslog lines to notifications (docs/SNMP.md); checked at start."},
    {"exporters.*.snmp.default_rules", KeyType::boolean, "true",
     "SNMP: also apply the built-in rules (appliance sensors and NTLS links), after the file's."},
};

const KeySpec& spec_of(std::string_view leaf) {
    for (const auto& k : kKeys)
        if (k.key.ends_with(leaf)) return k;
    return kKeys[0];
}

// Receiver keys are nested instances (exporters.<n>.snmp.receiver.<r>.<key>); Config fills the
// defaults of the first level only, so the declared default is applied here.
std::string receiver_value(const base::Config& c, const std::string& prefix, std::string_view leaf) {
    const std::string key = prefix + std::string(leaf);
    if (c.has(key)) return c.str(key);
    return std::string(spec_of(".receiver.*." + std::string(leaf)).default_value);
}

Result<std::int64_t> receiver_duration(const base::Config& c, const std::string& prefix, std::string_view leaf) {
    const std::string key = prefix + std::string(leaf);
    if (c.has(key)) return c.integer(key);
    return base::parse_duration_ms(spec_of(".receiver.*." + std::string(leaf)).default_value);
}

Result<std::string> secret_line(const std::string& key, const std::string& path) {
    if (path.empty()) return make_error(errc::credentials, key + " is required");
    auto s = base::read_secret_file(path, 4096);
    if (!s) return make_error(errc::credentials, key + ": " + s.error().describe());
    std::string v = *s;
    if (const auto nl = v.find_first_of("\r\n"); nl != std::string::npos) v.resize(nl);
    if (v.empty()) return make_error(errc::credentials, key + ": " + path + " is empty");
    return v;
}

std::string iso_time(std::int64_t ms) {
    using namespace std::chrono;
    const sys_time<milliseconds> t{milliseconds(ms)};
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    char buf[40];
    (void)std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                        static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

std::string num(double v) {
    return std::to_string(static_cast<long long>(v));
}

// The agent's state in the notifications (HSMAUDIT-MIB), read from the typed status snapshot.
const StatusVarbind kStatusVarbinds[] = {
    {"hsmModuleSerial",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (s.module.serial.empty()) return std::nullopt;
         return s.module.serial;
     }},
    {"hsmModuleBlocked",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.ring) return std::nullopt;
         return std::string(s.ring->blocked ? "1" : "2");
     }},
    {"hsmModuleBootCounter",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (s.module.boot == 0) return std::nullopt;  // not read from the module yet
         return std::to_string(s.module.boot);
     }},
    {"hsmRingUsedRecords",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.ring) return std::nullopt;
         return std::to_string(s.ring->used_records);
     }},
    {"hsmRingFillPercent",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.ring) return std::nullopt;
         return num(std::clamp(s.ring->fill, 0.0, 1.0) * 100);
     }},
    {"hsmRingSecondsToFull",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.ring || s.ring->seconds_to_reserve < 0) return std::string("-1");
         return num(std::min(s.ring->seconds_to_reserve, 2147483647.0));
     }},
    {"hsmDrainPaused",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.drain && !s.retention) return std::nullopt;
         const bool paused = (s.drain && s.drain->acks_paused) || (s.retention && s.retention->acks_paused);
         return std::string(paused ? "1" : "2");
     }},
    {"hsmChainFaults",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.drain) return std::nullopt;
         return std::to_string(s.drain->faults);
     }},
    {"hsmStoreUsed",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.retention) return std::nullopt;
         return std::to_string(s.retention->used_bytes / 1'000'000);
     }},
    {"hsmStoreQuota",
     [](const agent::AgentStatus& s) -> std::optional<std::string> {
         if (!s.retention) return std::nullopt;
         return std::to_string(s.retention->quota_bytes / 1'000'000);
     }},
};

}  // namespace

std::span<const KeySpec> config_keys() {
    return kKeys;
}

std::span<const StatusVarbind> status_varbinds() {
    return kStatusVarbinds;
}

Result<SnmpOptions> options_from_config(const base::Config& c, const std::string& name, const std::string& state_dir) {
    SnmpOptions o;
    o.name = name;
    o.state_dir = state_dir;
    const std::string p = "exporters." + name + ".snmp.";
    auto base = parse_oid(c.str(p + "enterprise_oid"));
    if (!base) return make_error(errc::config_error, p + "enterprise_oid: " + base.error().describe());
    o.base = std::move(*base);
    if (!c.str(p + "engine_id").empty()) {
        auto id = parse_engine_id(c.str(p + "engine_id"));
        if (!id) return make_error(errc::config_error, p + "engine_id: " + id.error().describe());
        o.engine_id = std::move(*id);
    }
    o.holddown = std::chrono::milliseconds(c.integer(p + "holddown"));
    o.flap_limit = static_cast<std::uint32_t>(c.integer(p + "flap_limit"));

    const auto names = base::split_list(c.str(p + "receivers"));
    if (names.empty())
        return make_error(errc::config_error,
                          p + "receivers: name at least one receiver (" + c.origin(p + "receivers") + ")");
    std::set<std::string> seen;
    for (const auto& r : names) {
        if (!base::valid_instance_name(r) || !seen.insert(r).second)
            return make_error(
                errc::config_error,
                std::string(p).append("receivers: '").append(r).append("' is not a valid or unique receiver name"));
        const std::string rp = std::string(p).append("receiver.").append(r).append(".");
        ReceiverConfig rc;
        rc.name = r;
        rc.address = receiver_value(c, rp, "address");
        if (rc.address.empty())
            return make_error(errc::config_error, std::string(rp)
                                                      .append("address is required (receiver '")
                                                      .append(r)
                                                      .append("' is listed in ")
                                                      .append(p)
                                                      .append("receivers)"));
        rc.v3 = receiver_value(c, rp, "version") == "v3";
        rc.inform = receiver_value(c, rp, "notify") == "inform";
        if (rc.v3) {
            rc.user = receiver_value(c, rp, "user");
            if (rc.user.empty()) return make_error(errc::config_error, rp + "user is required for v3");
            rc.auth = receiver_value(c, rp, "auth");
            rc.priv = receiver_value(c, rp, "priv");
            auto a = secret_line(rp + "auth_password_file", receiver_value(c, rp, "auth_password_file"));
            if (!a) return std::move(a).error();
            auto pv = secret_line(rp + "priv_password_file", receiver_value(c, rp, "priv_password_file"));
            if (!pv) return std::move(pv).error();
            rc.auth_password = std::move(*a);
            rc.priv_password = std::move(*pv);
        } else {
            auto cm = secret_line(rp + "community_file", receiver_value(c, rp, "community_file"));
            if (!cm) return std::move(cm).error();
            rc.community = std::move(*cm);
        }
        auto t = receiver_duration(c, rp, "timeout");
        auto ri = receiver_duration(c, rp, "retry_interval");
        if (!t || !ri) return make_error(errc::config_error, rp + ": bad duration");
        rc.timeout = std::chrono::milliseconds(*t);
        rc.retry_interval = std::chrono::milliseconds(*ri);
        rc.retries = c.has(rp + "retries") ? static_cast<int>(c.integer(rp + "retries")) : 2;
        o.receivers.push_back(std::move(rc));
    }
    // v3 trap receivers share our engine ID, and net-snmp keeps one key set per (engine, user).
    for (std::size_t i = 0; i < o.receivers.size(); ++i)
        for (std::size_t j = i + 1; j < o.receivers.size(); ++j) {
            const auto& a = o.receivers[i];
            const auto& b = o.receivers[j];
            if (a.v3 && b.v3 && !a.inform && !b.inform && a.user == b.user &&
                (a.auth != b.auth || a.priv != b.priv || a.auth_password != b.auth_password ||
                 a.priv_password != b.priv_password))
                return make_error(errc::config_error,
                                  p + "receiver." + a.name + " and " + b.name +
                                      ": v3 trap receivers with the same user must use the same protocols and "
                                      "passwords (the user belongs to this agent's engine ID); use another user name");
        }

    RuleSet rules;
    if (const auto& file = c.str(p + "rules"); !file.empty()) {
        auto r = RuleSet::load(file);
        if (!r) return std::move(r).error();
        rules = std::move(*r);
    }
    if (c.boolean(p + "default_rules")) {
        auto d = RuleSet::parse(RuleSet::default_rules_yaml(), "<built-in rules>");
        if (!d) return make_error(errc::internal, d.error().describe());
        HSMAUDIT_TRY(rules.append(*d));
    }
    o.rules = std::move(rules);
    return o;
}

SnmpExporter::SnmpExporter(SnmpOptions options, agent::AgentStatusProvider status, NowMs now_ms,
                           std::unique_ptr<Sender> sender)
    : options_(std::move(options)),
      status_(std::move(status)),
      now_ms_(std::move(now_ms)),
      sender_(std::move(sender)),
      holddown_(options_.holddown, options_.flap_limit) {}

Result<std::unique_ptr<SnmpExporter>> SnmpExporter::create(SnmpOptions options, agent::AgentStatusProvider status,
                                                           NowMs now_ms) {
    if (!now_ms) {
        now_ms = [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    }
    // The enterprise number of the arc names the engine ID's enterprise (RFC 3411).
    std::uint32_t enterprise = 32473;
    if (options.base.size() > 6 && options.base[0] == 1 && options.base[1] == 3 && options.base[2] == 6 &&
        options.base[3] == 1 && options.base[4] == 4 && options.base[5] == 1)
        enterprise = options.base[6];
    auto engine = load_and_boot(options.state_dir, options.engine_id, enterprise);
    if (!engine) return std::move(engine).error();
    // The probe lives in the exporter; the sender keeps a reference to it, so build in two steps.
    std::unique_ptr<SnmpExporter> e(new SnmpExporter(std::move(options), std::move(status), now_ms, nullptr));
    auto sender = Sender::create(e->options_.receivers, std::move(*engine), e->options_.base, e->probe_, now_ms);
    if (!sender) return std::move(sender).error();
    e->sender_ = std::move(*sender);
    std::string peers;
    for (const auto& r : e->sender_->receiver_stats()) {
        if (!peers.empty()) peers += ",";
        peers += r.name + "=" + r.mode + "@" + r.address;
    }
    e->transport_.peer = peers;
    logger().info("snmp exporter {}: engine ID {} boots {}; receivers {}", e->options_.name,
                  e->sender_->engine().engine_id_hex(), e->sender_->engine().boots, peers);
    return e;
}

Status SnmpExporter::connect() {
    connected_ = true;
    tickets_.clear();
    event_ids_.clear();
    acked_ = 0;
    std::lock_guard lock(mutex_);
    ++transport_.connects;
    return {};
}

std::optional<Notification> SnmpExporter::notification_for(const agent::Event& e) const {
    std::optional<Notification> n;
    std::string log;
    std::string process = "hsmauditd";
    std::string peer = "-";
    if (e.stream == agent::Stream::alerts) {
        n = map_alert(e.alert);
        log = "alerts.jsonl:" + std::to_string(e.position);
    } else if (e.stream == agent::Stream::syslog) {
        n = options_.rules.apply(e.syslog);
        log = "syslog:" + std::to_string(e.position);
        process = e.syslog.app.empty() ? "-" : e.syslog.app;
        if (!e.syslog.procid.empty()) process += "[" + e.syslog.procid + "]";
        if (!e.syslog.peer.empty()) peer = e.syslog.peer;
    }
    if (!n || n->def == nullptr) return std::nullopt;
    if (n->time_ms == 0) n->time_ms = e.time_ms;
    n->event_id = e.event_id;
    const std::string host = e.host.empty() ? (e.syslog.host.empty() ? "-" : e.syslog.host) : e.host;
    const char* assert_word = n->action == Action::clear ? "deassert" : n->action == Action::raise ? "assert" : "event";
    n->set("hsmNotifyCondition", n->condition);
    n->set("hsmNotifySeverity", std::to_string(static_cast<int>(n->severity)));
    n->set("hsmNotifyEventId", e.event_id);
    n->set("hsmNotifyLogReference", "[" + host + ":" + peer + " / " + log + " / " + iso_time(n->time_ms) + " / " +
                                        process + " / " + assert_word + "]");
    if (n->get("hsmNotifyHost").empty()) n->set("hsmNotifyHost", host);
    if (!n->values.contains("hsmNotifySuppressed")) n->set("hsmNotifySuppressed", "0");

    // State from the agent's latest status snapshot; the event's own serial comes first.
    const std::shared_ptr<const agent::AgentStatus> st = status_ ? status_() : nullptr;
    if (st)
        for (const auto& v : kStatusVarbinds)
            if (auto value = v.value(*st)) n->set(v.object, std::move(*value));
    if (!e.serial.empty()) n->set("hsmModuleSerial", e.serial);
    if (!n->values.contains("hsmModuleSerial")) n->set("hsmModuleSerial", "");
    if (!n->values.contains("hsmRingSecondsToFull")) n->set("hsmRingSecondsToFull", "-1");
    // The alert itself is newer than the snapshot.
    if (e.stream == agent::Stream::alerts && e.alert.kind == "module.blocked") n->set("hsmModuleBlocked", "1");
    if (e.stream == agent::Stream::alerts && e.alert.kind == "module.resumed") n->set("hsmModuleBlocked", "2");
    return n;
}

void SnmpExporter::flush_holddown() {
    for (auto& n : holddown_.due(now_ms_())) {
        Probe::add(probe_.holddown_syncs);
        (void)sender_->submit(n);
    }
}

Status SnmpExporter::send(std::span<const agent::Event> events) {
    if (!connected_) return make_error(errc::send_failed, options_.name + ": not connected");
    flush_holddown();
    for (const auto& e : events) {
        Probe::add(probe_.events);
        std::optional<Notification> decision;
        auto cached = e.event_id.empty() ? decided_.end() : decided_.find(e.event_id);
        if (cached != decided_.end()) {
            decision = cached->second;
        } else {
            auto n = notification_for(e);
            if (!n) {
                Probe::add(probe_.unmatched);
            } else {
                Probe::add(probe_.notifications);
                switch (holddown_.offer(*n, now_ms_())) {
                    case HoldDown::Verdict::send: decision = std::move(n); break;
                    case HoldDown::Verdict::duplicate: Probe::add(probe_.deduplicated); break;
                    case HoldDown::Verdict::held: Probe::add(probe_.held_down); break;
                }
            }
            if (!e.event_id.empty()) decided_.emplace(e.event_id, decision);
        }
        tickets_.push_back(decision ? std::optional<std::uint64_t>(sender_->submit(*decision)) : std::nullopt);
        event_ids_.push_back(e.event_id);
    }
    return {};
}

Result<std::uint64_t> SnmpExporter::acknowledged(std::chrono::milliseconds wait) {
    if (!connected_) return make_error(errc::send_failed, options_.name + ": not connected");
    flush_holddown();
    auto prefix_done = [&] {
        while (acked_ < tickets_.size()) {
            const auto& t = tickets_[acked_];
            if (t && !sender_->complete(*t)) return false;
            if (!event_ids_[acked_].empty()) decided_.erase(event_ids_[acked_]);
            ++acked_;
        }
        return true;
    };
    if (!prefix_done() || sender_->outstanding() > 0) {
        sender_->pump(wait);
        (void)prefix_done();
    }
    return acked_;
}

void SnmpExporter::disconnect() {
    sender_->reset();
    connected_ = false;
    tickets_.clear();
    event_ids_.clear();
    acked_ = 0;
}

agent::TransportStats SnmpExporter::stats() const {
    std::lock_guard lock(mutex_);
    agent::TransportStats s = transport_;
    const auto p = probe_.snapshot();
    s.connect_failures = p.session_failures;
    s.counters = {{"notifications", p.notifications},
                  {"deduplicated", p.deduplicated},
                  {"held_down", p.held_down},
                  {"holddown_syncs", p.holddown_syncs},
                  {"traps_sent", p.traps_sent},
                  {"informs_sent", p.informs_sent},
                  {"informs_acked", p.informs_acked},
                  {"inform_timeouts", p.inform_timeouts},
                  {"inform_reports", p.inform_reports},
                  {"send_errors", p.send_errors},
                  {"unmatched", p.unmatched}};
    return s;
}

agent::ExporterFactory factory() {
    return {
        "snmp",
        &config_keys,
        [](const agent::ExporterContext& ctx) -> Result<std::unique_ptr<agent::Exporter>> {
            auto o = options_from_config(ctx.config, ctx.name, ctx.state_dir);
            if (!o) return std::move(o).error();
            auto e = SnmpExporter::create(std::move(*o), ctx.agent_status, nullptr);
            if (!e) return std::move(e).error();
            return std::unique_ptr<agent::Exporter>(std::move(*e));
        },
        [](const base::Config& config, std::string_view name) -> std::string {
            // The first receiver's address (remote syslog and audit must not share a host:port).
            const std::string p = "exporters." + std::string(name) + ".snmp.";
            const auto names = base::split_list(config.str(p + "receivers"));
            if (names.empty()) return {};
            return receiver_value(config, p + "receiver." + names.front() + ".", "address");
        },
        // The check (--check-config): the options and the receivers as create() prepares them, without
        // the engine state file create() increments (snmpEngineBoots) and without a session.
        [](const agent::ExporterContext& ctx) -> Status {
            auto o = options_from_config(ctx.config, ctx.name, ctx.state_dir);
            if (!o) return std::move(o).error();
            Probe probe;
            auto sender =
                Sender::create(std::move(o->receivers), EngineState{}, o->base, probe, [] { return std::int64_t{0}; });
            if (!sender)
                return Error{sender.error().code,
                             "exporters." + ctx.name + ".snmp.receivers: " + sender.error().message};
            return {};
        },
    };
}

}  // namespace hsmaudit::exporters::snmp
