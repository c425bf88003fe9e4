// AlertLog: the durable record of alerts. Each alert is appended as one JSON line to
// <state>/alerts/alerts.jsonl and fsynced (alerts are rare and must survive a crash), counted by
// kind, and logged. Exporters read the file with their own cursors.
//
// Thread-safety: alert() may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/alerts.h"
#include "agent/store/line_log.h"
#include "mac/result.h"

namespace hsmaudit::agent {

class AlertLog final : public AlertSink {
public:
    static Result<std::unique_ptr<AlertLog>> open(const std::string& dir);
    ~AlertLog() override = default;
    AlertLog(const AlertLog&) = delete;
    AlertLog& operator=(const AlertLog&) = delete;

    void alert(Alert&& a) override;

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
};

/// One alert as its JSON line (with LF).
std::string alert_json_line(const Alert& a);

}  // namespace hsmaudit::agent
