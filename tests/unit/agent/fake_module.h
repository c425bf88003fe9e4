// A module stand-in for agent tests: produces real chain entries through mac::ChainWriter and
// serves them through the AuditSource interface, checking how the agent acknowledges.
#pragma once

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/api/source.h"
#include "agent/engine/sample.h"
#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/keys.h"

namespace hsmaudit::agent::testing {

class FakeModule : public AuditSource {
public:
    struct Stored {
        EntryKind kind;
        std::uint64_t seq;
        std::string line;
    };

    explicit FakeModule(const mac::NewChainKeys& keys, std::uint64_t capacity_bytes = 1 << 20)
        : keys_(keys), workload_(7, 1'795'500'000'000), capacity_(capacity_bytes) {
        auto w = mac::ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, mac::genesis_head(keys.key));
        EXPECT_TRUE(w.has_value());
        writer_.emplace(std::move(*w));
        auto open = writer_->open_segment(workload_.now_ms());
        entries_.push_back({EntryKind::open, 1, *open});
    }

    /// The module creates `n` records (sealing first if a seal was requested).
    void produce(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if (seal_requested_) seal_now();
            mac::AuditRecord rec;
            workload_.next(rec);
            std::string line;
            ASSERT_TRUE(writer_->append(rec, line).has_value());
            entries_.push_back({EntryKind::record, rec.seq, line});
        }
    }
    /// One record stamped with `time_ms` (a module clock set back, or forward).
    void produce_at(std::int64_t time_ms) {
        mac::AuditRecord rec;
        workload_.next(rec);
        rec.time_ms = time_ms;
        std::string line;
        ASSERT_TRUE(writer_->append(rec, line).has_value());
        entries_.push_back({EntryKind::record, rec.seq, line});
    }
    /// The module restarts: its boot counter goes up.
    void reboot() { writer_->set_boot(writer_->boot() + 1); }
    std::int64_t now_ms() const { return workload_.now_ms(); }

    void seal_now() {
        seal_requested_ = false;
        auto seal = writer_->seal(workload_.now_ms());
        entries_.push_back({EntryKind::seal, writer_->head().next_seq - 1, *seal});
        auto open = writer_->open_segment(workload_.now_ms());
        entries_.push_back({EntryKind::open, writer_->head().next_seq, *open});
    }
    /// Replaces the text of entry `entry_no` (1-based) as a tampering module would.
    void tamper(std::uint64_t entry_no, std::string line) { entries_.at(entry_no - 1).line = std::move(line); }
    Stored& entry(std::uint64_t entry_no) { return entries_.at(entry_no - 1); }

    Result<std::size_t> read(std::uint64_t after, std::size_t max, std::chrono::milliseconds,
                             EntryBatch& out) override {
        ++reads_;
        if (after < acked_)
            violations_.push_back("read after " + std::to_string(after) + " below ack " + std::to_string(acked_));
        std::size_t n = 0;
        for (std::uint64_t i = after; i < entries_.size() && n < max; ++i, ++n)
            out.add(entries_[i].kind, i + 1, entries_[i].seq, entries_[i].line);
        return n;
    }
    Status acknowledge(std::uint64_t entry_no) override {
        if (entry_no < acked_) violations_.push_back("ack went backwards");
        if (entry_no > entries_.size()) violations_.push_back("ack beyond what exists");
        acked_ = entry_no;
        return {};
    }
    Status request_seal() override {
        seal_requested_ = true;
        ++seal_requests_;
        return {};
    }
    Result<SourceStatus> status() override {
        SourceStatus s;
        s.serial = "150123";
        s.boot = writer_->boot();
        s.capacity_bytes = capacity_;
        for (std::uint64_t i = acked_; i < entries_.size(); ++i) s.used_bytes += entries_[i].line.size() / 3;
        s.newest_entry_no = entries_.size();
        s.acked_entry_no = acked_;
        s.blocked = blocked_;
        return s;
    }

    Result<std::string> checkpoint(std::uint64_t retained) override {
        ++checkpoints_;
        last_retained_ = retained;
        auto c =
            retained == 0
                ? mac::make_checkpoint(keys_.key.chain(), "150123", writer_->head().epoch, writer_->head().next_seq - 1,
                                       workload_.now_ms(), writer_->head().last_mac, keys_.signer)
                : mac::make_checkpoint(keys_.key.chain(), "150123", writer_->head().epoch, writer_->head().next_seq - 1,
                                       retained, workload_.now_ms(), writer_->head().last_mac, keys_.signer);
        if (!c) return std::move(c).error();
        return c->line();
    }
    int checkpoints() const { return checkpoints_; }
    /// The `retained` the drain passed with its last checkpoint request.
    std::uint64_t last_retained() const { return last_retained_; }

    std::uint64_t acked() const { return acked_; }
    std::uint64_t size() const { return entries_.size(); }
    int seal_requests() const { return seal_requests_; }
    const std::vector<std::string>& violations() const { return violations_; }
    void set_blocked(bool b) { blocked_ = b; }

private:
    const mac::NewChainKeys& keys_;
    SampleWorkload workload_;
    std::optional<mac::ChainWriter> writer_;
    std::vector<Stored> entries_;
    std::uint64_t acked_ = 0;
    std::uint64_t capacity_;
    bool seal_requested_ = false;
    int seal_requests_ = 0;
    int reads_ = 0;
    int checkpoints_ = 0;
    std::uint64_t last_retained_ = 0;
    bool blocked_ = false;
    std::vector<std::string> violations_;
};

/// Collects alerts. Thread-safe: runners, the archiver and the drain alert from their own threads
/// while the test reads (AlertSink's contract: alert() from any thread).
class AlertList : public AlertSink {
public:
    void alert(Alert&& a) override {
        const std::lock_guard lock(mutex_);
        alerts_.push_back(std::move(a));
    }
    bool has(std::string_view kind) const {
        const std::lock_guard lock(mutex_);
        for (const auto& a : alerts_)
            if (a.kind == kind) return true;
        return false;
    }
    /// A copy of the alerts so far, in order.
    std::vector<Alert> alerts() const {
        const std::lock_guard lock(mutex_);
        return alerts_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<Alert> alerts_;
};

}  // namespace hsmaudit::agent::testing
