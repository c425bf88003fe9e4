// Disk full, end to end (issue 13, item 3): the real programs as separate processes - `hsmcore serve`
// (the module), `hsmcore load` at 3,000 ops/s, `hsmauditd` (connect mode, encryption at rest, 1 MiB
// segments, archives, checkpoints, alerts as SNMP informs to a real snmptrapd on loopback) - with the
// agent's state directory on a 20 MiB tmpfs. A ballast file fills the tmpfs until ENOSPC (and keeps it
// full); then, per variant:
//   - FreedAfterFiveSeconds: space is freed after 5 s;
//   - FreedAfterTheModuleBlocked: space is freed once the module blocked (fail-safe: its ring is full
//     because the agent acknowledged nothing it could not store);
//   - AgentKilledWhileFull: the agent is SIGKILLed while the disk is full, space is freed, it is started
//     again;
//   - AgentKilledAfterRecovering: freed after 5 s, and once the agent recovered by itself it is SIGKILLed
//     and started again (the restart's recovery must accept what the in-process one left).
// The agent must recover by itself (no restart, except the killed one), the load must go on, rotation
// must go on, its log must stay quiet while full, a fault alert must reach snmptrapd, and at the end
// `hsmaudit verify --anchors` over the off-box archives and the store must say VERIFIED with every
// record 1..N exactly once (so every operation `hsmcore load` reported done has its record), no chain
// alert, and no segment much larger than the configured limit.
//
// Archives are moved off the tmpfs as they appear (the operator's job for an agent without audit
// exporters, docs/ARCHITECTURE.md "Archives and retention"), except while the disk is meant to be full.
// Needs to mount a tmpfs (root or CAP_SYS_ADMIN, as in CI); skipped with the reason otherwise. Waits are
// bounded polls; the only fixed waits are the fault's own durations. Every process and the mount are
// undone by RAII members, also when a step fails.

#include <algorithm>
#include <map>
#include <regex>

#include "mac/segment_format.h"
#include "pipeline_fixture.h"
#include "tests/integration/common/disk_full.h"
#include "tests/integration/common/module_monitor.h"
#include "tests/integration/exporters/snmp/snmp_test_support.h"

