// A monitor of a running module and agent for end-to-end tests (shared by tests/soak/ and
// tests/integration/agent/): every 100 ms the module's STATUS over its control socket (blocked flag,
// refusals, ring use), the agent's VmRSS/VmHWM from /proc, and every new archive of the store copied
// into an off-box directory (retention deletes archives once delivered; the copies keep the whole trail
// verifiable) - or moved there (`ship_archives`), as the operator of an agent without audit exporters
// does ("the operator copies archives off the box and deletes them", docs/ARCHITECTURE.md).
//
// Thread-safety: Monitor owns one std::jthread; its queries and setters are safe from the test's
// thread; archive_pass() only after stop().
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hsmcore/host/control_protocol.h"

namespace hsmaudit::testing {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// One module status sample.
struct ModuleSample {
    double t = 0;  // seconds since the monitor started
    bool blocked = false;
    std::uint64_t refused = 0;
    std::uint64_t used = 0;
    std::uint64_t capacity = 0;
};

struct BlockedWindow {
    double from = 0;
    double to = -1;  // -1: still blocked at the last sample
};

class Monitor {
public:
    Monitor(std::string socket, std::string archive_dir, std::string offbox_dir, Clock::time_point t0)
        : socket_(std::move(socket)), archive_dir_(std::move(archive_dir)), offbox_(std::move(offbox_dir)), t0_(t0) {
        std::filesystem::create_directories(offbox_);
        thread_ = std::jthread([this](std::stop_token st) { run(st); });
    }
    ~Monitor() { stop(); }
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    void stop() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
    }
    void set_agent_pid(pid_t pid) { agent_pid_ = pid; }
    /// true: an archive is removed from the store once its copy is complete (moved off the box).
    void ship_archives(bool move) { move_ = move; }
    /// true: archives stay where they are until false again (e.g. while a test keeps the disk full,
    /// where removing one would free space).
    void hold_archives(bool hold) { hold_ = hold; }
    /// One pass over the archives now, from the caller's thread: only after stop().
    void archive_pass() {
        if (!thread_.joinable()) copy_archives();
    }

    [[nodiscard]] std::vector<BlockedWindow> blocked_windows() const {
        std::lock_guard lock(mu_);
        return windows_;
    }
    [[nodiscard]] std::optional<ModuleSample> last() const {
        std::lock_guard lock(mu_);
        return last_;
    }
    /// (time, refusals) whenever the module's refusal counter changed.
    [[nodiscard]] std::vector<std::pair<double, std::uint64_t>> refusals() const {
        std::lock_guard lock(mu_);
        return refusals_;
    }
    [[nodiscard]] std::uint64_t peak_rss_kib() const { return peak_rss_.load(); }
    [[nodiscard]] std::uint64_t peak_hwm_kib() const { return peak_hwm_.load(); }
    [[nodiscard]] double peak_ring_fill() const {
        std::lock_guard lock(mu_);
        return peak_fill_;
    }
    [[nodiscard]] std::size_t archives_copied() const { return copied_.load(); }
    [[nodiscard]] std::uint64_t status_errors() const { return status_errors_.load(); }

private:
    void run(std::stop_token st) {
        std::optional<hsmcore::host::ControlClient> client;
        while (!st.stop_requested()) {
            const double t = seconds_since(t0_);
            if (!client) {
                auto c = hsmcore::host::ControlClient::connect(socket_);
                if (c) client.emplace(std::move(*c));
            }
            if (client) {
                auto r = client->call("STATUS");
                if (!r) {
                    ++status_errors_;
                    client.reset();
                } else {
                    ModuleSample s;
                    s.t = t;
                    s.blocked = r->get_u64("blocked") != 0;
                    s.refused = r->get_u64("refused_log_full");
                    s.used = r->get_u64("used");
                    s.capacity = r->get_u64("capacity");
                    record(s);
                }
            }
            sample_memory();
            if (!hold_.load()) copy_archives();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    void record(const ModuleSample& s) {
        std::lock_guard lock(mu_);
        if (s.blocked && (windows_.empty() || windows_.back().to >= 0)) windows_.push_back({s.t, -1});
        if (!s.blocked && !windows_.empty() && windows_.back().to < 0) windows_.back().to = s.t;
        if (refusals_.empty() || refusals_.back().second != s.refused) refusals_.emplace_back(s.t, s.refused);
        if (s.capacity > 0)
            peak_fill_ = std::max(peak_fill_, static_cast<double>(s.used) / static_cast<double>(s.capacity));
        last_ = s;
    }
    void sample_memory() {
        const pid_t pid = agent_pid_.load();
        if (pid <= 0) return;
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(in, line);) {
            auto kib = [&](const char* key) -> std::optional<std::uint64_t> {
                if (!line.starts_with(key)) return std::nullopt;
                return std::strtoull(line.c_str() + std::strlen(key), nullptr, 10);
            };
            if (auto v = kib("VmRSS:")) peak_rss_ = std::max(peak_rss_.load(), *v);
            if (auto v = kib("VmHWM:")) peak_hwm_ = std::max(peak_hwm_.load(), *v);
        }
    }
    void copy_archives() {
        namespace fs = std::filesystem;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(archive_dir_, ec)) {
            const std::string name = e.path().filename().string();
            // The archiver writes ".tmp-<name>" and renames it: a name without the dot is complete.
            if (name.starts_with(".")) continue;
            if (!(name.ends_with(".tgz") || name.ends_with(".tar") || name.ends_with(".tar.gz"))) continue;
            if (seen_.count(name) == 0) {
                // Copied under a temporary name first: a copy cut short never passes for an archive.
                const fs::path part = fs::path(offbox_) / (".part-" + name);
                std::error_code cec;
                fs::copy_file(e.path(), part, fs::copy_options::overwrite_existing, cec);
                if (!cec) fs::rename(part, fs::path(offbox_) / name, cec);
                if (cec) {
                    std::error_code rec;
                    fs::remove(part, rec);
                    continue;
                }
                seen_.insert(name);
                ++copied_;
            }
            if (move_.load()) {
                std::error_code rec;
                fs::remove(e.path(), rec);
            }
        }
    }

    std::string socket_, archive_dir_, offbox_;
    Clock::time_point t0_;
    std::atomic<pid_t> agent_pid_{0};
    std::atomic<bool> move_{false};
    std::atomic<bool> hold_{false};
    mutable std::mutex mu_;
    std::vector<BlockedWindow> windows_;
    std::vector<std::pair<double, std::uint64_t>> refusals_;
    std::optional<ModuleSample> last_;
    double peak_fill_ = 0;
    std::atomic<std::uint64_t> peak_rss_{0}, peak_hwm_{0};
    std::atomic<std::size_t> copied_{0};
    std::atomic<std::uint64_t> status_errors_{0};
    std::set<std::string> seen_;  // the monitor thread's only (or archive_pass's, after stop())
    std::jthread thread_;
};

}  // namespace hsmaudit::testing
