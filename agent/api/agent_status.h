// AgentStatus: what the agent reports about itself, as one typed value. hsmauditd's Service builds
// it once per status tick from its components' stats and publishes it as an immutable snapshot
// (std::shared_ptr<const AgentStatus>); every reader takes that snapshot: <state>/status.json
// (written from it with to_json), `hsmaudit status` (which reads status.json back with from_json),
// and the exporters that report state (SNMP varbinds, through AgentStatusProvider).
//
// The JSON form (status.json, docs/ARCHITECTURE.md "status.json") carries "schema"
// (kAgentStatusSchema). Reading is lenient about what is missing and strict about what is wrong:
// a field or section that is absent keeps its default (an agent that did not have it), a field
// of the wrong type, a missing "schema", "time" or "pid", or a newer schema throws
// AgentStatusError naming the field ("ring.used_records: expected an unsigned integer, found
// string"). Unknown fields are ignored.
//
// Thread-safety: a value type. A published snapshot is immutable and may be read from any thread
// for as long as the reader holds its shared_ptr; AgentStatusProvider is callable from any thread.
// Depends only on the standard library and nlohmann_json (header-only interface).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace hsmaudit::agent {

/// The version of status.json's shape. Bump it when a field changes meaning or type (adding a
/// field does not need a bump: readers ignore what they do not know).
inline constexpr int kAgentStatusSchema = 1;

/// A status.json that is damaged or foreign; what() names the field that is wrong.
class AgentStatusError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The module whose ring the agent drains, as the drain's last status read saw it.
struct ModuleStatus {
    std::string serial;
    std::string mode;               // "embedded" | "served" (module.mode)
    std::string state = "unknown";  // "running" | "blocked" | "unknown" (not read yet)
    std::uint32_t boot = 0;         // the module's boot counter (0: not read yet)
    // The module's own counters (HSMAUDIT-MIB hsmModuleOperationRequests...).
    std::uint64_t operation_requests = 0;
    std::uint64_t operation_errors = 0;
    std::uint64_t crypto_requests = 0;
    std::uint64_t crypto_errors = 0;
    std::uint64_t critical_events = 0;
    std::uint64_t noncritical_events = 0;
    std::uint64_t refused_log_full = 0;  // operations refused at the reserve
    bool operator==(const ModuleStatus&) const = default;
};

/// The module's audit ring.
struct RingStatus {
    double fill = 0;                 // 0..1, at the drain's last status read
    double fill_peak = 0;            // since the agent started
    double seconds_to_reserve = -1;  // predicted; -1 when the ring is not filling
    bool blocked = false;            // the module refuses crypto until the ring drains
    std::uint64_t capacity_bytes = 0;
    std::uint64_t reserve_bytes = 0;  // the module blocks when less than this is free
    std::uint64_t used_bytes = 0;
    std::uint64_t used_records = 0;  // audit records not yet acknowledged (hsmRingUsedRecords)
    std::uint64_t used_entries = 0;  // records, segment opens and seals not yet acknowledged
    double fill_critical = 0;        // alerts.ring_fill_critical (0: not reported, an older agent)
    bool operator==(const RingStatus&) const = default;
};

/// The drain (read, store, verify online, acknowledge).
struct DrainStatus {
    std::uint64_t entries = 0;
    std::uint64_t records = 0;  // stored since the agent started
    std::uint64_t seals = 0;
    std::uint64_t commits = 0;
    std::uint64_t faults = 0;  // online verification faults since start (hsmChainFaults)
    std::uint64_t acked_entry_no = 0;
    std::uint64_t last_seq = 0;
    std::optional<double> records_per_s;  // between the last two snapshots (nullopt: not measured)
    std::int64_t last_ack_ms = 0;         // when acked_entry_no last advanced ("last_ack"; 0: not yet)
    bool failing = false;                 // the last step failed; retrying with back-off
    bool acks_paused = false;             // retention's fail-safe brake (hsmDrainPaused)
    std::uint64_t step_failures = 0;
    std::uint64_t store_reopens = 0;
    std::int64_t last_step_ms = 0;  // when the drain last completed a step or a retry ("last_step"; liveness)
    bool operator==(const DrainStatus&) const = default;
};