namespace hsmaudit::testing {
namespace {

constexpr std::uint64_t kTmpfsBytes = 20ull << 20;
constexpr std::uint64_t kSegmentBytes = 1ull << 20;
// ~23,000 records at ~64 bytes each: at 3,300 records/s the module reaches its reserve ~7 s after the
// agent stops acknowledging, after the 5 s variant and soon enough for the blocked one; the backlog
// (~5 MB of segment text) fits the tmpfs when the space comes back.
constexpr std::uint64_t kRingBytes = 1536ull << 10;
// The drain asks for a seal once the open segment reached the limit, and the module seals after what
// its ring holds by then: after a stall the whole backlog lands in the open segment (a ring entry of
// ~64 bytes is a line of ~220). More than that is a rotation that stopped.
constexpr std::uint64_t kSegmentBytesBound = kSegmentBytes + 4 * kRingBytes;
constexpr double kRate = 3000;
// The most lines one message may take in the agent's log during one disk-full phase.
constexpr std::size_t kQuietRepeats = 5;
constexpr auto kRecoveryLimit = std::chrono::seconds(60);

enum class Variant { freed_after_5s, freed_after_blocked, killed_while_full, killed_after_recovery };

const char* name_of(Variant v) {
    switch (v) {
        case Variant::freed_after_5s: return "freed after 5 s";
        case Variant::freed_after_blocked: return "freed after the module blocked";
        case Variant::killed_while_full: return "agent SIGKILLed while full";
        case Variant::killed_after_recovery: return "freed after 5 s, then the agent SIGKILLed and restarted";
    }
    return "?";
}

/// Samples the store every 50 ms: the open segment (largest size seen, newest epoch) and the file
/// system (a full disk outside the planned phases means the test's space budget is wrong, not the agent).
/// Thread-safety: one std::jthread; queries and set_planned_full from the test's thread.
class StoreWatch {
public:
    StoreWatch(std::string state_dir, Clock::time_point t0) : state_(std::move(state_dir)), t0_(t0) {
        thread_ = std::jthread([this](std::stop_token st) {
            while (!st.stop_requested()) {
                sample();
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~StoreWatch() { thread_ = {}; }
    StoreWatch(const StoreWatch&) = delete;
    StoreWatch& operator=(const StoreWatch&) = delete;

    void set_planned_full(bool planned) { planned_full_ = planned; }
    /// The newest epoch of a segment seen in current/ (-1 if none yet).
    [[nodiscard]] std::int64_t current_epoch() const { return epoch_.load(); }
    [[nodiscard]] std::uint64_t max_open_bytes() const { return max_open_.load(); }
    [[nodiscard]] std::string max_open_name() const {
        std::lock_guard lock(mu_);
        return max_open_name_;
    }
    [[nodiscard]] std::uint64_t peak_used_bytes() const { return peak_used_.load(); }
    /// When the disk was found full outside a planned phase (seconds since t0), the first few.
    [[nodiscard]] std::vector<double> unplanned_full() const {
        std::lock_guard lock(mu_);
        return unplanned_;
    }

private:
    void sample() {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(state_ + "/audit/current", ec)) {
            const std::string name = e.path().filename().string();
            const auto epoch = mac::segment_file_epoch(name);
            if (!epoch) continue;
            epoch_ = std::max(epoch_.load(), static_cast<std::int64_t>(*epoch));
            std::error_code sec;
            const auto size = fs::file_size(e.path(), sec);
            if (!sec && size > max_open_.load()) {
                max_open_ = size;
                std::lock_guard lock(mu_);
                max_open_name_ = name;
            }
        }
        peak_used_ = std::max(peak_used_.load(), fs_used_bytes(state_));
        if (!planned_full_.load() && fs_available_bytes(state_) < 64 * 1024) {
            const double t = seconds_since(t0_);
            std::lock_guard lock(mu_);
            if (unplanned_.empty() || (unplanned_.size() < 5 && t - unplanned_.back() > 1.0)) unplanned_.push_back(t);
        }
    }

    std::string state_;
    Clock::time_point t0_;
    std::atomic<bool> planned_full_{false};
    std::atomic<std::int64_t> epoch_{-1};
    std::atomic<std::uint64_t> max_open_{0};
    std::atomic<std::uint64_t> peak_used_{0};
    mutable std::mutex mu_;
    std::string max_open_name_;
    std::vector<double> unplanned_;
    std::jthread thread_;
};

/// The agent's log lines in [from, to) bytes of `log`, grouped by message with the time stamp dropped
/// and every number replaced by '#': (count, message), most repeated first.
std::vector<std::pair<std::size_t, std::string>> repeated_messages(const std::string& log, std::size_t from,
                                                                   std::size_t to) {
    std::map<std::string, std::size_t> n;
    std::istringstream in(log.substr(std::min(from, log.size()), to > from ? to - from : 0));
    static const std::regex digits("[0-9]+");
    for (std::string line; std::getline(in, line);) {
        const auto sp = line.find(' ');
        const std::string msg = sp == std::string::npos ? line : line.substr(sp + 1);
        ++n[std::regex_replace(msg, digits, "#")];
    }
    std::vector<std::pair<std::size_t, std::string>> out;
    for (auto& [m, c] : n) out.emplace_back(c, m);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    return out;
}

std::string fixed1(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}

std::size_t count_lines_with(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
}

/// A notification about the fault itself (not a clear, not the agent's start): the ring filling, the
/// store, the drain failing or pausing, the module blocking.
bool is_fault_trap(const std::string& line) {
    const std::string name = snmp::trap_name(line);
    const std::string condition = snmp::varbind(line, "HSMAUDIT-MIB::hsmNotifyCondition.0");
    if (name.find("Clear") != std::string::npos || name.find("Resumed") != std::string::npos) return false;
    if (name.find("hsmRingFill") != std::string::npos || name.find("hsmRingPredictedFull") != std::string::npos ||
        name.find("hsmStoreQuota") != std::string::npos || name.find("hsmModuleBlocked") != std::string::npos)
        return true;
    return name.find("hsmAgentAlert") != std::string::npos &&
           (condition.find("drain.failed") != std::string::npos ||
            condition.find("drain.acks_paused") != std::string::npos || condition.find("store.") != std::string::npos);
}

class DiskFull : public Pipeline {
protected:
    void SetUp() override {
        Pipeline::SetUp();
        if (HasFatalFailure()) return;
        fs::create_directories(state_);
        mount_ = std::make_unique<TmpfsMount>(state_, kTmpfsBytes);
        if (!mount_->mounted())
            GTEST_SKIP() << "the disk-full test needs a real small file system and could not mount one: "
                         << mount_->error();
        ASSERT_FALSE(snmp::base_mib_dir().empty()) << snmp::kMissingMibs;
        offbox_ = dir_ + "/offbox";
        t0_ = Clock::now();
    }
    void TearDown() override {
        load_.reset();
        ballast_.reset();
        monitor_.reset();
        watch_.reset();
        agent_.reset();
        trapd_.reset();
        if (mount_ && mount_->mounted() && HasFailure()) {
            // The tmpfs goes with the mount: keep a copy of the state for the post-mortem.
            std::error_code ec;
            fs::copy(state_, dir_ + "/state.kept", fs::copy_options::recursive, ec);
            std::cout << "disk-full: kept " << dir_ << " (state copied to state.kept)\n";
        }
        if (mount_ && !mount_->unmount()) ADD_FAILURE() << mount_->error();
        mount_.reset();
        Pipeline::TearDown();
    }

    double now() const { return seconds_since(t0_); }
    void log(const std::string& what) const {
        std::printf("disk-full t+%.1fs %s\n", now(), what.c_str());
        std::fflush(stdout);
    }

    // ---- the pieces -------------------------------------------------------------------------------

    void write_agent_config() {
        std::ofstream(dir_ + "/agent.yaml", std::ios::trunc)
            << "agent:\n  state_dir: " << state_ << "\n  status_interval: 500ms\n  log_level: info\n"
            << "module:\n  mode: connect\n  dir: " << module_ << "\n"
            << "rotation:\n  max_segment_bytes: " << kSegmentBytes << "\n"
            << "archive:\n  interval: 2s\n  max_segments: 1\n"
            << "alerts:\n  status_interval: 100ms\n  ring_fill_warning: 0.3\n"
            << "checkpoint:\n  interval: 2s\n"
            << "exporters:\n"
            << "  noc:\n    type: snmp\n    streams: alerts\n    backoff_max: 2s\n"
            << "    snmp:\n      receivers: trapd\n      holddown: 5s\n      receiver:\n        trapd:\n"
            << "          address: udp:127.0.0.1:" << trapd_port_ << "\n          version: v2c\n"
            << "          notify: inform\n          community_file: " << dir_ << "/community\n"
            << "          timeout: 500ms\n          retries: 1\n          retry_interval: 1s\n";
    }

    /// Starts hsmauditd (its log in agent.err.<n>) and waits for its first status.json; false (with the
    /// failure added) if it exited or did not write one.
    bool start_agent_n() {
        ++agent_starts_;
        fs::remove(state_ + "/status.json");
        agent_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--",
                                                                    kHsmauditd, "-c", dir_ + "/agent.yaml"},
                                           dir_ + "/agent.out." + std::to_string(agent_starts_), agent_log_path());
        if (monitor_) monitor_->set_agent_pid(agent_->pid());
        const bool up = wait_for([&] { return !agent_->running() || fs::exists(state_ + "/status.json"); });
        if (!up || !agent_->running()) {
            ADD_FAILURE() << "hsmauditd start " << agent_starts_ << " failed ("
                          << (agent_->running() ? "no status.json within 60 s" : "it exited") << "):\n"
                          << agent_log().substr(0, 4000);
            return false;
        }
        return true;
    }
    [[nodiscard]] std::string agent_log_path() const { return dir_ + "/agent.err." + std::to_string(agent_starts_); }
    [[nodiscard]] std::string agent_log() const { return Process::slurp(agent_log_path()); }
    [[nodiscard]] std::string all_agent_logs() const {
        std::string all;
        for (int i = 1; i <= agent_starts_; ++i) all += Process::slurp(dir_ + "/agent.err." + std::to_string(i));
        return all;
    }
    [[nodiscard]] std::string last_lines(const std::string& text, std::size_t n) const {
        std::size_t at = text.size();
        for (std::size_t i = 0; i <= n && at != std::string::npos && at > 0; ++i) at = text.rfind('\n', at - 1);
        return at == std::string::npos ? text : text.substr(at + 1);
    }

    /// (kind, severity) of every alert in alerts.jsonl.
    [[nodiscard]] std::vector<std::pair<std::string, std::string>> alerts() const {
        std::vector<std::pair<std::string, std::string>> out;
        std::ifstream in(state_ + "/alerts/alerts.jsonl");
        for (std::string line; std::getline(in, line);) {
            const auto j = json_of(line);
            out.emplace_back(j.value("kind", std::string("<unparsable line>")), j.value("severity", ""));
        }
        return out;
    }

    /// Module, snmptrapd, the agent, the monitor and the load.
    void start_everything() {
        ASSERT_NO_FATAL_FAILURE(init_module(std::to_string(kRingBytes)));
        // As Pipeline::serve(), but the module dies with the test even if the test is killed (a timeout).
        serve_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--",
                                                                    kHsmcore, "serve", "--dir", module_},
                                           dir_ + "/serve.out", dir_ + "/serve.err");
        ASSERT_TRUE(wait_for([&] { return fs::exists(module_ + "/control.sock"); })) << serve_->err();
        trapd_port_ = snmp::free_udp_port();
        fs::create_directories(dir_ + "/trapd");
        trapd_ =
            std::make_unique<snmp::TrapReceiver>(dir_ + "/trapd", trapd_port_, "authCommunity log,execute public\n");
        ASSERT_TRUE(trapd_->running()) << trapd_->errors();
        snmp::write_file(dir_ + "/community", "public\n");
        write_agent_config();
        {
            auto [code, out] = run({kHsmauditd, "-c", dir_ + "/agent.yaml", "--check-config"});
            ASSERT_EQ(code, 0) << out;
        }
        monitor_ = std::make_unique<Monitor>(module_ + "/control.sock", state_ + "/audit/archive", offbox_, t0_);
        monitor_->ship_archives(true);
        watch_ = std::make_unique<StoreWatch>(state_, t0_);
        ASSERT_TRUE(start_agent_n());
        load_ = std::make_unique<Process>(
            std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--", kHsmcore, "load", "--dir",
                                     module_, "--rate", std::to_string(static_cast<int>(kRate)), "--duration", "900",
                                     "--threads", "4", "--json", "--done-log", dir_ + "/done.log"},
            dir_ + "/load.out", dir_ + "/load.err");
        log("module (ring " + std::to_string(kRingBytes) + " bytes), snmptrapd udp:" + std::to_string(trapd_port_) +
            ", agent and load at " + std::to_string(static_cast<int>(kRate)) + " ops/s started; state on a " +
            std::to_string(kTmpfsBytes >> 20) + " MiB tmpfs");
    }

