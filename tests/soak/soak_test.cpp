// The soak with faults (issue 9; docs/SOAK.md): the module (`hsmcore serve`) under a client load, the
// agent (`hsmauditd`, connect mode) forwarding to rsyslog over RELP/TLS, to librdkafka's mock cluster
// (in this process, so it outlives the agent's restarts) and to snmptrapd (alerts, v2c informs), with
// Prometheus scraping its metrics; all on loopback. A seeded schedule of faults runs meanwhile (printed
// at the start: HSMAUDIT_SOAK_SEED replays it). At the end every record the module produced must be in
// the verified trail exactly once (the records tampered with on purpose reported as faults, nothing
// else), must have reached each receiver at least once, the module must have blocked only in the
// disk-full phase, and the agent's memory must have stayed bounded. One summary line gives the figures.
//
// Short mode (default) runs 160 s of load; HSMAUDIT_SOAK_SECONDS=N runs N s at 20,000 ops/s.
// Waits are bounded polls with generous limits (the machine may be busy compiling); nothing asserts
// a wall-clock duration.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <nlohmann/json.hpp>

#include "hsmcore/errc.h"
#include "tests/integration/exporters/kafka/kafka_test_support.h"
#include "tests/integration/exporters/prometheus/prom_test_util.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"
#include "tests/integration/exporters/snmp/snmp_test_support.h"
#include "tests/soak/soak_support.h"

namespace hsmaudit::testing::soak {
namespace {

const std::string kBin = HSMAUDIT_BINARY_DIR;
const std::string kHsmcore = kBin + "/hsmcore/hsmcore";
const std::string kHsmauditd = kBin + "/agent/hsmauditd";
const std::string kHsmaudit = kBin + "/agent/hsmaudit";
constexpr const char* kSerial = "SOAK1";

nlohmann::json json_of(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
}

bool wait_until(const std::function<bool()>& ready, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (ready()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ready();
}

/// One stored segment file: its path, epoch (from the name) and the sequence range of its records.
struct SegmentFile {
    std::string path;
    std::uint64_t first = 0, last = 0;
    bool sealed = false;
};

std::optional<SegmentFile> read_segment(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    SegmentFile s;
    s.path = path;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("@seal ")) s.sealed = true;
        if (line.empty() || line[0] < '1' || line[0] > '9') continue;
        const std::uint64_t seq = std::strtoull(line.c_str(), nullptr, 10);
        if (s.first == 0) s.first = seq;
        s.last = seq;
    }
    if (s.first == 0) return std::nullopt;
    return s;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (const auto& l : lines) out << l << '\n';
}

/// Changes one character of record `seq`'s body in `path` (same length): a digit or letter past the
/// sequence number becomes another of its kind. Returns the seq changed, 0 if none.
std::uint64_t corrupt_record(const std::string& path, std::uint64_t seq) {
    auto lines = lines_of(path);
    const std::string prefix = std::to_string(seq) + " ";
    for (auto& l : lines) {
        if (!l.starts_with(prefix)) continue;
        const auto mac_at = l.find(" mac=");
        for (std::size_t i = l.size() / 3; i < (mac_at == std::string::npos ? l.size() : mac_at); ++i) {
            char& c = l[i];
            const bool bumpable = (c >= '0' && c <= '8') || (c >= 'a' && c <= 'y') || (c >= 'A' && c <= 'Y');
            if (!bumpable) continue;
            ++c;
            write_lines(path, lines);
            return seq;
        }
    }
    return 0;
}

/// Deletes the line of record `seq` from `path`. Returns the seq deleted, 0 if not found.
std::uint64_t delete_record(const std::string& path, std::uint64_t seq) {
    auto lines = lines_of(path);
    const std::string prefix = std::to_string(seq) + " ";
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!lines[i].starts_with(prefix)) continue;
        lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
        write_lines(path, lines);
        return seq;
    }
    return 0;
}

/// The name of a segment file (hsm_<serial>_<epoch>.log) found in a verifier's fault location.
std::string segment_name_in(const std::string& file) {
    const auto at = file.find("hsm_");
    if (at == std::string::npos) return file;
    const auto end = file.find(".log", at);
    return end == std::string::npos ? file.substr(at) : file.substr(at, end + 4 - at);
}

