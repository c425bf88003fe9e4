// EventSpool: a durable, hash-chained spool of event lines (the appliance's syslog stream), with
// its own quota: when full, the oldest segment files are deleted first, as the appliance does
// with its syslog folder. Unlike the audit trail it carries no MACs from the module; the hash
// chain lets anyone check that the spooled lines were not edited, reordered or cut in the middle.
//
// Files under `dir`: spool-<16 hex digits of the first line number>.log, each starting with
//   @spool v=1 name=<name> first=<n> prev=<64 hex>
// and then lines `<n> <time> <payload> h=<64 hex>`, where h_n = SHA-256(h_(n-1) || the line's
// bytes before " h=") and h_0 = SHA-256("hsmaudit/v1/spool/" || name). `prev` is h of the line
// before the segment. docs/FORMAT.md, "Event spool".
//
// Thread-safety: push() from any thread (a bounded queue; never blocks); one writer thread owned
// by the spool appends and fsyncs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mac/crypto.h"
#include "mac/result.h"
#include "mac/unique_fd.h"

namespace hsmaudit::agent {

struct SpoolOptions {
    std::string dir;
    std::string name = "syslog";
    std::uint64_t segment_max_bytes = 16ULL << 20;
    std::uint64_t quota_bytes = 9'700'000'000ULL;  // the appliance's 9.7 GB syslog folder
    std::size_t queue_max = 65536;
    std::chrono::milliseconds flush_interval{100};
};

struct SpoolStats {
    std::uint64_t appended = 0;          // lines durable in the spool
    std::uint64_t dropped = 0;           // lines refused because the queue was full
    std::uint64_t deleted_segments = 0;  // segment files removed by the quota
    std::uint64_t write_errors = 0;
    std::uint64_t next_line = 1;
};

class Config;
/// SpoolOptions from the syslog keys (agent/store/spool_config.cpp).
SpoolOptions make_spool_options(const Config& config, const std::string& dir);

class EventSpool {
public:
    static Result<std::unique_ptr<EventSpool>> open(SpoolOptions options, std::int64_t (*now_ms)());
    ~EventSpool();
    EventSpool(const EventSpool&) = delete;
    EventSpool& operator=(const EventSpool&) = delete;

    /// Queues one payload (one line of text, no LF; it is escaped if it holds one). False if the
    /// queue is full: the line is counted as dropped.
    bool push(std::string payload);
    /// Starts the writer thread.
    void start();
    /// Writes what is queued, fsyncs, and joins the writer.
    void stop();
    /// Appends everything queued now (the writer thread's work; also for tests without a thread).
    Status flush();

    [[nodiscard]] SpoolStats stats() const;

private:
    EventSpool(SpoolOptions options, std::int64_t (*now_ms)());
    Status recover();
    Status open_segment();
    Status enforce_quota();

    SpoolOptions options_;
    std::int64_t (*now_ms_)();
    mac::Sha256 sha_;
    mac::Bytes32 head_{};
    std::uint64_t next_line_ = 1;
    UniqueFd fd_;
    std::uint64_t segment_bytes_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    SpoolStats stats_;
    std::jthread writer_;
};

/// What check_spool() found.
struct SpoolCheck {
    std::uint64_t segments = 0;
    std::uint64_t lines = 0;
    std::uint64_t first_line = 0;
    std::uint64_t last_line = 0;
    std::vector<std::string> faults;  // "file:line: what"
};
/// Checks a spool directory's hash chain and numbering (segments deleted by the quota at the
/// start are expected: the check begins at the oldest segment left).
Result<SpoolCheck> check_spool(const std::string& dir);

}  // namespace hsmaudit::agent
