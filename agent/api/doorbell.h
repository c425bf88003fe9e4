// Doorbell: a wake-up from producers of work (the drain committing a batch to the store, an
// exporter's transport receiving acknowledgements) to one consumer (an export runner) that would
// otherwise poll.
//
// A ring is cheap when nobody waits: one atomic increment, no lock, no system call. The mutex
// and the notification are paid only while the consumer is inside wait(), so a busy store that
// commits often, or a transport that acknowledges often, costs the waiter at most one wake-up per
// wait (it reads everything that is new before it waits again), never one per record.
//
// Use: take `seen = generation()` BEFORE looking for work, look, and if there was none call
// wait(seen, ...): a ring between the look and the wait is not lost (the generation moved).
//
// Thread-safety: ring() from any thread, including librdkafka's internal threads (it never
// blocks for long and never calls back); wait() from the consumer's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <vector>

namespace hsmaudit::agent {

class Doorbell {
public:
    /// Something changed: wakes the consumer if it waits, else only counts.
    void ring() noexcept {
        // seq_cst on both sides (here and in wait()): either this load sees the waiter, or the
        // waiter's predicate sees the new generation.
        generation_.fetch_add(1);
        if (waiters_.load() == 0) return;
        notifications_.fetch_add(1, std::memory_order_relaxed);
        {
            // Taking the lock orders this ring with a waiter between its predicate and its sleep.
            const std::lock_guard lock(mutex_);
        }
        cv_.notify_all();
    }

    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_.load(); }

    /// Waits until the generation differs from `seen`, `stop` is requested, or `timeout` passed.
    /// Returns true if it was rung.
    bool wait(std::uint64_t seen, std::chrono::milliseconds timeout, const std::stop_token& stop) {
        if (generation() != seen) return true;
        std::unique_lock lock(mutex_);
        waiters_.fetch_add(1);
        const bool rung = cv_.wait_for(lock, stop, timeout, [&] { return generation() != seen; });
        waiters_.fetch_sub(1);
        return rung;
    }

    /// Rings that found a waiter and notified it (the others cost one atomic increment).
    [[nodiscard]] std::uint64_t notifications() const noexcept {
        return notifications_.load(std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<int> waiters_{0};
    std::atomic<std::uint64_t> notifications_{0};
    std::mutex mutex_;
    std::condition_variable_any cv_;
};

/// The doorbells to ring together when one thing happens (the drain committed a batch to the
/// store: every export runner's). Runners add their own at start and remove it at stop.
/// Thread-safety: any thread; a removed doorbell is never rung after remove() returns.
class DoorbellSet {
public:
    void add(Doorbell& bell) {
        const std::lock_guard lock(mutex_);
        bells_.push_back(&bell);
    }
    void remove(Doorbell& bell) {
        const std::lock_guard lock(mutex_);
        std::erase(bells_, &bell);
    }
    void ring() noexcept {
        const std::lock_guard lock(mutex_);
        for (Doorbell* b : bells_) b->ring();
    }

private:
    std::mutex mutex_;
    std::vector<Doorbell*> bells_;
};

}  // namespace hsmaudit::agent