class Soak : public ::testing::Test {
protected:
    void SetUp() override {
        s_ = settings_from_env();
        dir_ = relp::make_temp_dir("soak");
        ASSERT_FALSE(dir_.empty());
        module_ = dir_ + "/module";
        state_ = dir_ + "/state";
        offbox_ = dir_ + "/offbox";
    }
    void TearDown() override {
        monitor_.reset();
        burst_.reset();
        load_.reset();
        agent_.reset();
        prometheus_.reset();
        trapd_.reset();
        rsyslog_.reset();
        tail_.reset();
        kafka_.reset();
        serve_.reset();
        if (mounted_) {
            // Lazy unmount, retried: a leftover tmpfs would outlive the test in /tmp.
            const std::string mnt = state_ + "/audit";
            for (int i = 0; i < 20 && ::umount2(mnt.c_str(), MNT_DETACH) != 0 && errno != EINVAL; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (Process::slurp("/proc/mounts").find(" " + mnt + " ") != std::string::npos)
                std::cout << "soak: could not unmount " << mnt << ": " << std::strerror(errno) << "\n";
            mounted_ = false;
        }
        if (!HasFailure() && std::getenv("HSMAUDIT_KEEP_TEST_DIRS") == nullptr) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        } else {
            std::cout << "soak: kept " << dir_ << "\n";
        }
    }

    std::pair<int, std::string> run(const std::vector<std::string>& argv,
                                    std::chrono::seconds limit = std::chrono::seconds(600)) {
        return testing::run(argv, dir_ + "/cmd" + std::to_string(++commands_), limit);
    }
    double now() const { return seconds_since(t0_); }
    void log(const std::string& what) {
        std::printf("soak t+%.1fs %s\n", now(), what.c_str());
        (void)std::fflush(stdout);
    }

    // ---- the pieces -------------------------------------------------------------------------------

