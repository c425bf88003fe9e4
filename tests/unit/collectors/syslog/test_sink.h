// A sink that collects messages for tests, and helpers shared by the collector tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "collectors/syslog/message.h"

namespace hsmaudit::collectors::syslog::testing {

// Generous bound that only fails a stuck test.
inline constexpr auto kStuck = std::chrono::seconds(20);

class CollectingSink final : public SyslogSink {
public:
    void on_message(SyslogMessage&& m) override {
        {
            std::lock_guard lock(mutex_);
            messages_.push_back(std::move(m));
        }
        cv_.notify_all();
    }
    /// Waits until at least n messages arrived (or the stuck bound passed); returns a copy of them.
    std::vector<SyslogMessage> wait_for(std::size_t n) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, kStuck, [&] { return messages_.size() >= n; });
        return messages_;
    }
    std::vector<SyslogMessage> take() {
        std::lock_guard lock(mutex_);
        return std::exchange(messages_, {});
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<SyslogMessage> messages_;
};

inline std::filesystem::path make_temp_dir() {
    std::random_device rd;
    auto p =
        std::filesystem::temp_directory_path() / ("hsmaudit-syslog-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(p);
    return p;
}

/// Undoes to_safe_text when it escaped (\\ and \xNN).
inline std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '\\') {
            out += '\\';
            ++i;
        } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
            out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace hsmaudit::collectors::syslog::testing
