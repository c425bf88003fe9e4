// Support of the soak test (tests/soak/soak_test.cpp, docs/SOAK.md): its settings from the
// environment, a seeded fault schedule, a Kafka consumer that follows the audit topic of the mock
// cluster while the test runs (the mock keeps only ~5 MB per partition), and parsers for what the
// receivers got. The monitor that samples the module's status, the agent's memory and copies archives
// off the box is shared with the integration tests: tests/integration/common/module_monitor.h.
//
// Thread-safety: KafkaTail owns one std::jthread and is safe to query from the test's thread;
// everything else is single-threaded.
#pragma once

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hsmcore/host/control_protocol.h"
#include "tests/integration/common/module_monitor.h"

namespace hsmaudit::testing::soak {

namespace fs = std::filesystem;
// ---- settings ---------------------------------------------------------------------------------

struct Settings {
    bool long_mode = false;
    double load_seconds = 160;  // how long the module's clients run
    double rate = 5000;         // nominal operations per second
    std::uint64_t seed = 0;     // the fault schedule's seed
    std::string ring_size;      // the module's NVRAM ring, bytes
    std::uint64_t quota = 0;    // store.quota, bytes
};

inline std::optional<double> env_number(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (end == v) return std::nullopt;
    return d;
}

/// Short mode (HSMAUDIT_SOAK_SECONDS unset): 160 s of load at HSMAUDIT_SOAK_RATE or 5,000 ops/s, so the
/// whole test stays under 5 minutes on a small CI machine. Long mode: HSMAUDIT_SOAK_SECONDS of load at
/// 20,000 ops/s unless HSMAUDIT_SOAK_RATE says otherwise. HSMAUDIT_SOAK_SEED replays a schedule.
inline Settings settings_from_env() {
    Settings s;
    const auto seconds = env_number("HSMAUDIT_SOAK_SECONDS");
    s.long_mode = seconds.has_value();
    s.load_seconds = s.long_mode ? std::max(160.0, *seconds) : 160.0;
    s.rate = env_number("HSMAUDIT_SOAK_RATE").value_or(s.long_mode ? 20000.0 : 5000.0);
    const auto seed = env_number("HSMAUDIT_SOAK_SEED");
    s.seed = seed
                 ? static_cast<std::uint64_t>(*seed)
                 : static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
    // The ring holds ~64 bytes per record: 8 MiB is ~120,000 records, 24 s at 5,000/s; 16 MiB ~245,000.
    s.ring_size = s.rate > 10000 ? "16777216" : "8388608";
    // The export area's quota: ~40 s of records (about 250 bytes each) beyond 64 MiB, so a receiver down
    // for a few seconds never reaches it; only the disk-full phase does.
    s.quota = std::max<std::uint64_t>(64ull << 20, static_cast<std::uint64_t>(s.rate * 250 * 40));
    return s;
}

// ---- the fault schedule -------------------------------------------------------------------------

enum class Action {
    agent_kill,    // kill -9 the agent (arg 1: tamper with the stored trail while it is down)
    agent_start,   // start it again
    rsyslog_kill,  // SIGKILL the RELP receiver
    rsyslog_start,
    kafka_down,  // every mock broker down
    kafka_up,
    trapd_kill,  // stop snmptrapd
    trapd_start,
    prometheus_stop,  // SIGKILL Prometheus
    prometheus_start,
    disk_fill,      // fill the store's file system (and its quota)
    disk_free,      // free it once the module has blocked (or a bound passed)
    clock_forward,  // the module clock jumps 1 h ahead
    clock_back,     // and back (a backwards jump of 1 h)
    burst_start,    // 4 more clients' worth of load: 5x the nominal rate for 10 s
    reload,         // SIGHUP with a changed file
};

inline const char* name_of(Action a) {
    switch (a) {
        case Action::agent_kill: return "agent_kill";
        case Action::agent_start: return "agent_start";
        case Action::rsyslog_kill: return "rsyslog_kill";
        case Action::rsyslog_start: return "rsyslog_start";
        case Action::kafka_down: return "kafka_down";
        case Action::kafka_up: return "kafka_up";
        case Action::trapd_kill: return "trapd_kill";
        case Action::trapd_start: return "trapd_start";
        case Action::prometheus_stop: return "prometheus_stop";
        case Action::prometheus_start: return "prometheus_start";
        case Action::disk_fill: return "disk_fill";
        case Action::disk_free: return "disk_free";
        case Action::clock_forward: return "clock_forward";
        case Action::clock_back: return "clock_back";
        case Action::burst_start: return "burst_start";
        case Action::reload: return "reload";
    }
    return "?";
}

struct Step {
    double at = 0;  // seconds after the load started
    Action action{};
    int arg = 0;
};

/// The schedule for `load_seconds` of load: the faults that press on the module's ring (agent kills,
/// the burst, the disk-full phase) get disjoint slots in a seeded order, so the ring only ever fills
/// in the disk-full phase; receiver faults, Prometheus, the clock jumps and the reload land anywhere.
inline std::vector<Step> make_schedule(std::uint64_t seed, double load_seconds, double disk_full_max) {
    std::mt19937_64 rng(seed);
    auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    std::vector<Step> steps;
    struct Slot {
        Action kind;
        int arg;
        double length;
    };
    std::vector<Slot> slots = {{Action::agent_kill, 1, 15},
                               {Action::agent_kill, 0, 15},
                               {Action::burst_start, 0, 20},
                               {Action::disk_fill, 0, disk_full_max + 10}};
    // Long runs repeat the agent kills and the burst once per further 10 minutes.
    for (double extra = 600; extra + 180 <= load_seconds; extra += 600) {
        slots.push_back({Action::agent_kill, 0, 15});
        slots.push_back({Action::burst_start, 0, 20});
    }
    std::shuffle(slots.begin(), slots.end(), rng);
    double used = 0;
    for (const auto& s : slots) used += s.length;
    const double first = 10;
    const double spare = std::max(0.0, load_seconds - 20 - first - used);
    // Spread the spare time between the slots at random points.
    std::vector<double> gaps(slots.size() + 1);
    for (auto& g : gaps) g = uniform(0, 1);
    double gsum = 0;
    for (double g : gaps) gsum += g;
    double t = first;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        t += spare * gaps[i] / gsum;
        const Slot& s = slots[i];
        switch (s.kind) {
            case Action::agent_kill:
                steps.push_back({t + 1, Action::agent_kill, s.arg});
                steps.push_back({t + 1 + uniform(0.5, 3), Action::agent_start, 0});
                break;
            case Action::burst_start: steps.push_back({t + 2, Action::burst_start, 0}); break;
            case Action::disk_fill:
                steps.push_back({t + 1, Action::disk_fill, 0});
                steps.push_back({t + 1 + disk_full_max, Action::disk_free, 0});  // at the latest
                break;
            default: break;
        }
        t += s.length;
    }
    // Free faults: anywhere in [first, load_seconds - 15].
    auto down_up = [&](Action down, Action up, double lo, double hi) {
        const double d = uniform(lo, hi);
        const double at = uniform(first, load_seconds - 15 - d);
        steps.push_back({at, down, 0});
        steps.push_back({at + d, up, 0});
    };
    down_up(Action::rsyslog_kill, Action::rsyslog_start, 3, 8);
    down_up(Action::kafka_down, Action::kafka_up, 3, 8);
    down_up(Action::trapd_kill, Action::trapd_start, 3, 8);
    down_up(Action::prometheus_stop, Action::prometheus_start, 10, 20);
    const double fwd = uniform(first, load_seconds * 0.6);
    steps.push_back({fwd, Action::clock_forward, 0});
    steps.push_back({uniform(fwd + 5, load_seconds - 15), Action::clock_back, 0});
    steps.push_back({uniform(load_seconds * 0.3, load_seconds * 0.7), Action::reload, 0});
    std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) { return a.at < b.at; });
    return steps;
}