/// The local store of the audit trail (read from its committed position file and directories).
struct StoreStatus {
    std::string dir;
    std::uint64_t durable_entry_no = 0;
    std::string open_segment;  // "" if none
    std::uint64_t open_segment_bytes = 0;
    std::uint64_t sealed_segments = 0;  // waiting in ready_for_archive/
    std::uint64_t bytes = 0;            // current/ and ready_for_archive/
    bool encrypted = false;
    bool operator==(const StoreStatus&) const = default;
};

struct ArchiveStatus {
    std::uint64_t runs = 0;
    std::uint64_t failures = 0;
    std::uint64_t archives_written = 0;
    std::uint64_t segments_archived = 0;
    std::uint64_t duplicates_removed = 0;
    std::uint64_t consecutive_failures = 0;
    bool stopped = false;
    std::string last_archive;
    std::string last_error;
    bool operator==(const ArchiveStatus&) const = default;
};

/// The export area's quota (hsmStoreUsed, hsmStoreQuota, hsmStoreQuotaLevel).
struct RetentionStatus {
    std::uint64_t used_bytes = 0;
    std::uint64_t protected_bytes = 0;
    std::uint64_t quota_bytes = 0;
    std::string level = "ok";  // "ok" | "warning" | "full"
    bool acks_paused = false;
    std::uint64_t archives_deleted = 0;
    bool disk_full = false;
    std::uint64_t failures = 0;
    bool stopped = false;
    std::string last_error;
    bool exporters = false;  // deletion waits for the destinations' delivery
    bool operator==(const RetentionStatus&) const = default;
};

/// The appliance's syslog intake and its spool.
struct SyslogStatus {
    std::uint64_t received = 0;
    std::uint64_t malformed = 0;
    std::uint64_t oversized = 0;
    std::uint64_t dropped_by_kernel = 0;
    std::uint64_t framing_errors = 0;
    std::uint64_t read_errors = 0;
    struct Spool {
        std::uint64_t spooled = 0;
        std::uint64_t dropped_queue_full = 0;
        std::uint64_t segments_deleted = 0;  // "spool_segments_deleted"
        std::uint64_t write_errors = 0;      // "spool_write_errors"
        bool operator==(const Spool&) const = default;
    };
    std::optional<Spool> spool;  // its fields sit in the syslog object
    bool operator==(const SyslogStatus&) const = default;
};

/// One export destination (exporters.<name>).
struct ExporterStatus {
    std::string name;
    std::string type;
    std::string state;  // "starting" | "up" | "down" | "stopped" (hsmExporterState)
    std::string peer;
    std::map<std::string, std::uint64_t> cursor;     // delivered through, per stream
    std::map<std::string, std::uint64_t> delivered;  // acknowledged since start, per stream
    std::uint64_t filtered = 0;
    std::uint64_t sent = 0;
    std::uint64_t resent = 0;
    std::uint64_t failures = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t lag_records = 0;
    double lag_seconds = 0;
    std::string last_error;
    std::uint64_t cursor_write_failures = 0;
    std::string cursor_error;
    bool store_held = false;
    std::string store_error;
    std::uint64_t store_damaged_places = 0;
    std::uint64_t store_skipped_records = 0;
    bool operator==(const ExporterStatus&) const = default;
};

/// Signed chain-head checkpoints (kept in <state>/checkpoints).
struct CheckpointStatus {
    std::uint64_t taken = 0;           // taken and kept (once the store held the records they name)
    std::uint64_t store_failures = 0;  // checkpoints that could not be appended
    bool operator==(const CheckpointStatus&) const = default;
};

