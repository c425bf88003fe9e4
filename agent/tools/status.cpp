#include "agent/tools/status.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/api/errc.h"
#include "base/files.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxStatusBytes = 4 << 20;
constexpr std::int64_t kIntervalsBeforeStale = 3;

// Reads of the durable alert log's lines, which may be anything: never throw.
const json* member(const json& j, const char* key) {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}
std::string get_str(const json& j, const char* key) {
    const json* v = member(j, key);
    return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

std::optional<StatusAlert> alert_of(const json& j) {
    if (!j.is_object() || get_str(j, "kind").empty()) return std::nullopt;
    return StatusAlert{get_str(j, "time"), get_str(j, "kind"), get_str(j, "severity"), get_str(j, "message")};
}

std::string percent(double ratio) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%.1f%%", ratio * 100);
    return buf;
}

std::string seconds(double s) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
    return buf;
}

std::string human_bytes(std::uint64_t n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

}  // namespace

Result<StatusSample> read_status_file(const std::string& state_dir) {
    const std::string path = (fs::path(state_dir) / "status.json").string();
    std::error_code ec;
    if (!fs::exists(path, ec))
        return make_error(errc::io_error, "no agent status in " + state_dir + ": " + path +
                                              " does not exist (has hsmauditd ever run with this state directory?)");
    auto text = base::read_file(path, kMaxStatusBytes);
    if (!text) return std::move(text).error();
    const json doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return make_error(errc::io_error, path + " is not a JSON object (damaged, or not written by hsmauditd)");
    StatusSample s;
    try {
        doc.get_to(s.status);
    } catch (const AgentStatusError& e) {
        return make_error(errc::io_error, path + " is not a status report this program can read: " + e.what());
    }
    s.time_ms = s.status.time_ms;
    return s;
}

std::vector<StatusAlert> read_recent_alerts(const std::string& state_dir, std::size_t max) {
    const fs::path path = fs::path(state_dir) / "alerts" / "alerts.jsonl";
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    // Only the end of the file matters; it may be large after a long run.
    constexpr std::streamoff kTail = std::streamoff{256} * 1024;
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    const bool skip_first = size > kTail;
    in.seekg(skip_first ? size - kTail : 0);
    std::deque<StatusAlert> out;
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (std::exchange(first, false) && skip_first) continue;  // probably a partial line
        auto j = json::parse(line, nullptr, false);
        if (j.is_discarded()) continue;
        if (auto a = alert_of(j)) {
            out.push_back(std::move(*a));
            if (out.size() > max) out.pop_front();
        }
    }
    return {out.begin(), out.end()};
}