inline std::string describe(const std::vector<Step>& steps) {
    std::ostringstream o;
    o.setf(std::ios::fixed);
    o.precision(1);
    for (const auto& s : steps) {
        o << "  t+" << s.at << "s " << name_of(s.action);
        if (s.action == Action::agent_kill && s.arg == 1) o << " (tamper with the stored trail while it is down)";
        if (s.action == Action::disk_free) o << " (at the latest; earlier once the module blocked for 3 s)";
        o << "\n";
    }
    return o.str();
}

// ---- what the receivers got ---------------------------------------------------------------------

/// Per audit sequence number, how many times it arrived (index = seq).
class SeqCounts {
public:
    void add(std::uint64_t seq) {
        if (seq == 0 || seq > 2'000'000'000) return;
        if (seq >= n_.size()) n_.resize(std::max<std::size_t>(seq + 1, n_.size() * 2), 0);
        if (n_[seq] < 0xFFFF) ++n_[seq];
        ++total_;
    }
    [[nodiscard]] std::uint32_t count(std::uint64_t seq) const { return seq < n_.size() ? n_[seq] : 0; }
    [[nodiscard]] std::uint64_t total() const { return total_; }
    /// Sequence numbers in [1, last] that never arrived.
    [[nodiscard]] std::vector<std::uint64_t> missing(std::uint64_t last) const {
        std::vector<std::uint64_t> out;
        for (std::uint64_t s = 1; s <= last; ++s)
            if (count(s) == 0) out.push_back(s);
        return out;
    }
    /// Deliveries beyond the first, over [1, last].
    [[nodiscard]] std::uint64_t duplicates(std::uint64_t last) const {
        std::uint64_t d = 0;
        for (std::uint64_t s = 1; s <= last; ++s)
            if (count(s) > 1) d += count(s) - 1;
        return d;
    }
    [[nodiscard]] bool covers(std::uint64_t first, std::uint64_t last) const {
        for (std::uint64_t s = first; s <= last; ++s)
            if (count(s) == 0) return false;
        return true;
    }

private:
    std::vector<std::uint16_t> n_;
    std::uint64_t total_ = 0;
};

/// The sequence number of an audit record's event id `<serial>-<boot>-<seq>` at `p` in `text`
/// (`p` just past "<serial>-"), or 0.
inline std::uint64_t parse_boot_seq(std::string_view text, std::size_t p) {
    std::size_t i = p;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == p || i >= text.size() || text[i] != '-') return 0;
    std::uint64_t seq = 0;
    std::size_t j = i + 1;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9')
        seq = seq * 10 + static_cast<std::uint64_t>(text[j++] - '0');
    return j == i + 1 ? 0 : seq;
}