    /// Until an archive was shipped and nothing waits in ready_for_archive/ (just after an archiver
    /// pass): the disk then fills with the least of the trail on it, so the backlog fits when the space
    /// comes back. Not reaching that point in time is no fault, only a tighter budget.
    void warm_up() {
        const bool quiet = wait_for(
            [&] {
                if (monitor_->archives_copied() < 1) return false;
                std::error_code ec;
                for (const auto& e : fs::directory_iterator(state_ + "/audit/ready_for_archive", ec))
                    if (e.path().extension() == ".log") return false;
                return true;
            },
            std::chrono::seconds(40));
        log(std::string("warm-up: ") + std::to_string(monitor_->archives_copied()) + " archive(s) shipped, " +
            (quiet ? "ready_for_archive empty" : "ready_for_archive NOT empty (40 s passed)") + ", tmpfs " +
            std::to_string(fs_used_bytes(state_) >> 10) + " KiB used");
        ASSERT_TRUE(load_->running()) << load_->err();
        ASSERT_TRUE(agent_->running()) << agent_log();
    }

    /// The module's STATUS over its control socket (cheaper than `hsmcore status` in a poll loop).
    struct Ring {
        bool ok = false;
        bool blocked = false;
        std::uint64_t used = 0, capacity = 0, oldest_entry = 0, next_entry = 0, oldest_seq = 0, next_seq = 0,
                      refused = 0, epoch = 0;
    };
    Ring ring() {
        if (!control_) {
            auto c = hsmcore::host::ControlClient::connect(module_ + "/control.sock");
            if (!c) return {};
            control_.emplace(std::move(*c));
        }
        auto r = control_->call("STATUS");
        if (!r) {
            control_.reset();
            return {};
        }
        Ring s;
        s.ok = true;
        s.blocked = r->get_u64("blocked") != 0;
        s.used = r->get_u64("used");
        s.capacity = r->get_u64("capacity");
        s.oldest_entry = r->get_u64("oldest_entry");
        s.next_entry = r->get_u64("next_entry");
        s.oldest_seq = r->get_u64("oldest_seq");
        s.next_seq = r->get_u64("next_seq");
        s.refused = r->get_u64("refused_log_full");
        s.epoch = r->get_u64("epoch");
        return s;
    }