    void start_module() {
        auto [code, out] = run({kHsmcore, "init", "--dir", module_, "--ring-size", s_.ring_size, "--serial", kSerial});
        ASSERT_EQ(code, 0) << out;
        serve_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--",
                                                                    kHsmcore, "serve", "--dir", module_},
                                           dir_ + "/serve.out", dir_ + "/serve.err");
        ASSERT_TRUE(wait_until([&] { return fs::exists(module_ + "/control.sock"); }, std::chrono::seconds(60)))
            << serve_->err();
    }

    /// The store's file system: a tmpfs mounted on <state>/audit when this process may mount (root), so
    /// the disk-full phase fills a real file system; otherwise the directory as it is, and the phase
    /// relies on store.quota alone.
    void prepare_store() {
        fs::create_directories(state_ + "/audit");
        ::chmod(state_.c_str(), 0700);
        if (std::getenv("HSMAUDIT_SOAK_NO_MOUNT") == nullptr) {
            const std::string opts = "size=" + std::to_string(s_.quota + (48ull << 20)) + ",mode=0700";
            mounted_ = ::mount("tmpfs", (state_ + "/audit").c_str(), "tmpfs", 0, opts.c_str()) == 0;
        }
        store_fs_ = mounted_ ? "tmpfs of " + std::to_string((s_.quota >> 20) + 48) + " MiB" : "quota only (no mount)";
    }

    void start_receivers() {
        // RELP/TLS: rsyslog (Direct queues: a record is acknowledged once written).
        ASSERT_TRUE(relp::Pki::get().ok) << relp::Pki::get().log;
        rsyslog_ = std::make_unique<relp::Rsyslog>();
        ASSERT_TRUE(rsyslog_->start()) << rsyslog_->diagnostics();
        // Kafka: the mock cluster lives in this process; a consumer follows the audit topic.
        kafka_ = std::make_unique<kafka::MockCluster>(3);
        kafka_->create_topic("hsm.audit", 1);
        kafka_->create_topic("hsm.alerts", 1);
        kafka_->create_topic("hsm.checkpoints", 1);
        tail_ = std::make_unique<KafkaTail>(kafka_->bootstraps(), "hsm.audit", kSerial, t0_);
        ASSERT_TRUE(tail_->error().empty()) << tail_->error();
        // SNMP: snmptrapd, v2c informs (acknowledged by the receiver).
        ASSERT_FALSE(snmp::base_mib_dir().empty()) << snmp::kMissingMibs;
        trapd_port_ = snmp::free_udp_port();
        fs::create_directories(dir_ + "/trapd");
        start_trapd();
        ASSERT_TRUE(trapd_->running()) << trapd_->errors();
        snmp::write_file(dir_ + "/community", "public\n");
        metrics_port_ = prom::free_port();
        prometheus_port_ = prom::free_port();
    }
    void start_trapd() {
        trapd_ =
            std::make_unique<snmp::TrapReceiver>(dir_ + "/trapd", trapd_port_, "authCommunity log,execute public\n");
    }
    void start_prometheus() {
        if (prometheus_ == nullptr) {
            prom::write(dir_ + "/prom.yml",
                        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                        "scrape_configs: [{job_name: hsmaudit, static_configs: [{targets: ['127.0.0.1:" +
                            std::to_string(metrics_port_) + "']}]}]\n",
                        0644);
        }
        prometheus_ = std::make_unique<Process>(
            std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--", prom::tool("prometheus"),
                                     "--config.file=" + dir_ + "/prom.yml", "--storage.tsdb.path=" + dir_ + "/prom",
                                     "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
                                     "--log.level=warn"},
            dir_ + "/prometheus.out", dir_ + "/prometheus.err." + std::to_string(++prometheus_starts_));
    }

    void write_config(const std::string& segment_bytes) {
        const auto& pki = relp::Pki::get();
        std::ofstream(dir_ + "/agent.yaml", std::ios::trunc)
            << "agent:\n  state_dir: " << state_ << "\n  status_interval: 500ms\n  log_level: info\n"
            << "module:\n  mode: connect\n  dir: " << module_ << "\n"
            << "store:\n  encrypt: false\n  quota: " << s_.quota << "\n  quota_check_interval: 1s\n"
            << "rotation:\n  max_segment_bytes: " << segment_bytes << "\n"
            << "archive:\n  interval: 30s\n  max_segments: 16\n"
            << "alerts:\n  status_interval: 100ms\n"
            << "checkpoint:\n  interval: 10s\n"
            << "metrics:\n  enabled: true\n  listen: 127.0.0.1:" << metrics_port_ << "\n"
            << "exporters:\n"
            << "  siem:\n    type: relp\n    streams: audit,alerts,checkpoints\n    backoff_max: 2s\n"
            << "    relp:\n      target: " << rsyslog_->target() << "\n      ca: " << pki.ca
            << "\n      cert: " << pki.client_cert << "\n      key: " << pki.client_key
            << "\n      permitted_peers: server.test\n"
            << "  soc:\n    type: kafka\n    format: json\n    streams: audit,alerts,checkpoints\n    backoff_max: "
               "2s\n    ack_timeout: 10s\n"
            << "    kafka:\n      brokers: " << kafka_->bootstraps()
            << "\n      properties: compression.type=zstd,linger.ms=50\n      line_header: false\n"
            << "      connect_timeout: 5s\n      message_timeout: 60s\n"
            << "  noc:\n    type: snmp\n    streams: alerts\n    backoff_max: 2s\n"
            << "    snmp:\n      receivers: trapd\n      holddown: 5s\n      receiver:\n        trapd:\n"
            << "          address: udp:127.0.0.1:" << trapd_port_ << "\n          version: v2c\n"
            << "          notify: inform\n          community_file: " << dir_ << "/community\n"
            << "          timeout: 500ms\n          retries: 1\n          retry_interval: 1s\n";
    }

    void start_agent() {
        ++agent_starts_;
        agent_ = std::make_unique<Process>(std::vector<std::string>{"/usr/bin/setpriv", "--pdeathsig", "KILL", "--",
                                                                    kHsmauditd, "-c", dir_ + "/agent.yaml"},
                                           dir_ + "/agent.out." + std::to_string(agent_starts_),
                                           dir_ + "/agent.err." + std::to_string(agent_starts_));
        // setpriv execs the agent: the pid is the agent's.
        if (monitor_) monitor_->set_agent_pid(agent_->pid());
    }
    std::string agent_log() const { return Process::slurp(dir_ + "/agent.err." + std::to_string(agent_starts_)); }

    /// The alerts the agent logged so far: (kind, seq) per line.
    std::vector<std::pair<std::string, std::uint64_t>> alerts() const {
        std::vector<std::pair<std::string, std::uint64_t>> out;
        std::ifstream in(state_ + "/alerts/alerts.jsonl");
        for (std::string line; std::getline(in, line);) {
            const auto j = json_of(line);
            out.emplace_back(j.value("kind", ""), j.value("seq", std::uint64_t{0}));
        }
        return out;
    }
    std::size_t count_alerts(const std::string& prefix) const {
        std::size_t n = 0;
        for (const auto& [k, seq] : alerts()) n += k.starts_with(prefix) ? 1 : 0;
        return n;
    }

    /// An SO session on partition 0, to set the module clock.
    /// False if the module refused it because its log is full (blocked): the step is tried again later.
    bool set_clock(std::int64_t offset_ms) {
        if (!so_) {
            auto c = hsmcore::host::ControlClient::connect(module_ + "/control.sock");
            if (!c) {
                ADD_FAILURE() << c.error().describe();
                return true;
            }
            so_.emplace(std::move(*c));
            auto pins = Process::slurp(module_ + "/client.pins");
            std::string pin;
            std::istringstream in(pins);
            for (std::string role, part, p; in >> role >> part >> p;)
                if (role == "SO" && part == "0") pin = p;
            auto o = so_->call("OPEN 0");
            if (!o) {
                ADD_FAILURE() << o.error().describe();
                return true;
            }
            so_session_ = o->get_u64("handle");
            auto l = so_->call("LOGIN " + std::to_string(so_session_) + " SO " + pin);
            if (!l) {
                ADD_FAILURE() << l.error().describe();
                return true;
            }
        }
        auto r = so_->call("CLOCK " + std::to_string(so_session_) + " " + std::to_string(offset_ms) + " 0");
        if (!r && r.error().code == hsmcore::errc::log_full) return false;
        EXPECT_TRUE(r) << "CLOCK: " << r.error().describe();
        return true;
    }

    hsmcore::host::ReplyFields module_status() {
        auto c = hsmcore::host::ControlClient::connect(module_ + "/control.sock");
        if (!c) return {};
        auto r = c->call("STATUS");
        return r ? *r : hsmcore::host::ReplyFields{};
    }

    // ---- faults -----------------------------------------------------------------------------------

    /// While the agent is down: one character changed in a record of the oldest sealed segment waiting in
    /// ready_for_archive, one record deleted from the next one (both already delivered everywhere, so the
    /// receivers' copies are intact), and one character changed in a record of the open segment that is
    /// also delivered everywhere already (the agent re-verifies the segment at its start; a damaged
    /// record not yet delivered is skipped, never delivered: a destination that was down, here Kafka,
    /// would miss it by design).
    /// The sealed segments waiting in ready_for_archive, oldest first, and those of them both
    /// receivers hold whole.
    struct ReadySegments {
        std::vector<SegmentFile> ready, delivered;
        SeqCounts relp, kafka;
    };
    ReadySegments ready_segments() {
        ReadySegments r;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(state_ + "/audit/ready_for_archive", ec))
            if (e.path().extension() == ".log")
                if (auto s = read_segment(e.path().string()); s && s->sealed) r.ready.push_back(*s);
        std::sort(r.ready.begin(), r.ready.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        count_rsyslog(rsyslog_->received_path(), kSerial, r.relp);
        r.kafka = tail_->snapshot();
        for (const auto& s : r.ready)
            if (r.relp.covers(s.first, s.last) && r.kafka.covers(s.first, s.last)) r.delivered.push_back(s);
        return r;
    }

    void tamper() {
        auto [ready, delivered, relp, kafka] = ready_segments();
        if (delivered.size() >= 2) {
            const auto& a = delivered[0];
            const auto& b = delivered[1];
            if (auto seq = corrupt_record(a.path, a.first + (a.last - a.first) / 2); seq != 0) {
                corrupted_.push_back(seq);
                tampered_segments_.insert(fs::path(a.path).filename().string());
            }
            if (auto seq = delete_record(b.path, b.first + (b.last - b.first) / 2); seq != 0) {
                deleted_.push_back(seq);
                tampered_segments_.insert(fs::path(b.path).filename().string());
            }
        }
        for (const auto& e : fs::directory_iterator(state_ + "/audit/current")) {
            if (e.path().extension() != ".log") continue;
            auto s = read_segment(e.path().string());
            if (!s || s->last - s->first < 10) continue;
            // The middle record, or the newest before it that both receivers hold.
            std::uint64_t target = s->first + (s->last - s->first) / 2;
            while (target > s->first && !(relp.covers(target, target) && kafka.covers(target, target))) --target;
            if (!(relp.covers(target, target) && kafka.covers(target, target))) continue;
            if (auto seq = corrupt_record(s->path, target); seq != 0) {
                corrupted_open_ = seq;
                corrupted_.push_back(seq);
                tampered_segments_.insert(fs::path(s->path).filename().string());
            }
        }
        std::string what = "tamper: ready_for_archive had " + std::to_string(ready.size()) + " sealed segments (" +
                           std::to_string(delivered.size()) + " delivered everywhere); corrupted";
        for (auto s : corrupted_) what += " " + std::to_string(s);
        what += ", deleted";
        for (auto s : deleted_) what += " " + std::to_string(s);
        what += corrupted_open_ != 0 ? " (open segment: " + std::to_string(corrupted_open_) + ")"
                                     : " (open segment: none, or none of its records delivered everywhere yet)";
        log(what);
    }

    void disk_fill() {
        struct statvfs v {};
        std::uint64_t bytes = s_.quota;
        if (mounted_ && ::statvfs((state_ + "/audit").c_str(), &v) == 0) {
            const std::uint64_t free_bytes = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
            bytes = free_bytes > (2ull << 20) ? free_bytes - (2ull << 20) : 0;
        }
        const int fd = ::open((state_ + "/audit/ballast.fill").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd >= 0) {
            const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
            ::close(fd);
            log("disk_fill: " + std::to_string(bytes >> 20) + " MiB of ballast in the export area" +
                (rc == 0 ? "" : " (fallocate failed: " + std::string(std::strerror(rc)) + ")"));
        }
        disk_full_from_ = now();
    }
    void disk_free() {
        fs::remove(state_ + "/audit/ballast.fill");
        disk_full_to_ = now();
        log("disk_free: ballast removed");
    }
    bool blocked_long_enough() const {
        if (disk_full_from_ < 0 || disk_full_to_ >= 0) return false;
        for (const auto& w : monitor_->blocked_windows())
            if (w.from >= disk_full_from_ && w.to < 0 && now() - w.from >= 3.0) return true;
        return false;
    }

    /// Runs a step; false if it must be tried again a little later.
    bool perform(const Step& step) {
        switch (step.action) {
            case Action::agent_kill:
                // The tamper needs records every receiver already holds (a receiver that was down
                // may still be catching up): the agent runs on until two sealed segments are
                // delivered everywhere, for up to 60 s.
                if (step.arg == 1 &&
                    !wait_until([&] { return ready_segments().delivered.size() >= 2; }, std::chrono::seconds(60)))
                    log("tamper: no two sealed segments delivered everywhere after 60 s");
                agent_->signal(SIGKILL);
                agent_->wait(std::chrono::seconds(30));
                monitor_->set_agent_pid(0);
                ++agent_kills_;
                if (step.arg == 1) tamper();
                break;
            case Action::agent_start: {
                const auto chain_before = count_alerts("chain.");
                start_agent();
                if (corrupted_open_ != 0 && !open_tamper_checked_) {
                    open_tamper_checked_ = true;
                    const bool alerted =
                        wait_until([&] { return count_alerts("chain.") > chain_before; }, std::chrono::seconds(60));
                    EXPECT_TRUE(alerted) << "the agent did not alert the record changed in its open segment";
                    log(std::string("agent re-verified its open segment: ") +
                        (alerted ? "chain alert raised" : "NO alert"));
                }
                break;
            }
            case Action::rsyslog_kill: rsyslog_->kill(); break;
            case Action::rsyslog_start: EXPECT_TRUE(rsyslog_->start()) << rsyslog_->diagnostics(); break;
            case Action::kafka_down:
                for (int b = 1; b <= 3; ++b) kafka_->broker_down(b);
                break;
            case Action::kafka_up:
                for (int b = 1; b <= 3; ++b) kafka_->broker_up(b);
                break;
            case Action::trapd_kill: trapd_->stop(); break;
            case Action::trapd_start:
                // snmptrapd truncates its -Lf file at start (the fixture does not pass -A): keep what it logged.
                traps_before_ += trapd_->log();
                start_trapd();
                break;
            case Action::prometheus_stop:
                prometheus_->signal(SIGKILL);
                prometheus_->wait(std::chrono::seconds(30));
                break;
            case Action::prometheus_start: start_prometheus(); break;
            case Action::disk_fill: disk_fill(); break;
            case Action::disk_free:
                if (disk_full_to_ < 0) disk_free();
                break;
            case Action::clock_forward: return set_clock(3'600'000);
            case Action::clock_back: return set_clock(0);
            case Action::burst_start:
                burst_ = std::make_unique<Process>(
                    std::vector<std::string>{kHsmcore, "load", "--dir", module_, "--rate", std::to_string(4 * s_.rate),
                                             "--duration", "10", "--threads", "4", "--seed",
                                             std::to_string(s_.seed + 7), "--json"},
                    dir_ + "/burst.out", dir_ + "/burst.err");
                break;
            case Action::reload:
                write_config("786432");
                agent_->signal(SIGHUP);
                reloads_ += 1;
                break;
        }
        return true;
    }

    Settings s_;
    std::string dir_, module_, state_, offbox_, store_fs_;
    bool mounted_ = false;
    int commands_ = 0;
    Clock::time_point t0_ = Clock::now();
    std::unique_ptr<Process> serve_, agent_, load_, burst_, prometheus_;
    std::unique_ptr<relp::Rsyslog> rsyslog_;
    std::unique_ptr<kafka::MockCluster> kafka_;
    std::unique_ptr<KafkaTail> tail_;
    std::unique_ptr<snmp::TrapReceiver> trapd_;
    std::unique_ptr<Monitor> monitor_;
    std::optional<hsmcore::host::ControlClient> so_;
    std::uint64_t so_session_ = 0;
    int trapd_port_ = 0, metrics_port_ = 0, prometheus_port_ = 0;
    int agent_starts_ = 0, agent_kills_ = 0, prometheus_starts_ = 0, reloads_ = 0;
    std::vector<std::uint64_t> corrupted_, deleted_;
    std::uint64_t corrupted_open_ = 0;
    bool open_tamper_checked_ = false;
    std::set<std::string> tampered_segments_;
    std::string traps_before_;
    double disk_full_from_ = -1, disk_full_to_ = -1;
};