/// Adds the audit records' event ids found in rsyslog's file (one message per line) to `counts`.
inline void count_rsyslog(const std::string& path, const std::string& serial, SeqCounts& counts) {
    std::ifstream in(path, std::ios::binary);
    const std::string needle = "eventId=\"" + serial + "-";
    for (std::string line; std::getline(in, line);) {
        const auto at = line.find(needle);
        if (at == std::string::npos) continue;
        if (const auto seq = parse_boot_seq(line, at + needle.size()); seq != 0) counts.add(seq);
    }
}

/// Follows one topic of the mock cluster from its beginning with librdkafka's consumer, counting the
/// audit records by their `event_id` header. The mock cluster keeps only ~5 MB per partition, so the
/// consumer must keep up; an offset that jumps (messages the mock dropped before they were read) is
/// counted in `offset_gaps`, which then says the check is incomplete, not that the agent lost them.
/// librdkafka 2.0.2's consumer did not resume fetching from the mock for about a minute after its
/// brokers were set down and up again, so an idle consumer (nothing for 2 s) is replaced by a new
/// one assigned at the next offset.
class KafkaTail {
public:
    KafkaTail(std::string brokers, std::string topic, std::string serial, Clock::time_point t0)
        : brokers_(std::move(brokers)), topic_(std::move(topic)), serial_(std::move(serial)), t0_(t0) {
        rd_kafka_t* rk = make_consumer(RD_KAFKA_OFFSET_BEGINNING);
        if (rk == nullptr) return;
        thread_ = std::jthread([this, rk](std::stop_token st) { run(st, rk); });
    }
    ~KafkaTail() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
    }
    KafkaTail(const KafkaTail&) = delete;
    KafkaTail& operator=(const KafkaTail&) = delete;

    [[nodiscard]] const std::string& error() const { return error_; }
    SeqCounts snapshot() const {
        std::lock_guard lock(mu_);
        return counts_;
    }
    [[nodiscard]] std::uint64_t offset_gaps() const { return gaps_.load(); }
    /// The first gaps: when and which offsets.
    [[nodiscard]] std::vector<std::string> gap_log() const {
        std::lock_guard lock(mu_);
        return gap_log_;
    }
    [[nodiscard]] std::uint64_t messages() const { return messages_.load(); }
    [[nodiscard]] std::uint64_t consumers() const { return consumers_.load(); }