    void fill_disk() {
        monitor_->hold_archives(true);  // removing an archive now would free space
        watch_->set_planned_full(true);
        log_from_ = Process::slurp(agent_log_path()).size();
        ballast_ = std::make_unique<Ballast>(state_ + "/ballast");
        ASSERT_TRUE(ballast_->ok()) << ballast_->error();
        full_at_ = now();
        log("disk full: " + std::to_string(ballast_->bytes() >> 10) + " KiB of ballast, " +
            std::to_string(fs_available_bytes(state_)) + " bytes left");
    }
    void free_disk() {
        log_to_ = Process::slurp(agent_log_path()).size();
        full_log_ = Process::slurp(agent_log_path());
        ballast_->release();
        ballast_.reset();
        freed_at_ = now();
        archives_at_free_ = monitor_->archives_copied();
        watch_->set_planned_full(false);
        monitor_->hold_archives(false);
        log("space freed after " + fixed1(freed_at_ - full_at_) +
            " s: " + std::to_string(fs_available_bytes(state_) >> 10) + " KiB available");
    }

    /// Waits until the agent caught up by itself: module not blocked, ring drained below a quarter,
    /// two segments opened after the fault (rotation goes on), the load going on. `event` names the
    /// fault's end (at `since`, seconds since t0), with the epoch and next_seq then.
    bool expect_recovery(std::int64_t epoch_at_free, std::uint64_t next_seq_at_free, double since,
                         const std::string& event) {
        Ring s;
        bool running = false, unblocked = false, drained = false, rotated = false, loaded = false;
        const bool ok = wait_for(
            [&] {
                s = ring();
                running = agent_->running();
                unblocked = s.ok && !s.blocked;
                drained = s.ok && s.used * 4 < s.capacity;
                rotated = watch_->current_epoch() >= epoch_at_free + 2;
                loaded = s.next_seq >= next_seq_at_free + 3000;
                return running && unblocked && drained && rotated && loaded;
            },
            kRecoveryLimit);
        const double took = ok ? now() - since : -1;
        if (since == freed_at_) recovered_in_ = took;
        if (ok) {
            log("recovered " + fixed1(took) + " s after " + event);
            return true;
        }
        ADD_FAILURE() << "the agent did not recover within " << kRecoveryLimit.count() << " s of " << event
                      << ": agent " << (running ? "running" : "NOT running") << ", module "
                      << (unblocked ? "not blocked" : "STILL BLOCKED") << ", ring "
                      << (drained ? "drained" : "NOT drained") << " (used " << s.used << " of " << s.capacity
                      << " bytes), open segment epoch " << watch_->current_epoch() << " (then: " << epoch_at_free
                      << ", wanted >= " << epoch_at_free + 2 << ": rotation " << (rotated ? "goes on" : "STOPPED")
                      << "), module next_seq " << s.next_seq << " (then: " << next_seq_at_free << ": load "
                      << (loaded ? "goes on" : "STOPPED") << ")\nagent log (last lines):\n"
                      << last_lines(agent_log(), 15);
        return false;
    }