TEST_F(Soak, FaultsUnderLoadLoseNothingAndAreDetected) {
    const double disk_full_max = s_.long_mode ? 90 : 60;
    auto schedule = make_schedule(s_.seed, s_.load_seconds, disk_full_max);
    std::printf(
        "soak: seed %llu (replay: HSMAUDIT_SOAK_SEED=%llu%s), %s mode, %.0f s of load at %.0f ops/s, ring %s "
        "bytes, store.quota %llu MiB\nsoak: fault schedule (seconds after the load starts):\n%s",
        static_cast<unsigned long long>(s_.seed), static_cast<unsigned long long>(s_.seed),
        s_.long_mode ? (" HSMAUDIT_SOAK_SECONDS=" + std::to_string(static_cast<long>(s_.load_seconds))).c_str() : "",
        s_.long_mode ? "long" : "short", s_.load_seconds, s_.rate, s_.ring_size.c_str(),
        static_cast<unsigned long long>(s_.quota >> 20), describe(schedule).c_str());
    (void)std::fflush(stdout);

    // ---- set up: module, receivers, store, agent, Prometheus ----
    t0_ = Clock::now();
    ASSERT_NO_FATAL_FAILURE(start_module());
    ASSERT_NO_FATAL_FAILURE(start_receivers());
    prepare_store();
    write_config("1048576");
    {
        auto [code, out] = run({kHsmauditd, "-c", dir_ + "/agent.yaml", "--check-config"});
        ASSERT_EQ(code, 0) << out;
    }
    monitor_ = std::make_unique<Monitor>(module_ + "/control.sock", state_ + "/audit/archive", offbox_, t0_);
    start_agent();
    ASSERT_TRUE(wait_until([&] { return fs::exists(state_ + "/status.json"); }, std::chrono::seconds(60)))
        << agent_log();
    start_prometheus();
    log("store: " + store_fs_ + "; kafka " + kafka_->bootstraps() + "; rsyslog " + rsyslog_->target() +
        "; snmptrapd udp:" + std::to_string(trapd_port_) + "; metrics :" + std::to_string(metrics_port_) +
        "; prometheus :" + std::to_string(prometheus_port_));

    // ---- the load and the schedule ----
    const double load_start = now();
    load_ = std::make_unique<Process>(
        std::vector<std::string>{kHsmcore, "load", "--dir", module_, "--rate", std::to_string(s_.rate), "--duration",
                                 std::to_string(s_.load_seconds), "--threads", "4", "--seed", std::to_string(s_.seed),
                                 "--json"},
        dir_ + "/load.out", dir_ + "/load.err");
    std::size_t next = 0;
    while (next < schedule.size() || load_->running()) {
        const double t = now() - load_start;
        if (blocked_long_enough()) disk_free();
        if (next < schedule.size() && t >= schedule[next].at) {
            const Step step = schedule[next++];
            if (step.action != Action::disk_free || disk_full_to_ < 0) log(name_of(step.action));
            if (!perform(step)) {
                // Refused while the module is blocked (its log is full): again in 2 s.
                log(std::string(name_of(step.action)) + " refused (log full): again in 2 s");
                Step again = step;
                again.at = t + 2;
                const auto at = std::upper_bound(schedule.begin() + static_cast<std::ptrdiff_t>(next), schedule.end(),
                                                 again, [](const Step& a, const Step& b) { return a.at < b.at; });
                schedule.insert(at, again);
            }
            if (HasFatalFailure()) return;
            continue;
        }
        if (next >= schedule.size() && Clock::now() - t0_ > std::chrono::duration<double>(s_.load_seconds + 600)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(load_->wait(std::chrono::seconds(120)).has_value()) << "the load did not end";
    const auto load = json_of(load_->out());
    const auto burst = burst_ ? json_of(burst_->out()) : nlohmann::json::object();
    log("load ended: " + load.dump());
    if (burst_) log("burst: " + burst.dump());
    EXPECT_EQ(load.value("lost_connections", 1u), 0u) << load_->err();
    if (disk_full_to_ < 0) disk_free();
    ASSERT_TRUE(agent_->running()) << "the agent died: " << agent_log();

    // ---- drain: the agent acknowledges everything, the receivers get everything ----
    auto ms = module_status();
    ASSERT_TRUE(wait_until(
        [&] {
            ms = module_status();
            return ms.get_u64("next_entry") != 0 && ms.get_u64("oldest_entry") == ms.get_u64("next_entry");
        },
        std::chrono::seconds(300)))
        << "the agent did not drain the module";
    const std::uint64_t produced = ms.get_u64("next_seq") - 1;
    SeqCounts relp, kafka;
    // Each receiver until it has everything, or its missing count stopped shrinking for 60 s.
    auto wait_complete = [&](const std::function<std::size_t()>& missing) {
        std::size_t best = missing();
        auto progress = Clock::now();
        const auto deadline = Clock::now() + std::chrono::seconds(300);
        while (best != 0 && Clock::now() < deadline && Clock::now() - progress < std::chrono::seconds(60)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            if (const std::size_t m = missing(); m < best) {
                best = m;
                progress = Clock::now();
            }
        }
        return best == 0;
    };
    const bool relp_all = wait_complete([&] {
        relp = SeqCounts();
        count_rsyslog(rsyslog_->received_path(), kSerial, relp);
        return relp.missing(produced).size();
    });
    const bool kafka_all = wait_complete([&] {
        kafka = tail_->snapshot();
        return kafka.missing(produced).size();
    });
    std::vector<std::string> traps;
    {
        std::istringstream in(traps_before_ + trapd_->log());
        for (std::string line; std::getline(in, line);)
            if (line.find("snmpTrapOID.0 = OID: ") != std::string::npos) traps.push_back(line);
    }
    for (const auto& g : tail_->gap_log())
        log("kafka consumer gap (the mock cluster dropped them before they were read): " + g);
    agent_->signal(SIGTERM);
    const auto stop_code = agent_->wait(std::chrono::seconds(120));
    EXPECT_EQ(stop_code.value_or(-1), 0) << agent_log();
    monitor_->stop();

    // ---- the verified trail: off-box archive copies plus what the store still holds ----
    std::vector<std::string> verify_args = {kHsmaudit,
                                            "verify",
                                            "--json",
                                            "--key",
                                            module_ + "/audit.key",
                                            offbox_,
                                            state_ + "/audit/ready_for_archive",
                                            state_ + "/audit/current"};
    auto [vcode, vout] = run(verify_args);
    const auto report = json_of(vout.substr(0, vout.rfind('}') + 1));
    std::map<std::string, std::size_t> fault_kinds;
    std::set<std::uint64_t> fault_seqs;
    std::vector<std::string> unexpected_faults;
    for (const auto& f : report.value("faults", nlohmann::json::array())) {
        const std::string kind = f.value("kind", "");
        ++fault_kinds[kind];
        if (f.contains("seq")) fault_seqs.insert(f.value("seq", std::uint64_t{0}));
        if (tampered_segments_.count(segment_name_in(f.value("file", ""))) == 0) unexpected_faults.push_back(f.dump());
    }
    const std::uint64_t verified_records = report.value("records", std::uint64_t{0});

    // ---- what the agent said, what the module did ----
    const auto windows = monitor_->blocked_windows();
    std::vector<std::string> blocked_outside;
    for (const auto& w : windows)
        if (disk_full_from_ < 0 || w.from < disk_full_from_ || (disk_full_to_ >= 0 && w.from > disk_full_to_))
            blocked_outside.push_back(std::to_string(w.from) + "-" + std::to_string(w.to));
    std::uint64_t refused_before_phase = 0;
    for (const auto& [t, n] : monitor_->refusals())
        if (disk_full_from_ >= 0 && t < disk_full_from_) refused_before_phase = n;
    const auto prom = prom::http_get("http://127.0.0.1:" + std::to_string(prometheus_port_) +
                                         "/api/v1/query?query=count_over_time(up%7Bjob%3D%22hsmaudit%22%7D%5B1h%5D)",
                                     dir_ + "/promq");
    std::string prom_samples = "?";
    if (const auto pj = json_of(prom.body); pj.contains("data") && !pj["data"]["result"].empty())
        prom_samples = pj["data"]["result"][0]["value"][1].get<std::string>();
    std::size_t chain_traps = 0;
    for (const auto& t : traps) chain_traps += snmp::trap_name(t).find("hsmChain") != std::string::npos ? 1 : 0;

    // ---- the summary line ----
    const double rss_mib = static_cast<double>(monitor_->peak_hwm_kib()) / 1024.0;
    std::printf(
        "SOAK SUMMARY seed=%llu mode=%s load=%.0fs rate=%.0f achieved=%.0f/s burst=%.0f/s produced=%llu verified=%llu "
        "verdict=%s tampered(corrupted=%zu deleted=%zu) faults=%zu unexpected_faults=%zu relp(missing=%zu dups=%llu) "
        "kafka(missing=%zu dups=%llu offset_gaps=%llu consumers=%llu) snmp_traps=%zu(chain=%zu) "
        "prometheus_up_samples=%s "
        "agent_kills=%d reloads=%d blocked_windows=%zu outside_disk_full=%zu disk_full=%.0f-%.0fs ring_peak=%.0f%% "
        "refused=%llu agent_peak_rss=%.1fMiB alerts(chain=%zu clock=%zu quota_full=%zu acks_paused=%zu blocked=%zu "
        "exporter_down=%zu) store=%s\n",
        static_cast<unsigned long long>(s_.seed), s_.long_mode ? "long" : "short", s_.load_seconds, s_.rate,
        load.value("ops_per_s", 0.0), burst.value("ops_per_s", 0.0), static_cast<unsigned long long>(produced),
        static_cast<unsigned long long>(verified_records), report.value("verdict", "?").c_str(), corrupted_.size(),
        deleted_.size(), static_cast<std::size_t>(report.value("faults_total", 0)), unexpected_faults.size(),
        relp.missing(produced).size(), static_cast<unsigned long long>(relp.duplicates(produced)),
        kafka.missing(produced).size(), static_cast<unsigned long long>(kafka.duplicates(produced)),
        static_cast<unsigned long long>(tail_->offset_gaps()), static_cast<unsigned long long>(tail_->consumers()),
        traps.size(), chain_traps, prom_samples.c_str(), agent_kills_, reloads_, windows.size(), blocked_outside.size(),
        disk_full_from_, disk_full_to_, monitor_->peak_ring_fill() * 100,
        static_cast<unsigned long long>(monitor_->refusals().empty() ? 0 : monitor_->refusals().back().second), rss_mib,
        count_alerts("chain."), count_alerts("module.clock"), count_alerts("store.quota_full"),
        count_alerts("drain.acks_paused"), count_alerts("module.blocked"), count_alerts("exporter.down"),
        store_fs_.c_str());
    (void)std::fflush(stdout);

    // ---- the assertions: correctness only ----
    EXPECT_GT(produced, 0u);
    // The verified trail: every record once; the tampered ones reported, nothing else.
    EXPECT_EQ(report.value("first_seq", std::uint64_t{0}), 1u) << vout.substr(0, 4000);
    EXPECT_EQ(report.value("last_seq", std::uint64_t{0}), produced) << vout.substr(0, 4000);
    EXPECT_EQ(verified_records, produced - deleted_.size()) << "every record once, minus the one deleted on purpose";
    EXPECT_EQ(fault_kinds.count("sequence_duplicate"), 0u) << vout.substr(0, 4000);
    EXPECT_EQ(fault_kinds.count("segment_missing"), 0u) << "an archive was not copied off in time, or a segment lost";
    EXPECT_EQ(fault_kinds.count("segment_duplicate"), 0u) << vout.substr(0, 4000);
    EXPECT_TRUE(unexpected_faults.empty()) << "faults outside the tampered segments:\n"
                                           << (unexpected_faults.empty() ? "" : unexpected_faults.front());
    for (auto seq : corrupted_) EXPECT_EQ(fault_seqs.count(seq), 1u) << "corrupted record " << seq << " not reported";
    for (auto seq : deleted_)
        EXPECT_TRUE(fault_seqs.count(seq) == 1 || fault_seqs.count(seq + 1) == 1)
            << "deleted record " << seq << " not reported";
    EXPECT_EQ(vcode, corrupted_.empty() && deleted_.empty() ? 0 : 1);
    EXPECT_FALSE(corrupted_.empty()) << "nothing was tampered with: the tamper step found no delivered sealed segment";
    // The receivers: everything at least once.
    EXPECT_TRUE(relp_all) << "rsyslog is missing " << relp.missing(produced).size() << " records, first "
                          << (relp.missing(produced).empty() ? 0 : relp.missing(produced).front());
    EXPECT_TRUE(kafka_all) << "kafka is missing " << kafka.missing(produced).size() << " records (consumer offset gaps "
                           << tail_->offset_gaps() << ")";
    EXPECT_FALSE(traps.empty()) << trapd_->log();
    EXPECT_GT(chain_traps, 0u) << "the chain fault did not reach the NMS";
    // The module blocked, and only in the disk-full phase; the agent said so.
    EXPECT_GE(windows.size(), 1u) << "the module never blocked in the disk-full phase";
    EXPECT_TRUE(blocked_outside.empty()) << "blocked outside the disk-full phase: " << blocked_outside.front();
    EXPECT_EQ(refused_before_phase, 0u) << "refusals before the disk-full phase";
    EXPECT_GE(count_alerts("drain.acks_paused"), 1u);
    EXPECT_GE(count_alerts("module.blocked"), 1u);
    EXPECT_GE(count_alerts("module.clock_backwards"), 1u);
    // Memory: bounded (a generous bound; the figure is in the summary).
    EXPECT_LT(rss_mib, 512.0);
}

}  // namespace
}  // namespace hsmaudit::testing::soak