private:
    rd_kafka_t* make_consumer(std::int64_t offset) {
        char err[512];
        rd_kafka_conf_t* conf = rd_kafka_conf_new();
        auto set = [&](const char* k, const char* v) { rd_kafka_conf_set(conf, k, v, err, sizeof err); };
        set("bootstrap.servers", brokers_.c_str());
        set("group.id", "soak-tail");
        set("enable.auto.commit", "false");
        set("auto.offset.reset", "earliest");
        set("log_level", "0");
        set("fetch.wait.max.ms", "20");
        set("max.partition.fetch.bytes", "16777216");
        set("fetch.max.bytes", "67108864");
        set("reconnect.backoff.ms", "50");
        set("reconnect.backoff.max.ms", "500");
        set("fetch.error.backoff.ms", "50");
        rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
        if (rk == nullptr) {
            rd_kafka_conf_destroy(conf);
            error_ = err;
            return nullptr;
        }
        rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic_.c_str(), 0)->offset = offset;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        ++consumers_;
        return rk;
    }
    static void destroy(rd_kafka_t* rk) {
        rd_kafka_assign(rk, nullptr);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }

    void run(std::stop_token st, rd_kafka_t* rk) {
        std::int64_t next_offset = -1;
        auto last_message = Clock::now();
        while (!st.stop_requested()) {
            if (Clock::now() - last_message > std::chrono::seconds(2)) {
                destroy(rk);
                rk = make_consumer(next_offset >= 0 ? next_offset : RD_KAFKA_OFFSET_BEGINNING);
                last_message = Clock::now();
                if (rk == nullptr) return;
            }
            rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
            if (m == nullptr) continue;
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                last_message = Clock::now();
                if (next_offset >= 0 && m->offset > next_offset) {
                    gaps_ += static_cast<std::uint64_t>(m->offset - next_offset);
                    std::lock_guard lock(mu_);
                    if (gap_log_.size() < 5)
                        gap_log_.push_back("t+" + std::to_string(static_cast<int>(seconds_since(t0_))) + "s offsets " +
                                           std::to_string(next_offset) + ".." + std::to_string(m->offset - 1));
                }
                if (m->offset >= next_offset) next_offset = m->offset + 1;
                rd_kafka_headers_t* h = nullptr;
                const void* v = nullptr;
                std::size_t n = 0;
                std::uint64_t seq = 0;
                if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    rd_kafka_header_get_last(h, "event_id", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                    const std::string_view id(static_cast<const char*>(v), n);
                    if (id.starts_with(serial_ + "-")) seq = parse_boot_seq(id, serial_.size() + 1);
                }
                ++messages_;
                if (seq != 0) {
                    std::lock_guard lock(mu_);
                    counts_.add(seq);
                }
            }
            rd_kafka_message_destroy(m);
        }
        destroy(rk);
    }

    std::string brokers_, topic_, serial_;
    Clock::time_point t0_;
    std::string error_;
    mutable std::mutex mu_;
    std::vector<std::string> gap_log_;
    SeqCounts counts_;
    std::atomic<std::uint64_t> gaps_{0};
    std::atomic<std::uint64_t> messages_{0};
    std::atomic<std::uint64_t> consumers_{0};
    std::jthread thread_;
};

}  // namespace hsmaudit::testing::soak