struct WorkloadStatus {
    std::uint64_t ops = 0;
    std::uint64_t refused = 0;
    std::uint64_t errors = 0;
    bool operator==(const WorkloadStatus&) const = default;
};

struct StatusFileStatus {
    std::uint64_t writes = 0;
    std::uint64_t failures = 0;
    std::uint64_t consecutive_failures = 0;
    std::string last_error;
    bool operator==(const StatusFileStatus&) const = default;
};

struct RecentAlert {
    std::int64_t time_ms = 0;
    std::string kind;
    std::string severity;
    std::string message;
    bool operator==(const RecentAlert&) const = default;
};

struct AlertsStatus {
    std::map<std::string, std::uint64_t> counts;  // this run of the agent, by kind
    std::vector<RecentAlert> recent;              // newest last
    bool operator==(const AlertsStatus&) const = default;
};

/// The whole report. Sections are optional where the component may not exist (before start, or
/// not configured). Thread-safety: a plain value; the Service publishes it as
/// shared_ptr<const AgentStatus>, which any thread may read without a lock while it holds it.
struct AgentStatus {
    int schema = kAgentStatusSchema;
    std::int64_t time_ms = 0;  // when the snapshot was built ("time")
    std::string version;       // hsmauditd's version
    std::int64_t pid = 0;
    std::int64_t started_ms = 0;  // "started"
    std::string state_dir;
    std::string error;  // non-empty: the snapshot could not be gathered (what failed)
    ModuleStatus module;
    std::optional<RingStatus> ring;  // nullopt before the drain exists
    std::optional<DrainStatus> drain;
    std::optional<StoreStatus> store;
    std::optional<ArchiveStatus> archive;
    std::optional<RetentionStatus> retention;
    AlertsStatus alerts;
    std::optional<SyslogStatus> syslog;
    std::vector<ExporterStatus> exporters;
    CheckpointStatus checkpoint;
    std::optional<WorkloadStatus> workload;
    StatusFileStatus status_file;
    bool operator==(const AgentStatus&) const = default;
};

/// How a component reads the agent's latest snapshot: callable from any thread; returns nullptr
/// before the first snapshot (or in tests that have none).
using AgentStatusProvider = std::function<std::shared_ptr<const AgentStatus>()>;

namespace status_detail {

using nlohmann::json;

/// "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), as the agent writes every time.
inline std::string format_time(std::int64_t ms) {
    using namespace std::chrono;
    const sys_time<milliseconds> t{milliseconds(ms)};
    const auto d = floor<days>(t);
    const year_month_day ymd{d};
    const hh_mm_ss hms{t - d};
    char buf[48];
    (void)std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                        static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

/// The inverse of format_time; nullopt if `t` is not in that form.
inline std::optional<std::int64_t> parse_time(std::string_view t) {
    using namespace std::chrono;
    if (t.size() != 24 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != '.' ||
        t[23] != 'Z')
        return std::nullopt;
    int v[7] = {};
    const std::size_t pos[7] = {0, 5, 8, 11, 14, 17, 20};
    const std::size_t len[7] = {4, 2, 2, 2, 2, 2, 3};
    for (int f = 0; f < 7; ++f)
        for (std::size_t i = pos[f]; i < pos[f] + len[f]; ++i) {
            if (t[i] < '0' || t[i] > '9') return std::nullopt;
            v[f] = v[f] * 10 + (t[i] - '0');
        }
    const year_month_day ymd{year{v[0]}, month{static_cast<unsigned>(v[1])}, day{static_cast<unsigned>(v[2])}};
    if (!ymd.ok() || v[3] > 23 || v[4] > 59 || v[5] > 59) return std::nullopt;
    return static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count()) * 86'400'000 + v[3] * 3'600'000LL +
           v[4] * 60'000LL + v[5] * 1000LL + v[6];
}

inline const char* type_name(const json& j) {
    if (j.is_number_unsigned()) return "an unsigned integer";
    if (j.is_number_integer()) return "an integer";
    return j.type_name();
}

/// Reads the fields of one JSON object; errors name the field by its path ("ring.fill").
class Reader {
public:
    Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
        if (!j_.is_object()) fail("", "an object", j_);
    }