    /// The agent's log between the disk filling and the space coming back: no message more than a
    /// handful of times.
    void expect_quiet_log() {
        const auto groups = repeated_messages(full_log_, log_from_, log_to_);
        std::size_t lines = 0;
        for (const auto& [n, m] : groups) lines += n;
        std::ostringstream top;
        for (std::size_t i = 0; i < groups.size() && i < 4; ++i)
            top << "  " << groups[i].first << "x " << groups[i].second.substr(0, 220) << "\n";
        log("agent log while full: " + std::to_string(lines) + " lines, " + std::to_string(groups.size()) +
            " distinct messages" + (groups.empty() ? "" : ", most repeated " + std::to_string(groups[0].first) + "x"));
        most_repeated_ = groups.empty() ? 0 : groups[0].first;
        EXPECT_LE(most_repeated_, kQuietRepeats) << "the agent's log was not quiet while the disk was full ("
                                                 << fixed1(freed_at_ - full_at_) << " s): the most repeated messages:\n"
                                                 << top.str();
        // Not vacuous: the agent did meet the full disk.
        const std::string window = full_log_.substr(std::min(log_from_, full_log_.size()), log_to_ - log_from_);
        EXPECT_GT(count_lines_with(window, "No space left on device"), 0u)
            << "the agent never reported ENOSPC while the disk was full: the phase tested nothing";
    }

    /// `hsmaudit verify` over what is on the disk now (the store and the archives shipped so far): its
    /// records reach `acked_through`. The disk may still be full and the agent running: a torn tail is
    /// no matter here, only how far the stored trail goes.
    void expect_acknowledged_stored(std::uint64_t acked_through) {
        auto [code, out] =
            run({kHsmaudit, "verify", "--json", "--key", module_ + "/audit.key", offbox_, state_ + "/audit/archive",
                 state_ + "/audit/ready_for_archive", state_ + "/audit/current"});
        const auto report = json_of(out.substr(0, out.rfind('}') + 1));
        stored_while_full_ = report.value("last_seq", 0ull);
        log("while full: acknowledged through seq " + std::to_string(acked_through) + " (" +
            std::to_string(acked_while_full_) + " since the disk filled), stored through " +
            std::to_string(stored_while_full_) + " (verify exit " + std::to_string(code) + ")");
        EXPECT_GE(stored_while_full_, acked_through)
            << "records the agent acknowledged to the module while the disk was full are not on the disk: "
            << "acknowledged through " << acked_through << ", the store ends at " << stored_while_full_ << "\n"
            << out.substr(0, 2000);
    }

