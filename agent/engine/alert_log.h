// AlertLog: the durable record of alerts. Each alert is appended as one JSON line to
// <state>/alerts/alerts.jsonl and fsynced (alerts are rare and must survive a crash), counted by
// kind, and logged. Exporters read the file with their own cursors.
//
// When the file cannot be written (a full disk), the alert is still counted, kept in recent()
// and logged; LineLog keeps its line and writes it before the next one once the disk recovers.
// The write failure itself is logged at most once per kFailureLogInterval (with the count), and
// once more when writes succeed again.
//
// Thread-safety: alert() may be called from any thread (one mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/engine/store/line_log.h"
#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::agent {

class AlertLog final : public AlertSink {
public:
    static constexpr std::chrono::seconds kFailureLogInterval{60};

    static Result<std::unique_ptr<AlertLog>> open(const std::string& dir,
                                                  base::FileSystem& fs = base::posix_file_system());
    ~AlertLog() override = default;
    AlertLog(const AlertLog&) = delete;
    AlertLog& operator=(const AlertLog&) = delete;

    void alert(Alert&& a) override;
    /// Writes the alerts kept from failed writes, if any (the owner may call it now and then, so
    /// they do not wait for the next alert). Returns what LineLog::retry() returned.
    Status retry();

    [[nodiscard]] std::map<std::string, std::uint64_t> counts() const;
    [[nodiscard]] std::vector<Alert> recent() const;  // the last few, newest last
    [[nodiscard]] std::uint64_t write_failures() const;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    explicit AlertLog(std::unique_ptr<LineLog> file) : file_(std::move(file)), path_(file_->path()) {}
    std::unique_ptr<LineLog> file_;
    std::string path_;
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> counts_;
    std::vector<Alert> recent_;
    std::uint64_t write_failures_ = 0;
    std::uint64_t failures_unlogged_ = 0;  // since the last log line about them
    bool failing_ = false;
    std::chrono::steady_clock::time_point last_failure_log_{};
};

/// One alert as its JSON line (with LF).
std::string alert_json_line(const Alert& a);

}  // namespace hsmaudit::agent