    [[nodiscard]] std::string at(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }
    [[noreturn]] void fail(std::string_view key, const char* expected, const json& got) const {
        const std::string where = key.empty() ? (path_.empty() ? std::string("the document") : path_) : at(key);
        throw AgentStatusError(where + ": expected " + expected + ", found " + type_name(got));
    }
    /// The member `key`, or nullptr when absent or null (the field keeps its default).
    [[nodiscard]] const json* find(const char* key) const {
        auto it = j_.find(key);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }

    void get(const char* key, std::uint64_t& out) const {
        if (const json* v = find(key)) {
            if (!v->is_number_unsigned()) fail(key, "an unsigned integer", *v);
            out = v->get<std::uint64_t>();
        }
    }
    void get(const char* key, std::uint32_t& out) const {
        std::uint64_t v = out;
        get(key, v);
        if (v > UINT32_MAX) throw AgentStatusError(at(key) + ": " + std::to_string(v) + " is out of range");
        out = static_cast<std::uint32_t>(v);
    }
    void get(const char* key, std::int64_t& out) const {
        if (const json* v = find(key)) {
            if (!v->is_number_integer()) fail(key, "an integer", *v);
            out = v->get<std::int64_t>();
        }
    }
    void get(const char* key, int& out) const {
        std::int64_t v = out;
        get(key, v);
        if (v < INT32_MIN || v > INT32_MAX)
            throw AgentStatusError(at(key) + ": " + std::to_string(v) + " is out of range");
        out = static_cast<int>(v);
    }
    void get(const char* key, double& out) const {
        if (const json* v = find(key)) {
            if (!v->is_number()) fail(key, "a number", *v);
            out = v->get<double>();
        }
    }
    void get(const char* key, std::optional<double>& out) const {
        if (const json* v = find(key)) {
            if (!v->is_number()) fail(key, "a number or null", *v);
            out = v->get<double>();
        } else {
            out.reset();
        }
    }
    void get(const char* key, bool& out) const {
        if (const json* v = find(key)) {
            if (!v->is_boolean()) fail(key, "true or false", *v);
            out = v->get<bool>();
        }
    }
    void get(const char* key, std::string& out) const {
        if (const json* v = find(key)) {
            if (!v->is_string()) fail(key, "a string", *v);
            out = v->get<std::string>();
        }
    }
    void time(const char* key, std::int64_t& out) const {
        std::string text;
        get(key, text);
        if (text.empty()) return;
        const auto t = parse_time(text);
        if (!t) throw AgentStatusError(at(key) + ": '" + text + "' is not a time (YYYY-MM-DDTHH:MM:SS.mmmZ)");
        out = *t;
    }
    void get(const char* key, std::map<std::string, std::uint64_t>& out) const {
        const json* v = find(key);
        if (v == nullptr) return;
        Reader sub(*v, at(key));
        out.clear();
        for (const auto& [k, n] : v->items()) {
            std::uint64_t x = 0;
            sub.get(k.c_str(), x);
            out[k] = x;
        }
    }
    /// A nested object read by `read(Reader&, T&)`.
    template <class T>
    void object(const char* key, T& out) const {
        if (const json* v = find(key)) read(Reader(*v, at(key)), out);
    }
    template <class T>
    void object(const char* key, std::optional<T>& out) const {
        if (const json* v = find(key)) {
            T t;
            read(Reader(*v, at(key)), t);
            out = std::move(t);
        } else {
            out.reset();
        }
    }
    template <class T>
    void array(const char* key, std::vector<T>& out) const {
        const json* v = find(key);
        if (v == nullptr) return;
        if (!v->is_array()) fail(key, "an array", *v);
        out.clear();
        for (std::size_t i = 0; i < v->size(); ++i) {
            T t;
            read(Reader((*v)[i], at(key) + "[" + std::to_string(i) + "]"), t);
            out.push_back(std::move(t));
        }
    }