    void run_variant(Variant v) {
        ASSERT_NO_FATAL_FAILURE(start_everything());
        ASSERT_NO_FATAL_FAILURE(warm_up());

        // ---- the disk fills ----
        ASSERT_NO_FATAL_FAILURE(fill_disk());
        const std::uint64_t acked_after_fill = ring().oldest_seq;
        bool blocked = false;
        switch (v) {
            case Variant::freed_after_5s:
            case Variant::killed_after_recovery: std::this_thread::sleep_until(t0_ + seconds_d(full_at_ + 5)); break;
            case Variant::freed_after_blocked: {
                blocked = wait_for([&] { return ring().blocked; });
                const Ring s = ring();
                EXPECT_TRUE(blocked) << "the module did not block within 60 s of the disk filling (fail-safe): "
                                        "the agent went on acknowledging records it could not store? acknowledged "
                                     << s.oldest_seq - acked_after_fill << " records since the disk filled; ring used "
                                     << s.used << " of " << s.capacity;
                if (blocked) {
                    log("module blocked " + fixed1(now() - full_at_) + " s after the disk filled");
                    // What the operator sees: `hsmcore status` says blocked, and the refusals count up.
                    const auto st = module_status();
                    EXPECT_TRUE(st.value("blocked", false)) << st.dump();
                    EXPECT_TRUE(wait_for([&] { return ring().refused > s.refused + 100; }))
                        << "the blocked module refused nothing: is the load running?";
                }
                break;
            }
            case Variant::killed_while_full:
                std::this_thread::sleep_until(t0_ + seconds_d(full_at_ + 3));
                agent_->signal(SIGKILL);
                ASSERT_TRUE(agent_->wait(std::chrono::seconds(30)).has_value());
                monitor_->set_agent_pid(0);
                log("agent SIGKILLed while the disk is full");
                break;
        }
        const Ring before_free = ring();
        acked_while_full_ = before_free.oldest_seq - acked_after_fill;
        was_blocked_ = blocked || before_free.blocked;
        // Nothing acknowledged that is not on the disk, checked while it is still full: whatever the agent
        // acknowledged (it may have had space reserved) is in the store now.
        ASSERT_NO_FATAL_FAILURE(expect_acknowledged_stored(before_free.oldest_seq - 1));
        const std::int64_t epoch_at_free = watch_->current_epoch();
        const std::uint64_t next_seq_at_free = before_free.next_seq;

        // ---- space comes back ----
        ASSERT_NO_FATAL_FAILURE(free_disk());
        if (v == Variant::killed_while_full) {
            if (!start_agent_n()) return;
            log("agent started again");
        }
        bool recovered = expect_recovery(epoch_at_free, next_seq_at_free, freed_at_, "the space came back");
        expect_quiet_log();
        if (v == Variant::killed_after_recovery) {
            // A crash after the in-process recovery: the restart's recovery must accept what it left.
            agent_->signal(SIGKILL);
            ASSERT_TRUE(agent_->wait(std::chrono::seconds(30)).has_value());
            monitor_->set_agent_pid(0);
            const Ring at_kill = ring();
            const std::int64_t epoch_at_kill = watch_->current_epoch();
            const double killed_at = now();
            log("agent SIGKILLed after its recovery");
            if (!start_agent_n()) return;
            log("agent started again");
            recovered =
                expect_recovery(epoch_at_kill, at_kill.next_seq, killed_at, "the kill and restart") && recovered;
        }
        // A fault alert reaches the NOC (alerts.jsonl is on the full disk: it may only go out afterwards).
        const bool trapped = wait_for(
            [&] {
                const auto n = trapd_->notifications();
                return std::any_of(n.begin(), n.end(), is_fault_trap);
            },
            std::chrono::seconds(30));
        EXPECT_TRUE(trapped) << "no ring.*/store.*/drain.failed/drain.acks_paused/module.blocked notification "
                                "reached snmptrapd; it logged:\n"
                             << trapd_->log().substr(0, 3000);
        if (recovered) {
            // Archiving goes on: an archive made after the fault is shipped.
            EXPECT_TRUE(
                wait_for([&] { return monitor_->archives_copied() > archives_at_free_; }, std::chrono::seconds(30)))
                << "no archive was made within 30 s of the space coming back (archive.interval 2s); the agent log "
                   "ends:\n"
                << last_lines(agent_log(), 10);
            // Some more load after the recovery, then the end.
            const std::uint64_t seq_now = ring().next_seq;
            EXPECT_TRUE(wait_for([&] { return ring().next_seq > seq_now + 3000; }))
                << "the load did not go on after the recovery";
        }
        // The end, also after a failed recovery: what the trail lost is the most useful figure then.
        finish_and_verify(v);
    }

    static std::chrono::duration<double> seconds_d(double s) { return std::chrono::duration<double>(s); }

