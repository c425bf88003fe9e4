// The last-resort catch of the collector's threads: an exception that escapes a listener's or a
// follower's loop ends that thread (the source stops), never the process.
//
// Thread-safety: run_guarded() runs on the guarded thread; the handler is called from it.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>

namespace hsmaudit::collectors::syslog {

/// Told once, from the thread, that an exception ended it ("syslog listener udp:...: <what>"). The
/// owner logs it and raises an alert. Must not block for long.
using ThreadFailureHandler = std::function<void(const std::string& what)>;

namespace detail {

/// Runs `body`; if it throws, counts the failure in `failures` and tells `on_failure` (whose own
/// exceptions are swallowed: nothing may leave a thread body).
template <class Body>
void run_guarded(Body&& body, std::string_view who, std::atomic<std::uint64_t>& failures,
                 const ThreadFailureHandler& on_failure) noexcept {
    std::string what;
    try {
        body();
        return;
    } catch (const std::exception& e) {
        try {
            what = std::string(who) + ": " + e.what();
        } catch (...) {
        }
    } catch (...) {
        try {
            what = std::string(who) + ": unknown exception";
        } catch (...) {
        }
    }
    failures.fetch_add(1, std::memory_order_relaxed);
    if (!on_failure) return;
    try {
        on_failure(what);
    } catch (...) {
    }
}

}  // namespace detail
}  // namespace hsmaudit::collectors::syslog