    [[nodiscard]] const json& doc() const { return j_; }

private:
    const json& j_;
    std::string path_;
};

inline void read(const Reader& r, ModuleStatus& m) {
    r.get("serial", m.serial);
    r.get("mode", m.mode);
    r.get("state", m.state);
    r.get("boot", m.boot);
    r.get("operation_requests", m.operation_requests);
    r.get("operation_errors", m.operation_errors);
    r.get("crypto_requests", m.crypto_requests);
    r.get("crypto_errors", m.crypto_errors);
    r.get("critical_events", m.critical_events);
    r.get("noncritical_events", m.noncritical_events);
    r.get("refused_log_full", m.refused_log_full);
}
inline void read(const Reader& r, RingStatus& s) {
    r.get("fill", s.fill);
    r.get("fill_peak", s.fill_peak);
    r.get("seconds_to_reserve", s.seconds_to_reserve);
    r.get("blocked", s.blocked);
    r.get("capacity_bytes", s.capacity_bytes);
    r.get("reserve_bytes", s.reserve_bytes);
    r.get("used_bytes", s.used_bytes);
    r.get("used_records", s.used_records);
    r.get("used_entries", s.used_entries);
    r.get("fill_critical", s.fill_critical);
}
inline void read(const Reader& r, DrainStatus& d) {
    r.get("entries", d.entries);
    r.get("records", d.records);
    r.get("seals", d.seals);
    r.get("commits", d.commits);
    r.get("faults", d.faults);
    r.get("acked_entry_no", d.acked_entry_no);
    r.get("last_seq", d.last_seq);
    r.get("records_per_s", d.records_per_s);
    r.time("last_ack", d.last_ack_ms);
    r.get("failing", d.failing);
    r.get("acks_paused", d.acks_paused);
    r.get("step_failures", d.step_failures);
    r.get("store_reopens", d.store_reopens);
    r.time("last_step", d.last_step_ms);
}
inline void read(const Reader& r, StoreStatus& s) {
    r.get("dir", s.dir);
    r.get("durable_entry_no", s.durable_entry_no);
    r.get("open_segment", s.open_segment);
    r.get("open_segment_bytes", s.open_segment_bytes);
    r.get("sealed_segments", s.sealed_segments);
    r.get("bytes", s.bytes);
    r.get("encrypted", s.encrypted);
}
inline void read(const Reader& r, ArchiveStatus& a) {
    r.get("runs", a.runs);
    r.get("failures", a.failures);
    r.get("archives_written", a.archives_written);
    r.get("segments_archived", a.segments_archived);
    r.get("duplicates_removed", a.duplicates_removed);
    r.get("consecutive_failures", a.consecutive_failures);
    r.get("stopped", a.stopped);
    r.get("last_archive", a.last_archive);
    r.get("last_error", a.last_error);
}
inline void read(const Reader& r, RetentionStatus& s) {
    r.get("used_bytes", s.used_bytes);
    r.get("protected_bytes", s.protected_bytes);
    r.get("quota_bytes", s.quota_bytes);
    r.get("level", s.level);
    r.get("acks_paused", s.acks_paused);
    r.get("archives_deleted", s.archives_deleted);
    r.get("disk_full", s.disk_full);
    r.get("failures", s.failures);
    r.get("stopped", s.stopped);
    r.get("last_error", s.last_error);
    r.get("exporters", s.exporters);
}
inline void read(const Reader& r, SyslogStatus& s) {
    r.get("received", s.received);
    r.get("malformed", s.malformed);
    r.get("oversized", s.oversized);
    r.get("dropped_by_kernel", s.dropped_by_kernel);
    r.get("framing_errors", s.framing_errors);
    r.get("read_errors", s.read_errors);
    if (r.find("spooled") != nullptr) {
        SyslogStatus::Spool sp;
        r.get("spooled", sp.spooled);
        r.get("dropped_queue_full", sp.dropped_queue_full);
        r.get("spool_segments_deleted", sp.segments_deleted);
        r.get("spool_write_errors", sp.write_errors);
        s.spool = sp;
    }
}
inline void read(const Reader& r, ExporterStatus& e) {
    r.get("name", e.name);
    r.get("type", e.type);
    r.get("state", e.state);
    r.get("peer", e.peer);
    r.get("cursor", e.cursor);
    r.get("delivered", e.delivered);
    r.get("filtered", e.filtered);
    r.get("sent", e.sent);
    r.get("resent", e.resent);
    r.get("failures", e.failures);
    r.get("in_flight", e.in_flight);
    r.get("lag_records", e.lag_records);
    r.get("lag_seconds", e.lag_seconds);
    r.get("last_error", e.last_error);
    r.get("cursor_write_failures", e.cursor_write_failures);
    r.get("cursor_error", e.cursor_error);
    r.get("store_held", e.store_held);
    r.get("store_error", e.store_error);
    r.get("store_damaged_places", e.store_damaged_places);
    r.get("store_skipped_records", e.store_skipped_records);
}
inline void read(const Reader& r, CheckpointStatus& c) {
    r.get("taken", c.taken);
    r.get("store_failures", c.store_failures);
}
inline void read(const Reader& r, WorkloadStatus& w) {
    r.get("ops", w.ops);
    r.get("refused", w.refused);
    r.get("errors", w.errors);
}
inline void read(const Reader& r, StatusFileStatus& s) {
    r.get("writes", s.writes);
    r.get("failures", s.failures);
    r.get("consecutive_failures", s.consecutive_failures);
    r.get("last_error", s.last_error);
}
inline void read(const Reader& r, RecentAlert& a) {
    r.time("time", a.time_ms);
    r.get("kind", a.kind);
    r.get("severity", a.severity);
    r.get("message", a.message);
}
inline void read(const Reader& r, AlertsStatus& a) {
    r.get("counts", a.counts);
    r.array("recent", a.recent);
}

