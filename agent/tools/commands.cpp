#include "agent/tools/commands.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "agent/engine/verify_output.h"
#include "agent/tools/fsck.h"
#include "agent/tools/status.h"
#include "agent/tools/tail.h"
#include "agent/tools/tool_paths.h"
#include "base/files.h"
#include "base/json_text.h"
#include "mac/errc.h"
#include "mac/keys.h"
#include "mac/wrap.h"

namespace hsmaudit::agent::tools {
namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int fail(const std::string& message) {
    std::cerr << "hsmaudit: " << message << "\n";
    return kExitUsage;
}

/// The agent appears to be running on this state directory: a fresh status.json from a live pid.
std::optional<std::int64_t> running_agent_pid(const ToolPaths& paths) {
    auto s = read_status_file(paths.state_dir);
    if (!s) return std::nullopt;
    const std::int64_t pid = s->status.pid;
    if (!pid_alive(pid) || now_ms() - s->time_ms > 3 * paths.status_interval_ms) return std::nullopt;
    return pid;
}

}  // namespace

Result<std::optional<mac::AuditKey>> load_audit_secret(const std::string& key_file, const std::string& wrapped_file,
                                                       const std::string& pass_file) {
    if (!key_file.empty() && !wrapped_file.empty())
        return make_error(mac::errc::invalid_argument, "give --key or --wrapped-key, not both");
    if (!wrapped_file.empty()) {
        if (pass_file.empty()) return make_error(mac::errc::invalid_argument, "--wrapped-key needs --passphrase-file");
        auto blob = base::read_file(wrapped_file, 1 << 16);
        if (!blob) return std::move(blob).error();
        auto pass = mac::read_passphrase_file(pass_file);
        if (!pass) return std::move(pass).error();
        auto key = mac::unwrap_audit_key(*blob, *pass);
        mac::secure_zero(pass->data(), pass->size());
        if (!key) return Error{key.error().code, wrapped_file + ": " + key.error().describe()};
        return std::optional<mac::AuditKey>(std::move(*key));
    }
    if (key_file.empty()) return std::optional<mac::AuditKey>{};
    auto key = mac::load_audit_key(key_file);
    if (!key) return std::move(key).error();
    return std::optional<mac::AuditKey>(std::move(*key));
}

int run_status(const StoreArgs& a) {
    auto paths = resolve_tool_paths(a.state_dir, a.config, a.key, a.plugin_keys);
    if (!paths) return fail(paths.error().describe());
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(paths->state_dir) / "status.json", ec) && !ec) {
        std::cerr << "hsmaudit: the agent is not running: no status.json in " << paths->state_dir
                  << " (has hsmauditd ever run with this state directory?)\n";
        return kStatusNotRunning;
    }
    auto first = read_status_file(paths->state_dir);
    if (!first) return fail(first.error().describe());
    const bool alive = pid_alive(first->status.pid);
    std::optional<StatusSample> second;
    const std::int64_t interval = paths->status_interval_ms;
    if (alive && now_ms() - first->time_ms <= 3 * interval) {
        // The drain rate: wait for the agent's next report (at most three intervals).
        const std::int64_t deadline = now_ms() + 3 * interval;
        while (now_ms() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min<std::int64_t>(100, interval)));
            auto s = read_status_file(paths->state_dir);
            if (s && s->time_ms != first->time_ms) {
                second = std::move(*s);
                break;
            }
        }
    }
    const auto report = make_status_report(paths->state_dir, *first, second, now_ms(), interval, alive,
                                           read_recent_alerts(paths->state_dir, 5));
    if (a.json)
        std::cout << base::json_text(render_status_json(report)) << "\n";
    else
        std::cout << render_status_text(report);
    return status_exit_code(report);
}

int run_tail(const TailArgs& a) {
    auto paths = resolve_tool_paths(a.state_dir, a.config, a.key, a.plugin_keys);
    if (!paths) return fail(paths.error().describe());
    std::optional<mac::AuditKey> key;
    if (!paths->key_path.empty()) {
        auto k = mac::load_audit_key(paths->key_path);
        if (!k) return fail(k.error().describe());
        key.emplace(std::move(*k));
    }
    StoreTail tail(audit_dir_of(paths->state_dir), key ? &*key : nullptr);
    auto print = [&](const std::vector<TailRecord>& recs) {
        for (const auto& r : recs) {
            if (a.json)
                std::cout << base::json_text(format_record_json(r), -1) << "\n";
            else
                std::cout << format_record_text(r) << "\n";
        }
        std::cout.flush();
        for (const auto& w : tail.take_warnings()) std::cerr << "hsmaudit: warning: " << w << "\n";
    };
    auto recs = tail.last(a.lines);
    if (!recs) return fail(recs.error().describe());
    print(*recs);
    if (!a.follow) return kExitOk;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(a.poll_ms));
        auto more = tail.poll();
        if (!more) return fail(more.error().describe());
        print(*more);
        if (!std::cout) return kExitUsage;  // stdout closed
    }
}

int run_fsck(const FsckArgs& a) {
    auto paths = resolve_tool_paths(a.state_dir, a.config, a.key, a.plugin_keys);
    if (!paths) return fail(paths.error().describe());
    if (paths->key_path.empty()) return fail("fsck needs the audit key: give --key FILE (or -c CONFIG)");
    auto key = mac::load_audit_key(paths->key_path);
    if (!key) return fail(key.error().describe());
    if (auto pid = running_agent_pid(*paths)) {
        if (a.repair)
            return fail("the agent (pid " + std::to_string(*pid) + ") is running on " + paths->state_dir +
                        "; stop it before 'fsck --repair'");
        std::cerr << "hsmaudit: warning: the agent (pid " << *pid
                  << ") is running; bytes it writes during the check may show as uncommitted\n";
    }
    FsckOptions o;
    o.audit_dir = audit_dir_of(paths->state_dir);
    o.key = &*key;
    o.repair = a.repair;
    auto report = fsck_store(o);
    if (!report) return fail(report.error().describe());
    if (a.json)
        std::cout << base::json_text(render_fsck_json(*report)) << "\n";
    else
        std::cout << render_fsck_text(*report, a.repair);
    return report->clean() ? kExitOk : kExitFault;
}

}  // namespace hsmaudit::agent::tools