    /// Stops the load, lets the agent drain, stops it, and verifies the whole trail.
    void finish_and_verify(Variant v) {
        load_->signal(SIGTERM);
        const auto load_code = load_->wait(std::chrono::seconds(60));
        ASSERT_TRUE(load_code.has_value()) << "hsmcore load did not stop";
        const auto load = json_of(load_->out());
        EXPECT_EQ(*load_code, 0) << load_->err();
        EXPECT_EQ(load.value("lost_connections", 1ull), 0ull) << load_->out() << load_->err();
        std::vector<std::uint64_t> done;
        {
            std::ifstream in(dir_ + "/done.log");
            for (std::string line; std::getline(in, line);) done.push_back(std::strtoull(line.c_str(), nullptr, 10));
        }
        log("load stopped: " + load.dump() + "; " + std::to_string(done.size()) + " records of operations done");

        bool drained = false;
        Ring ms;
        if (agent_->running()) {
            drained = wait_for([&] {
                ms = ring();
                return ms.ok && ms.next_entry != 0 && ms.oldest_entry == ms.next_entry;
            });
        }
        ms = ring();
        EXPECT_TRUE(drained) << "the agent did not drain the module within 60 s after the load stopped: oldest_entry "
                             << ms.oldest_entry << ", next_entry " << ms.next_entry << "; agent "
                             << (agent_->running() ? "running" : "NOT running") << "; its log ends:\n"
                             << last_lines(agent_log(), 15);
        ASSERT_TRUE(ms.ok) << "the module does not answer STATUS";
        const std::uint64_t produced = ms.next_seq - 1;
        std::optional<int> stop_code;
        if (agent_->running()) {
            agent_->signal(SIGTERM);
            stop_code = agent_->wait(std::chrono::seconds(60));
        }
        EXPECT_EQ(stop_code.value_or(-1), 0) << "the agent did not stop cleanly:\n" << last_lines(agent_log(), 15);
        monitor_->stop();
        monitor_->archive_pass();
        max_open_bytes_ = watch_->max_open_bytes();
        max_open_name_ = watch_->max_open_name();
        peak_used_ = watch_->peak_used_bytes();
        unplanned_full_ = watch_->unplanned_full();
        watch_.reset();

        // ---- the verified trail: the archives shipped off the box, plus what the store still holds ----
        auto [vcode, vout] = run({kHsmaudit, "verify", "--json", "--key", module_ + "/audit.key", "--anchors",
                                  state_ + "/checkpoints/checkpoints.log", offbox_, state_ + "/audit/current",
                                  state_ + "/audit/ready_for_archive"});
        const auto report = json_of(vout.substr(0, vout.rfind('}') + 1));
        std::map<std::string, std::size_t> fault_kinds;
        std::string first_faults;
        for (const auto& f : report.value("faults", nlohmann::json::array())) {
            ++fault_kinds[f.value("kind", "")];
            if (first_faults.size() < 1500) first_faults += "  " + f.dump() + "\n";
        }
        // Per segment: the largest, and the done records in no segment's range.
        std::uint64_t max_segment = 0;
        std::string max_segment_name;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
        for (const auto& s : report.value("segments", nlohmann::json::array())) {
            if (s.value("bytes", 0ull) > max_segment) {
                max_segment = s.value("bytes", 0ull);
                max_segment_name = s.value("file", "");
            }
            if (s.value("records", 0ull) > 0)
                ranges.emplace_back(s.value("first_seq", 0ull), s.value("last_seq", 0ull));
        }
        std::sort(ranges.begin(), ranges.end());
        std::uint64_t done_missing = 0, done_beyond = 0;
        for (const std::uint64_t seq : done) {
            if (seq > produced) ++done_beyond;
            auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(seq, UINT64_MAX));
            if (it == ranges.begin() || std::prev(it)->second < seq) ++done_missing;
        }
        std::map<std::string, std::size_t> alert_kinds;
        for (const auto& [kind, sev] : alerts()) ++alert_kinds[kind];
        std::size_t chain_alerts = 0;
        std::string chain_kinds;
        for (const auto& [k, n] : alert_kinds)
            if (k.starts_with("chain.")) {
                chain_alerts += n;
                chain_kinds += " " + k + "=" + std::to_string(n);
            }
        const std::string logs = all_agent_logs();
        const std::size_t gone_lines = count_lines_with(logs, "acknowledged and are gone") +
                                       count_lines_with(logs, "acknowledged and reused while being read");
        std::vector<std::string> trap_names;
        for (const auto& t : trapd_->notifications()) trap_names.push_back(snmp::trap_name(t));
        std::size_t fault_traps = 0;
        for (const auto& t : trapd_->notifications()) fault_traps += is_fault_trap(t) ? 1 : 0;
        // Temporary files the writers left in the state directory (a failed write must remove its own;
        // a killed agent's may stay until a later pass cleans them up).
        std::vector<std::string> stale_temps;
        {
            std::error_code ec;
            for (fs::recursive_directory_iterator it(state_, ec), end; !ec && it != end; it.increment(ec)) {
                const std::string name = it->path().filename().string();
                if (name.find(".tmp") != std::string::npos || name.starts_with(".part"))
                    stale_temps.push_back(fs::relative(it->path(), state_).string());
            }
        }

        std::string alert_summary;
        for (const auto& [k, n] : alert_kinds) alert_summary += " " + k + "=" + std::to_string(n);
        std::printf(
            "DISK-FULL SUMMARY variant='%s' produced=%llu done_records=%zu verified=%llu first=%llu last=%llu "
            "verdict=%s verify_exit=%d faults=%llu anchors=%llu done_missing=%llu acked_while_full=%llu blocked=%s "
            "full_for=%.1fs recovered_in=%.1fs log_most_repeated=%zu max_open_segment=%llu(%s) "
            "max_segment=%llu(%s) archives_shipped=%zu peak_tmpfs_used=%lluKiB unplanned_full=%zu traps=%zu "
            "fault_traps=%zu chain_alerts=%zu acked_gone_lines=%zu agent_starts=%d stale_temp_files=%zu\n  alerts:%s\n",
            name_of(v), static_cast<unsigned long long>(produced), done.size(),
            static_cast<unsigned long long>(report.value("records", 0ull)),
            static_cast<unsigned long long>(report.value("first_seq", 0ull)),
            static_cast<unsigned long long>(report.value("last_seq", 0ull)), report.value("verdict", "?").c_str(),
            vcode, static_cast<unsigned long long>(report.value("faults_total", 0ull)),
            static_cast<unsigned long long>(report.value("anchors_checked", 0ull)),
            static_cast<unsigned long long>(done_missing), static_cast<unsigned long long>(acked_while_full_),
            was_blocked_ ? "yes" : "no", freed_at_ - full_at_, recovered_in_, most_repeated_,
            static_cast<unsigned long long>(max_open_bytes_), max_open_name_.c_str(),
            static_cast<unsigned long long>(max_segment), max_segment_name.c_str(), monitor_->archives_copied(),
            static_cast<unsigned long long>(peak_used_ >> 10), unplanned_full_.size(), trap_names.size(), fault_traps,
            chain_alerts, gone_lines, agent_starts_, stale_temps.size(), alert_summary.c_str());
        std::fflush(stdout);