inline void read(const Reader& r, AgentStatus& s) {
    const json* schema = r.find("schema");
    if (schema == nullptr)
        throw AgentStatusError("no \"schema\" field (not a status file written by hsmauditd, or one older than " +
                               std::string("schema 1)"));
    r.get("schema", s.schema);
    if (s.schema < 1 || s.schema > kAgentStatusSchema)
        throw AgentStatusError("schema " + std::to_string(s.schema) + " is not one this program reads (1.." +
                               std::to_string(kAgentStatusSchema) + "; written by a newer hsmauditd?)");
    if (r.find("time") == nullptr) throw AgentStatusError("time: missing");
    r.time("time", s.time_ms);
    if (r.find("pid") == nullptr) throw AgentStatusError("pid: missing");
    r.get("pid", s.pid);
    r.get("version", s.version);
    r.time("started", s.started_ms);
    r.get("state_dir", s.state_dir);
    r.get("error", s.error);
    r.object("module", s.module);
    r.object("ring", s.ring);
    r.object("drain", s.drain);
    r.object("store", s.store);
    r.object("archive", s.archive);
    r.object("retention", s.retention);
    r.object("alerts", s.alerts);
    r.object("syslog", s.syslog);
    r.array("exporters", s.exporters);
    r.object("checkpoint", s.checkpoint);
    r.object("workload", s.workload);
    r.object("status_file", s.status_file);
}

inline json time_or_null(std::int64_t ms) {
    return ms == 0 ? json(nullptr) : json(format_time(ms));
}

}  // namespace status_detail

/// The agent's time format in status.json ("2026-01-15T10:00:00.000Z", UTC), and back (nullopt if
/// `text` is not in it).
inline std::string format_status_time(std::int64_t ms) {
    return status_detail::format_time(ms);
}
inline std::optional<std::int64_t> parse_status_time(std::string_view text) {
    return status_detail::parse_time(text);
}

