// SigpipeGuard: while it lives, a write to a connection the peer closed fails with EPIPE in this
// thread instead of killing the process with SIGPIPE. OpenSSL writes to its socket with write(2)
// (no MSG_NOSIGNAL) and a library must not change the process's signal dispositions, so the
// signal is blocked in the calling thread and, if a write raised it, consumed before the mask is
// restored (the technique libpq uses). A SIGPIPE already pending before is left alone.
//
// Thread-safety: affects only the calling thread; create and destroy it on the same thread.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>

namespace hsmaudit::exporters::common {

class SigpipeGuard {
public:
    SigpipeGuard() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        was_pending_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~SigpipeGuard() {
        if (!was_pending_) {
            const timespec zero{};
            while (::sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool was_pending_ = false;
};

}  // namespace hsmaudit::exporters::common
