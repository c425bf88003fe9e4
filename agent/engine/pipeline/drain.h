// Drain: the agent's heart. One thread moves audit entries from the module to the store:
//   read a batch after the stored position -> append -> commit (fsync) -> verify every line
//   online -> acknowledge to the module.
// A record is acknowledged only once durable, never twice, never skipped. Verification faults
// become alerts; the offending entries are stored all the same (nothing is ever dropped).
// Online verification sees exactly what became durable, exactly once: a batch is verified after
// its commit, so a failed write (ENOSPC, EIO) that is retried never feeds the verifier twice.
// After a failed append or commit the store is re-opened through its recovery path (see
// AuditStore) and the drain reads again from what is durable; the module keeps the rest. While
// the store keeps failing the drain backs off (to 5 s), alerts drain.failed once per condition
// and then at most once a minute, and drain.recovered when a batch is stored again.
// It also rotates segments (asks the module to seal by size and by time) and watches the ring's
// fill to alert before the module blocks.
// Merkle tree (DrainOptions::merkle_tree): the drain keeps its own RFC 6962 tree (mac/merkle.h)
// over the records it stores (leaf seq-1 = the record line without LF), committed with each batch
// in the store's position annex, so a restart resumes it without reading the trail again. With
// each checkpoint it takes the module's signed tree head (a C2SP tlog-checkpoint note), hands it
// to the checkpoint sink as one line "@treehead <base64 of the note> time=<agent time>" and checks the module's root
// against its own at the same size (treehead.mismatch, critical, on a difference; the note is kept;
// a note that does not open with the chain's key: treehead.bad_signature, critical, also kept).
// A checkpoint (and the tree head taken with it) names the module's head, which may be ahead of
// the store: it is held and handed to the sink once the store holds every record it names, so a
// kept checkpoint never proves records the store lacks (the verifier would call that truncation).
// At most one is held; one that falls due meanwhile is taken after it is kept, or in its place
// once it has been held for a checkpoint_interval (a module whose head the store cannot reach: a
// reset chain; alert checkpoint.not_kept), so checkpoints never stop. At stop() the
// drain stores what the module wrote up to the last checkpoint (for at most kStopDrainLimit).
//
// Thread-safety: start()/stop() from the owner's thread; stats() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/api/alerts.h"
#include "agent/api/latency_histogram.h"
#include "agent/api/source.h"
#include "agent/engine/store/audit_store.h"
#include "base/config/config.h"
#include "base/result.h"
#include "mac/chain_verifier.h"
#include "mac/keys.h"
#include "mac/merkle.h"