// JSON (nlohmann ADL). from_json throws AgentStatusError (the field's path is relative to the
// object given).

inline void to_json(nlohmann::json& j, const ModuleStatus& m) {
    j = {{"serial", m.serial},
         {"mode", m.mode},
         {"state", m.state},
         {"boot", m.boot},
         {"operation_requests", m.operation_requests},
         {"operation_errors", m.operation_errors},
         {"crypto_requests", m.crypto_requests},
         {"crypto_errors", m.crypto_errors},
         {"critical_events", m.critical_events},
         {"noncritical_events", m.noncritical_events},
         {"refused_log_full", m.refused_log_full}};
}
inline void to_json(nlohmann::json& j, const RingStatus& s) {
    j = {{"fill", s.fill},
         {"fill_peak", s.fill_peak},
         {"seconds_to_reserve", s.seconds_to_reserve},
         {"blocked", s.blocked},
         {"capacity_bytes", s.capacity_bytes},
         {"reserve_bytes", s.reserve_bytes},
         {"used_bytes", s.used_bytes},
         {"used_records", s.used_records},
         {"used_entries", s.used_entries},
         {"fill_critical", s.fill_critical}};
}
inline void to_json(nlohmann::json& j, const DrainStatus& d) {
    j = {{"entries", d.entries},
         {"records", d.records},
         {"seals", d.seals},
         {"commits", d.commits},
         {"faults", d.faults},
         {"acked_entry_no", d.acked_entry_no},
         {"last_seq", d.last_seq},
         {"records_per_s", d.records_per_s ? nlohmann::json(*d.records_per_s) : nlohmann::json(nullptr)},
         {"last_ack", status_detail::time_or_null(d.last_ack_ms)},
         {"failing", d.failing},
         {"acks_paused", d.acks_paused},
         {"step_failures", d.step_failures},
         {"store_reopens", d.store_reopens},
         {"last_step", status_detail::time_or_null(d.last_step_ms)}};
}
inline void to_json(nlohmann::json& j, const StoreStatus& s) {
    j = {{"dir", s.dir},
         {"durable_entry_no", s.durable_entry_no},
         {"open_segment", s.open_segment},
         {"open_segment_bytes", s.open_segment_bytes},
         {"sealed_segments", s.sealed_segments},
         {"bytes", s.bytes},
         {"encrypted", s.encrypted}};
}
inline void to_json(nlohmann::json& j, const ArchiveStatus& a) {
    j = {{"runs", a.runs},
         {"failures", a.failures},
         {"archives_written", a.archives_written},
         {"segments_archived", a.segments_archived},
         {"duplicates_removed", a.duplicates_removed},
         {"consecutive_failures", a.consecutive_failures},
         {"stopped", a.stopped},
         {"last_archive", a.last_archive},
         {"last_error", a.last_error}};
}
inline void to_json(nlohmann::json& j, const RetentionStatus& s) {
    j = {{"used_bytes", s.used_bytes},   {"protected_bytes", s.protected_bytes},
         {"quota_bytes", s.quota_bytes}, {"level", s.level},
         {"acks_paused", s.acks_paused}, {"archives_deleted", s.archives_deleted},
         {"disk_full", s.disk_full},     {"failures", s.failures},
         {"stopped", s.stopped},         {"last_error", s.last_error},
         {"exporters", s.exporters}};
}
inline void to_json(nlohmann::json& j, const SyslogStatus& s) {
    j = {{"received", s.received},
         {"malformed", s.malformed},
         {"oversized", s.oversized},
         {"dropped_by_kernel", s.dropped_by_kernel},
         {"framing_errors", s.framing_errors},
         {"read_errors", s.read_errors}};
    if (s.spool) {
        j["spooled"] = s.spool->spooled;
        j["dropped_queue_full"] = s.spool->dropped_queue_full;
        j["spool_segments_deleted"] = s.spool->segments_deleted;
        j["spool_write_errors"] = s.spool->write_errors;
    }
}
inline void to_json(nlohmann::json& j, const ExporterStatus& e) {
    j = {{"name", e.name},
         {"type", e.type},
         {"state", e.state},
         {"peer", e.peer},
         {"cursor", e.cursor},
         {"delivered", e.delivered},
         {"filtered", e.filtered},
         {"sent", e.sent},
         {"resent", e.resent},
         {"failures", e.failures},
         {"in_flight", e.in_flight},
         {"lag_records", e.lag_records},
         {"lag_seconds", e.lag_seconds},
         {"last_error", e.last_error},
         {"cursor_write_failures", e.cursor_write_failures},
         {"cursor_error", e.cursor_error},
         {"store_held", e.store_held},
         {"store_error", e.store_error},
         {"store_damaged_places", e.store_damaged_places},
         {"store_skipped_records", e.store_skipped_records}};
}
inline void to_json(nlohmann::json& j, const CheckpointStatus& c) {
    j = {{"taken", c.taken}, {"store_failures", c.store_failures}};
}
inline void to_json(nlohmann::json& j, const WorkloadStatus& w) {
    j = {{"ops", w.ops}, {"refused", w.refused}, {"errors", w.errors}};
}
inline void to_json(nlohmann::json& j, const StatusFileStatus& s) {
    j = {{"writes", s.writes},
         {"failures", s.failures},
         {"consecutive_failures", s.consecutive_failures},
         {"last_error", s.last_error}};
}
inline void to_json(nlohmann::json& j, const RecentAlert& a) {
    j = {{"time", status_detail::format_time(a.time_ms)},
         {"kind", a.kind},
         {"severity", a.severity},
         {"message", a.message}};
}
inline void to_json(nlohmann::json& j, const AlertsStatus& a) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [k, v] : a.counts) counts[k] = v;
    j = {{"counts", std::move(counts)}, {"recent", a.recent}};
}

