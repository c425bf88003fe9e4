// SignalStop: turns SIGTERM/SIGINT into a std::stop_source request, without a global flag. The
// signals are blocked in the constructor (call it before starting any thread, so every thread
// inherits the mask) and a thread collects them with sigtimedwait.
//
// Thread-safety: construct and destroy in the main thread; token() may be used anywhere.
#pragma once

#include <csignal>
#include <stop_token>
#include <thread>

namespace hsmaudit::hsmcore::cli {

class SignalStop {
public:
    SignalStop() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGTERM);
        sigaddset(&set_, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);
        (void)std::signal(SIGPIPE, SIG_IGN);
        waiter_ = std::jthread([this](const std::stop_token& st) {
            const timespec timeout{0, 100'000'000};
            while (!st.stop_requested()) {
                if (sigtimedwait(&set_, nullptr, &timeout) > 0) {
                    source_.request_stop();
                    return;
                }
            }
        });
    }
    ~SignalStop() = default;
    SignalStop(const SignalStop&) = delete;
    SignalStop& operator=(const SignalStop&) = delete;

    [[nodiscard]] std::stop_token token() const { return source_.get_token(); }

private:
    sigset_t set_{};
    std::stop_source source_;
    std::jthread waiter_;  // last: stopped and joined first
};

}  // namespace hsmaudit::hsmcore::cli
