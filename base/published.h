// Published<T>: an immutable snapshot that one thread replaces whole and any thread reads (the
// agent's configuration and status). Readers keep the snapshot they took for as long as they need it.
//
// A shared_ptr under a mutex, held only to copy or swap the pointer. Not std::atomic<shared_ptr>:
// libstdc++ 12's load() releases its internal lock with memory_order_relaxed, so a later store()
// is not ordered after the reader's copy of the pointer (ThreadSanitizer reports it as a race
// between Service::publish_status() and a /ready request).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace hsmaudit::base {

template <class T>
class Published {
public:
    Published() = default;
    explicit Published(std::shared_ptr<const T> value) : value_(std::move(value)) {}
    Published(const Published&) = delete;
    Published& operator=(const Published&) = delete;

    [[nodiscard]] std::shared_ptr<const T> load() const {
        const std::lock_guard lock(mutex_);
        return value_;
    }
    void store(std::shared_ptr<const T> value) {
        std::shared_ptr<const T> old;
        {
            const std::lock_guard lock(mutex_);
            old = std::exchange(value_, std::move(value));
        }
        // `old` is released here, outside the lock (the last reader may free a large snapshot).
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const T> value_;
};

}  // namespace hsmaudit::base