inline void to_json(nlohmann::json& j, const AgentStatus& s) {
    j = nlohmann::json::object();
    j["schema"] = s.schema;
    j["time"] = status_detail::format_time(s.time_ms);
    j["version"] = s.version;
    j["pid"] = s.pid;
    j["started"] = status_detail::format_time(s.started_ms);
    j["state_dir"] = s.state_dir;
    if (!s.error.empty()) j["error"] = s.error;
    j["module"] = s.module;
    if (s.ring) j["ring"] = *s.ring;
    if (s.drain) j["drain"] = *s.drain;
    if (s.store) j["store"] = *s.store;
    if (s.archive) j["archive"] = *s.archive;
    if (s.retention) j["retention"] = *s.retention;
    j["alerts"] = s.alerts;
    if (s.syslog) j["syslog"] = *s.syslog;
    j["exporters"] = s.exporters;
    j["checkpoint"] = s.checkpoint;
    if (s.workload) j["workload"] = *s.workload;
    j["status_file"] = s.status_file;
}

/// The sections nlohmann::json reads through status_detail::read (found by ADL, like to_json).
template <class T>
concept StatusSection = std::is_same_v<T, ModuleStatus> || std::is_same_v<T, RingStatus> ||
    std::is_same_v<T, DrainStatus> || std::is_same_v<T, StoreStatus> || std::is_same_v<T, ArchiveStatus> ||
    std::is_same_v<T, RetentionStatus> || std::is_same_v<T, SyslogStatus> || std::is_same_v<T, ExporterStatus> ||
    std::is_same_v<T, CheckpointStatus> || std::is_same_v<T, WorkloadStatus> || std::is_same_v<T, StatusFileStatus> ||
    std::is_same_v<T, RecentAlert> || std::is_same_v<T, AlertsStatus> || std::is_same_v<T, AgentStatus>;

template <StatusSection T>
void from_json(const nlohmann::json& j, T& out) {
    status_detail::read(status_detail::Reader(j, ""), out);
}

}  // namespace hsmaudit::agent