namespace hsmaudit::agent {

/// When segments rotate by time, as the appliance's `audit config rotation`.
enum class RotationPeriod : std::uint8_t { never, hourly, daily, weekly, monthly };
Result<RotationPeriod> parse_rotation_period(std::string_view text);
/// The start of the rotation period after the one containing `time_ms` (UTC), or INT64_MAX for never.
std::int64_t next_rotation_ms(RotationPeriod period, std::int64_t time_ms);

struct DrainOptions {
    std::size_t batch_max_entries = 16384;
    std::chrono::milliseconds poll_wait{20};
    // Group commit: while the module writes less than a batch, a step starts at most this often
    // (start()'s loop; step() itself never waits), so that one fsync, one acknowledgement and one
    // wake-up of the destinations serve every record that arrived meanwhile. 0: at once.
    std::chrono::milliseconds commit_interval{10};
    std::uint64_t segment_max_bytes = 64ULL << 20;  // ask for a seal once the open segment is this big
    RotationPeriod rotation = RotationPeriod::hourly;
    std::chrono::milliseconds status_interval{1000};  // how often the ring's fill is read
    double fill_warning = 0.50;                       // alert when the ring is this full
    double fill_critical = 0.80;
    double predict_warning_s = 60;   // alert when the ring is predicted to reach the reserve this soon
    double reserve_fraction = 0.05;  // the module blocks with this much left (its LOG_FULL reserve)
    std::chrono::milliseconds predict_window{10'000};  // the fill trend is measured over this window
    std::chrono::milliseconds checkpoint_interval{
        60'000};              // a signed chain-head checkpoint this often, and at every seal
    bool merkle_tree = true;  // keep the Merkle tree and take the module's signed tree head with each checkpoint
    std::chrono::milliseconds clock_backwards_tolerance{1000};  // a record older than its predecessor by more: alert
};

/// Counters the drain keeps; read with stats().
struct DrainStats {
    std::uint64_t entries = 0;
    std::uint64_t records = 0;
    std::uint64_t seals = 0;
    std::uint64_t commits = 0;
    std::uint64_t faults = 0;
    std::array<std::uint64_t, mac::kFaultKindCount> faults_by_kind{};  // indexed by mac::FaultKind
    std::uint64_t records_verified = 0;      // records through the online verifier (stored ones: `records`)
    std::uint64_t bytes_stored = 0;          // segment-line bytes committed (before encryption)
    std::uint64_t step_failures = 0;         // failed steps (each alerted as drain.failed, then retried)
    std::uint64_t checkpoints = 0;           // chain-head checkpoints handed to the sink (kept)
    std::uint64_t tree_heads = 0;            // the module's signed tree heads handed to the sink
    std::uint64_t tree_head_mismatches = 0;  // tree heads whose root differs from the drain's own tree
    std::uint64_t tree_size = 0;             // the drain's tree size (0 while off)
    std::uint64_t acked_entry_no = 0;
    std::uint64_t last_seq = 0;
    double ring_fill = 0;  // 0..1, at the last status read
    double ring_fill_peak = 0;
    double seconds_to_reserve = -1;  // predicted; -1 when the ring is not filling
    bool module_blocked = false;
    bool acks_paused = false;                   // set_ack_paused(true): nothing is read, stored or acknowledged
    std::optional<std::uint64_t> sealed_epoch;  // the newest epoch whose seal is committed in the store
    std::int64_t last_step_ms = 0;    // when the drain last completed a step or a retry (liveness for the watchdog)
    bool failing = false;             // the last step failed (the store or the module); retrying with back-off
    std::uint64_t store_reopens = 0;  // the store re-opened through its recovery path after a write failure
};

/// DrainOptions from the drain's configuration keys (agent/engine/pipeline/drain_config.cpp).
DrainOptions make_drain_options(const base::Config& config);

class Drain {
public:
    using NowMs = std::function<std::int64_t()>;

    Drain(AuditSource& source, AuditStore& store, const mac::AuditKey& key, AlertSink& alerts, DrainOptions options,
          NowMs now_ms);
    ~Drain();
    Drain(const Drain&) = delete;
    Drain& operator=(const Drain&) = delete;

    /// Re-verifies the open segment already in the store (a restart), so online verification
    /// continues exactly where it stopped, and takes the module's boot counter from it (a module
    /// restart while the agent was down is alerted at the first record). With no boot counter in
    /// the store (a first start), the module's current boot is the baseline: records of earlier
    /// boots still in the ring predate the agent and are logged at info ("first seen boot N"),
    /// not alerted. `started_module`: the agent itself started the module just now (embedded
    /// mode), so the change to the boot that start gave the module is its own doing (info, no
    /// alert); any other change (a start by someone else while the agent was down) is alerted.
    /// Call once before step() or start().
    Status restore(bool started_module = false);
    /// One iteration: read, store, commit, verify, acknowledge; rotation and ring watch.
    /// Returns the number of entries moved. A failure is alerted here (drain.failed, rate-limited;
    /// drain.recovered at the next success) and never throws.
    Result<std::size_t> step();
    /// Runs step() on an owned thread until stop(). A failing step is retried with back-off
    /// and alerted; the module keeps everything until it is acknowledged. Steps that moved less
    /// than a full batch start at most once per DrainOptions::commit_interval (group commit); a
    /// full batch (a backlog) is followed by the next step at once.
    void start();
    /// Finishes the current batch, commits it and joins the thread; then takes a last checkpoint
    /// and stores the records it names before keeping it (for at most kStopDrainLimit; past that
    /// it is not kept, the module keeps the rest for the next start).
    void stop();
    static constexpr std::chrono::seconds kStopDrainLimit{2};
    /// Where signed chain-head checkpoints go (kept and sent off the box). Without one, none are taken.
    using CheckpointSink = std::function<void(const std::string& line)>;
    /// The same sink receives the module's signed tree heads as "@treehead <base64 note> time=<t>" lines.
    void set_checkpoint_sink(CheckpointSink sink) { checkpoint_sink_ = std::move(sink); }
    /// Called on the drain's thread after each batch became durable in the store (its commit,
    /// fsync included) and was acknowledged to the module: the export runners' wake-up
    /// (agent/api/doorbell.h), so they read new records without polling. Once per batch, never
    /// per record. Set before start().
    void set_commit_listener(std::function<void()> listener) { commit_listener_ = std::move(listener); }
    /// The drain's own Merkle tree over the stored records (nullopt while off or unavailable).
    /// The drain thread only (or while it is stopped).
    [[nodiscard]] const std::optional<mac::tlog::CompactTree>& tree() const { return tree_; }

    /// Replaces the options (a configuration reload); applied at the next step.
    void set_options(const DrainOptions& options);
    /// The fail-safe brake of retention (agent/engine/store/retention.h): while paused, step() reads,
    /// stores and acknowledges nothing (it still watches the ring), so the module's ring fills and
    /// the module blocks instead of records being lost. Alerts when the state changes; `reason`
    /// says why. Any thread.
    void set_ack_paused(bool paused, const std::string& reason);

    [[nodiscard]] DrainStats stats() const;
    /// Seconds from reading a batch to its acknowledgement (verify, append, commit with fsync, ack).
    [[nodiscard]] const LatencyHistogram& batch_latency() const { return batch_latency_; }
    /// Seconds from a record's module timestamp to its acknowledgement (durable in the store):
    /// the age at which records leave the ring. Mixes the module's clock and the agent's; a
    /// negative difference counts as 0.
    [[nodiscard]] const LatencyHistogram& record_latency() const { return record_latency_; }

private:
    void on_fault(mac::Fault&& f);
    Result<std::size_t> step_once();
    Status store_batch();
    Status acknowledge_durable();
    Status reopen_store();
    Status rebuild_verifier();
    /// Verifies the entries of `batch` that are durable and not yet verified; returns their records.
    std::uint64_t verify_durable(const EntryBatch& batch);
    void on_step_failed(const Error& e);
    void verify_entry(const EntryBatch& batch, const EntryRef& e);
    void maybe_rotate(std::int64_t now);
    void watch_ring(std::int64_t now);
    void maybe_checkpoint(std::int64_t now, bool sealed);
    /// Hands the held checkpoint lines to the sink once the store holds the records they name.
    void release_checkpoint();
    /// The sequence number of the newest record the store holds durably (0: none).
    [[nodiscard]] std::uint64_t stored_seq() const { return store_.durable().next_seq - 1; }
    /// Starts extending a copy of the tree by the batch's records (on a helper thread for a large
    /// batch); finish_tree() joins it and hands the tree to the store's next position write.
    void start_tree(std::size_t records);
    void finish_tree();
    /// The tree from the store's durable annex (a restart, a re-opened store).
    void restore_tree();
    /// Takes the module's signed tree head into held_ (after its checkpoint) and checks it.
    void take_tree_head();
    void check_tree_head(std::uint64_t size, const mac::tlog::Hash& root, const mac::tlog::Hash& mine);
    /// Stops keeping the tree (warning tree.unavailable, `why`; heads are still taken, not checked).
    void lose_tree(const std::string& why, std::uint64_t seq);
    void watch_record(std::string_view line, std::uint64_t seq, const mac::RecordScan* scan);
    /// The boot counter of a record line ("... boot=<b> ..."), 0 if it has none.
    static std::uint64_t record_boot(std::string_view line);
    /// restore()'s re-verification of the open segment (and the last boot counter it holds).
    Status restore_open_segment();
    void raise(std::string kind, Severity sev, std::string message, std::uint64_t seq = 0);

    AuditSource& source_;
    AuditStore& store_;
    const mac::AuditKey& key_;
    AlertSink& alerts_;
    DrainOptions options_;
    NowMs now_ms_;
    std::unique_ptr<mac::ChainVerifier> verifier_;
    std::uint64_t verified_entry_no_ = 0;  // the verifier has seen every stored entry through this one
    std::uint64_t acked_entry_no_ = 0;     // acknowledged to the module through this entry
    EntryBatch batch_;
    std::uint64_t segment_line_ = 0;
    std::int64_t segment_opened_ms_ = 0;
    std::int64_t rotate_at_ms_ = INT64_MAX;
    std::int64_t seal_requested_ms_ = 0;
    std::int64_t failed_alerted_ms_ = INT64_MIN / 2;  // when drain.failed was last raised
    std::string failed_condition_;                    // the error class it named ("" while healthy)
    std::uint64_t failures_since_alert_ = 0;
    CheckpointSink checkpoint_sink_;
    /// A checkpoint and its tree head, kept once the store holds record `covers` (the highest
    /// sequence number they name).
    struct HeldCheckpoint {
        std::uint64_t covers = 0;
        std::int64_t taken_ms = 0;  // held longer than checkpoint_interval: replaced (checkpoint.not_kept)
        std::string checkpoint;
        std::string tree_head;  // its "@treehead" line ("" if none was taken)
    };
    std::optional<HeldCheckpoint> held_;
    std::function<void()> commit_listener_;
    std::optional<mac::tlog::CompactTree> tree_;     // the durable records' tree (nullopt: off or lost)
    std::optional<mac::tlog::CompactTree> pending_;  // tree_ plus the batch being committed
    /// The tree after a batch: leaves appended in sequence order; it stops at a gap (gap_seq) and
    /// keeps its root when it passes the size of a module tree head that was ahead (root_at_check).
    struct TreeExtension {
        mac::tlog::CompactTree tree;
        std::uint64_t gap_seq = 0;  // the first record that does not follow (0: none)
        std::optional<mac::tlog::Hash> root_at_check;
    };
    static TreeExtension extend(const EntryBatch& batch, mac::tlog::CompactTree tree, std::uint64_t check_size);
    // The batch's tree being computed, on tree_thread_ for a large batch (joined by finish_tree();
    // tree_started_ below).
    std::optional<TreeExtension> tree_result_;
    std::optional<std::string> tree_failed_;  // what the helper's body threw
    std::jthread tree_thread_;
    std::optional<std::pair<std::uint64_t, mac::tlog::Hash>> tree_check_;  // a module root to check at its size
    bool tree_lost_alerted_ = false;
    bool tree_head_failed_alerted_ = false;
    std::int64_t last_record_ms_ = 0;  // the module's clock at the previous record (0: none seen)
    std::uint64_t last_boot_ = 0;      // the module's boot counter at the previous record (0: none seen)
    // A first start (no boot in the store): the module's boot counter at that start. Records of
    // boots up to it were written before the agent watched: a change among them is not an alert.
    std::uint64_t boot_baseline_ = 0;
    // restore(started_module): the boot the agent's own start of an embedded module gave it (0: none).
    std::uint64_t own_start_boot_ = 0;
    std::int64_t last_checkpoint_ms_ = INT64_MIN / 2;
    std::int64_t last_retained_check_ms_ = INT64_MIN / 2;  // maybe_checkpoint(): the store's first retained seq
    std::uint64_t last_retained_ = 0;                      // ... as the last checkpoint stated it (0: none)
    std::int64_t last_status_ms_ = 0;
    std::deque<std::pair<std::int64_t, std::uint64_t>> used_samples_;  // (time, used bytes) over predict_window
    int fill_level_ = 0;  // 0 ok, 1 warning, 2 critical: alerts fire on changes
    int failures_ = 0;    // consecutive failed steps
    bool seal_requested_ = false;
    bool seal_failed_alerted_ = false;
    bool tree_started_ = false;
    bool predicted_alerted_ = false;
    bool blocked_alerted_ = false;
    bool status_failed_alerted_ = false;
    bool checkpoint_owed_ = false;  // one fell due while another was held

    std::atomic<bool> ack_paused_{false};
    std::mutex options_mutex_;
    std::optional<DrainOptions> pending_options_;
    mutable std::mutex stats_mutex_;
    DrainStats stats_;
    LatencyHistogram batch_latency_;
    LatencyHistogram record_latency_;
    std::vector<std::int64_t> batch_record_ms_;  // module timestamps of the current batch's records
    std::jthread thread_;
};

}  // namespace hsmaudit::agent