        // ---- the assertions ----
        EXPECT_EQ(vcode, 0) << (report.contains("faults") ? "" : vout.substr(0, 3000));
        EXPECT_EQ(report.value("verdict", ""), "verified") << "the first faults:\n" << first_faults;
        for (const auto& [k, n] : fault_kinds) ADD_FAILURE() << "verify: " << n << " fault(s) " << k;
        EXPECT_GT(produced, 0u);
        EXPECT_EQ(report.value("first_seq", 0ull), 1u);
        EXPECT_EQ(report.value("last_seq", 0ull), produced) << "records the module produced are not in the trail";
        EXPECT_EQ(report.value("records", 0ull), produced) << "every record 1.." << produced << " exactly once";
        EXPECT_EQ(done_missing, 0u) << done_missing << " of the " << done.size()
                                    << " records of operations hsmcore load saw done are in no stored segment";
        EXPECT_EQ(done_beyond, 0u) << "records reported done beyond what the module says it produced";
        EXPECT_GE(report.value("anchors_checked", 0ull), 1u) << "no checkpoint anchored the trail";
        EXPECT_EQ(chain_alerts, 0u) << "chain alerts with nothing tampered with:" << chain_kinds;
        EXPECT_EQ(gone_lines, 0u) << "the agent read entries it had acknowledged without storing them";
        EXPECT_LE(max_segment, kSegmentBytesBound) << max_segment_name << ": rotation stopped";
        EXPECT_LE(max_open_bytes_, kSegmentBytesBound) << max_open_name_ << ": the open segment grew past the limit";
        if (v == Variant::freed_after_5s || v == Variant::freed_after_blocked) {
            EXPECT_TRUE(stale_temps.empty()) << stale_temps.size() << " temporary file(s) left in the state directory, "
                                             << "the first: " << (stale_temps.empty() ? "" : stale_temps.front());
        }
        EXPECT_TRUE(unplanned_full_.empty())
            << "the tmpfs was full outside the planned phase (the test's space budget, not the agent) at t+"
            << (unplanned_full_.empty() ? 0.0 : unplanned_full_.front()) << " s";
    }

    std::unique_ptr<TmpfsMount> mount_;
    std::unique_ptr<snmp::TrapReceiver> trapd_;
    std::unique_ptr<Monitor> monitor_;
    std::unique_ptr<StoreWatch> watch_;
    std::unique_ptr<Process> load_;
    std::unique_ptr<Ballast> ballast_;
    std::optional<hsmcore::host::ControlClient> control_;
    std::string offbox_;
    Clock::time_point t0_ = Clock::now();
    int trapd_port_ = 0;
    int agent_starts_ = 0;
    std::size_t log_from_ = 0, log_to_ = 0;
    std::string full_log_;
    double full_at_ = 0, freed_at_ = 0, recovered_in_ = -1;
    std::uint64_t acked_while_full_ = 0, stored_while_full_ = 0;
    bool was_blocked_ = false;
    std::size_t most_repeated_ = 0;
    std::size_t archives_at_free_ = 0;
    // From the StoreWatch, kept when it stops.
    std::uint64_t max_open_bytes_ = 0, peak_used_ = 0;
    std::string max_open_name_;
    std::vector<double> unplanned_full_;
};

TEST_F(DiskFull, FreedAfterFiveSecondsLosesNothingAndRecoversWithoutRestart) {
    run_variant(Variant::freed_after_5s);
}

TEST_F(DiskFull, FreedAfterTheModuleBlockedLosesNothingAndRecoversWithoutRestart) {
    run_variant(Variant::freed_after_blocked);
}

TEST_F(DiskFull, AgentKilledWhileFullRestartsAndLosesNothing) {
    run_variant(Variant::killed_while_full);
}

TEST_F(DiskFull, AgentKilledAfterRecoveringRestartsAndLosesNothing) {
    run_variant(Variant::killed_after_recovery);
}

}  // namespace
}  // namespace hsmaudit::testing
