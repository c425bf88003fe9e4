// The last-resort catch of a thread body (issue 13: no exception ends the daemon): an exception
// that escapes a component's thread is logged and alerted and ends that thread only, never the
// process through std::terminate.
//
// Thread-safety: run_guarded() runs on the guarded thread; the AlertSink accepts alerts from any
// thread (agent/api/alerts.h).
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "agent/api/alerts.h"
#include "base/logger.h"

namespace hsmaudit::agent::detail {

/// The alert a guarded thread raises when an exception ended it.
inline constexpr std::string_view kThreadFailedAlert = "agent.thread_failed";

/// Logs (critical) and, with `alerts`, raises a critical kThreadFailedAlert naming `who` and
/// `what`. Never throws.
inline void report_thread_failure(std::string_view who, std::string_view what, AlertSink* alerts) noexcept {
    try {
        base::logger().critical("{}: unexpected exception, caught at its last resort: {}", who, what);
    } catch (...) {
    }
    if (alerts == nullptr) return;
    try {
        const auto now =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        alerts->alert(
            Alert{std::string(kThreadFailedAlert), Severity::critical,
                  std::string(who) + ": unexpected exception, caught at its last resort: " + std::string(what), 0,
                  static_cast<std::int64_t>(now)});
    } catch (...) {
    }
}

/// Runs `body`; if an exception escapes it, returns what it said ("an unknown exception" for one
/// that is not a std::exception), else nullopt. For a component that reports its own failure
/// (its alert kind, its stats); never throws.
template <class Body>
std::optional<std::string> run_catching(Body&& body) noexcept {
    try {
        std::forward<Body>(body)();
        return std::nullopt;
    } catch (const std::exception& e) {
        try {
            return std::string(e.what());
        } catch (...) {
            return std::nullopt;  // no memory even for the message: nothing better to say
        }
    } catch (...) {
        try {
            return std::string("an unknown exception");
        } catch (...) {
            return std::nullopt;
        }
    }
}

/// Runs `body` (a thread's whole work). An exception escaping it is reported
/// (report_thread_failure) and swallowed. Returns false if `body` threw.
template <class Body>
bool run_guarded(std::string_view who, Body&& body, AlertSink* alerts = nullptr) noexcept {
    auto what = run_catching(std::forward<Body>(body));
    if (!what) return true;
    report_thread_failure(who, *what, alerts);
    return false;
}

}  // namespace hsmaudit::agent::detail