bool pid_alive(std::int64_t pid) {
    if (pid <= 0) return false;
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

StatusReport make_status_report(const std::string& state_dir, const StatusSample& first,
                                const std::optional<StatusSample>& second, std::int64_t now_ms,
                                std::int64_t status_interval_ms, bool pid_is_alive,
                                std::vector<StatusAlert> durable_alerts) {
    const StatusSample& s = second ? *second : first;
    const AgentStatus& st = s.status;
    StatusReport r;
    r.state_dir = state_dir;
    r.status_time = format_status_time(st.time_ms);
    r.age_ms = now_ms - s.time_ms;
    r.pid = st.pid;
    r.started = st.started_ms != 0 ? format_status_time(st.started_ms) : std::string();
    const std::int64_t stale_after = kIntervalsBeforeStale * status_interval_ms;
    if (!pid_is_alive) {
        r.not_running_reason = "process " + std::to_string(r.pid) + " (the agent that wrote status.json) is not alive";
    } else if (r.age_ms > stale_after) {
        r.not_running_reason = "status.json was last written " + seconds(static_cast<double>(r.age_ms) / 1000) +
                               " ago; a running agent rewrites it every " +
                               seconds(static_cast<double>(status_interval_ms) / 1000);
    }
    r.running = r.not_running_reason.empty();
    // Judged at the snapshot's own time: the file's age is the staleness check above.
    if (r.running) r.problems = assess_problems(st, st.time_ms);

    r.module_serial = st.module.serial;
    r.module_state = st.module.state;
    r.module_boot = st.module.boot;
    if (st.ring) {
        r.has_ring = true;
        r.ring_used_records = st.ring->used_records;
        r.ring_capacity_bytes = st.ring->capacity_bytes;
        r.ring_fill = st.ring->fill;
        r.ring_fill_peak = st.ring->fill_peak;
        if (st.ring->seconds_to_reserve >= 0) r.seconds_to_reserve = st.ring->seconds_to_reserve;
        r.module_blocked = st.ring->blocked;
    }
    if (st.drain) {
        r.has_drain = true;
        r.records = st.drain->records;
        r.last_seq = st.drain->last_seq;
        r.acked_entry_no = st.drain->acked_entry_no;
        r.faults = st.drain->faults;
    }
    if (!r.running) {
        r.rate_note = "not measured: the agent is not running";
    } else if (!second) {
        r.rate_note = "not measured: the agent did not rewrite status.json while we waited";
    } else {
        const std::uint64_t before = first.status.drain ? first.status.drain->records : 0;
        const std::int64_t dt = second->time_ms - first.time_ms;
        if (dt <= 0 || r.records < before || first.status.pid != r.pid) {
            r.rate_note = "not measured: the agent restarted between the two reads";
        } else {
            r.records_per_s = static_cast<double>(r.records - before) * 1000.0 / static_cast<double>(dt);
            r.rate_note = "measured over " + seconds(static_cast<double>(dt) / 1000) + " between two status reports";
        }
    }
    if (st.store) {
        r.has_store = true;
        r.store_dir = st.store->dir;
        r.store_bytes = st.store->bytes;
        r.sealed_segments = st.store->sealed_segments;
        r.open_segment = st.store->open_segment;
        r.open_segment_bytes = st.store->open_segment_bytes;
        r.encrypted = st.store->encrypted;
    }
    r.exporters = st.exporters;
    r.alert_counts.insert(st.alerts.counts.begin(), st.alerts.counts.end());
    for (const auto& a : st.alerts.recent)
        if (!a.kind.empty())
            r.recent_alerts.push_back(StatusAlert{a.time_ms != 0 ? format_status_time(a.time_ms) : std::string(),
                                                  a.kind, a.severity, a.message});
    // The durable alert log also holds alerts of earlier runs; prefer it when it has any.
    if (!durable_alerts.empty()) r.recent_alerts = std::move(durable_alerts);
    return r;
}

int status_exit_code(const StatusReport& r) {
    if (!r.running) return kStatusNotRunning;
    return r.problems.empty() ? kStatusHealthy : kStatusUnhealthy;
}

std::string render_status_text(const StatusReport& r) {
    std::ostringstream o;
    o << "state        " << r.state_dir << " (status written " << r.status_time << ", "
      << seconds(static_cast<double>(r.age_ms) / 1000) << " ago)\n";
    if (r.running)
        o << "agent        running (pid " << r.pid << ", started " << r.started << ")\n";
    else
        o << "agent        NOT RUNNING: " << r.not_running_reason << ". The figures below are its last report.\n";
    if (r.running && r.problems.empty()) o << "health       ok\n";
    for (const auto& p : r.problems)
        o << (&p == &r.problems.front() ? "health       UNHEALTHY: " : "             ") << p << "\n";
    if (!r.module_serial.empty() || r.module_boot != 0) {
        o << "module       " << (r.module_serial.empty() ? std::string("(serial not known)") : r.module_serial);
        if (r.module_boot != 0) o << ", boot " << r.module_boot;
        o << ", " << r.module_state << "\n";
    }
    if (r.has_ring) {
        o << "ring         " << percent(r.ring_fill) << " full (peak " << percent(r.ring_fill_peak) << "), "
          << r.ring_used_records << " record" << (r.ring_used_records == 1 ? "" : "s")
          << " not yet acknowledged; reserve ";
        if (r.seconds_to_reserve)
            o << "predicted in " << seconds(*r.seconds_to_reserve);
        else
            o << "not approaching (the ring is not filling)";
        if (r.module_blocked) o << "; MODULE BLOCKED (crypto refused until the ring drains)";
        o << "\n";
    } else {
        o << "ring         no report (the drain had not started)\n";
    }
    if (r.has_drain) {
        o << "drain        ";
        if (r.records_per_s) {
            char buf[64];
            (void)std::snprintf(buf, sizeof buf, "%.0f records/s", *r.records_per_s);
            o << buf << " (" << r.rate_note << ")";
        } else {
            o << "rate " << r.rate_note;
        }
        o << "\n             " << r.records << " records stored since start, last seq " << r.last_seq
          << ", acknowledged through entry " << r.acked_entry_no << "\n";
    }
    if (r.has_store) {
        o << "store        " << human_bytes(r.store_bytes) << " in " << r.store_dir
          << (r.encrypted ? " (encrypted at rest)" : " (plain text at rest)") << "\n             " << r.sealed_segments
          << " sealed segment" << (r.sealed_segments == 1 ? "" : "s") << " in ready_for_archive/, open segment ";
        if (r.open_segment.empty())
            o << "none";
        else
            o << r.open_segment << " (" << human_bytes(r.open_segment_bytes) << ")";
        o << "\n";
    }
    if (r.exporters.empty())
        o << "exporters    none configured: the local store is the only copy (nothing is deleted by retention)\n";
    for (const auto& e : r.exporters) {
        o << "exporter     " << e.name << " (" << e.type << ") " << e.state;
        if (!e.peer.empty()) o << " " << e.peer;
        o << ", lag " << e.lag_records << " events";
        if (e.lag_seconds > 0) o << " (" << seconds(e.lag_seconds) << " behind)";
        o << ", " << e.failures << " failure" << (e.failures == 1 ? "" : "s");
        if (!e.last_error.empty()) o << "; last error: " << e.last_error;
        o << "\n";
    }
    o << "verification " << (r.has_drain ? std::to_string(r.faults) : std::string("?")) << " fault"
      << (r.faults == 1 ? "" : "s") << " found by online verification since the agent started"
      << (r.faults == 0 ? "" : " (see the alerts; run 'hsmaudit verify')") << "\n";
    std::uint64_t total = 0;
    for (const auto& [k, v] : r.alert_counts) total += v;
    o << "alerts       " << total << " since the agent started";
    for (const auto& [k, v] : r.alert_counts) o << (k == r.alert_counts.begin()->first ? ": " : ", ") << k << " " << v;
    o << "\n";
    if (!r.recent_alerts.empty()) {
        o << "recent alerts (newest last):\n";
        for (const auto& a : r.recent_alerts)
            o << "  " << a.time << " " << a.severity << " " << a.kind << ": " << a.message << "\n";
    }
    return o.str();
}

nlohmann::json render_status_json(const StatusReport& r) {
    json j;
    j["state_dir"] = r.state_dir;
    j["status_time"] = r.status_time;
    j["status_age_s"] = static_cast<double>(r.age_ms) / 1000;
    j["agent"] = {{"running", r.running}, {"pid", r.pid}, {"started", r.started}};
    if (!r.running) j["agent"]["not_running_reason"] = r.not_running_reason;
    j["health"] = {{"state", !r.running           ? "not_running"
                             : r.problems.empty() ? "healthy"
                                                  : "unhealthy"},
                   {"exit_code", status_exit_code(r)},
                   {"problems", r.problems}};
    j["module"] = {{"serial", r.module_serial}, {"state", r.module_state}, {"boot", r.module_boot}};
    if (r.has_ring)
        j["ring"] = {{"used_records", r.ring_used_records},
                     {"capacity_bytes", r.ring_capacity_bytes},
                     {"fill", r.ring_fill},
                     {"fill_peak", r.ring_fill_peak},
                     {"seconds_to_reserve", r.seconds_to_reserve ? json(*r.seconds_to_reserve) : json(nullptr)},
                     {"blocked", r.module_blocked}};
    if (r.has_drain)
        j["drain"] = {{"records", r.records},
                      {"records_per_s", r.records_per_s ? json(*r.records_per_s) : json(nullptr)},
                      {"rate_note", r.rate_note},
                      {"last_seq", r.last_seq},
                      {"acked_entry_no", r.acked_entry_no}};
    if (r.has_store)
        j["store"] = {{"dir", r.store_dir},
                      {"bytes", r.store_bytes},
                      {"sealed_segments", r.sealed_segments},
                      {"open_segment", r.open_segment.empty() ? json(nullptr) : json(r.open_segment)},
                      {"open_segment_bytes", r.open_segment_bytes},
                      {"encrypted", r.encrypted}};
    j["exporters"] = r.exporters;
    j["verification"] = {{"faults", r.faults}};
    json counts = json::object();
    for (const auto& [k, v] : r.alert_counts) counts[k] = v;
    json recent = json::array();
    for (const auto& a : r.recent_alerts)
        recent.push_back({{"time", a.time}, {"kind", a.kind}, {"severity", a.severity}, {"message", a.message}});
    j["alerts"] = {{"counts", counts}, {"recent", recent}};
    return j;
}

}  // namespace hsmaudit::agent::tools
