#include "agent/engine/pipeline/drain.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "agent/engine/store/first_retained.h"
#include "base/line_reader.h"
#include "base/logger.h"
#include "mac/encrypted_file.h"
#include "mac/note.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent {
namespace {

/// The store position's annex holding the drain's tree (docs/FORMAT.md 10.5): "tree <encoded>".
constexpr std::string_view kTreeAnnexPrefix = "tree ";

std::string tree_annex(const mac::tlog::CompactTree& tree) {
    std::string annex(kTreeAnnexPrefix);
    annex += tree.encode();
    return annex;
}
// Histogram bounds (seconds). A batch is verify + append + commit (fsync) + acknowledge: fsync
// dominates, from a fraction of a millisecond to seconds on a loaded disk. A record's age spans
// the poll interval (20 ms) to minutes while the store is paused or failing.
constexpr double kBatchLatencyBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
constexpr double kRecordLatencyBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                           2.5,   5,    10,    30,   60,  120,  300, 900};
}  // namespace

Result<RotationPeriod> parse_rotation_period(std::string_view t) {
    if (t == "never") return RotationPeriod::never;
    if (t == "hourly") return RotationPeriod::hourly;
    if (t == "daily") return RotationPeriod::daily;
    if (t == "weekly") return RotationPeriod::weekly;
    if (t == "monthly") return RotationPeriod::monthly;
    return make_error(errc::invalid_argument,
                      "rotation must be one of never, hourly, daily, weekly, monthly (got '" + std::string(t) + "')");
}

std::int64_t next_rotation_ms(RotationPeriod period, std::int64_t time_ms) {
    using namespace std::chrono;
    constexpr std::int64_t kHour = 3'600'000;
    constexpr std::int64_t kDay = 24 * kHour;
    switch (period) {
        case RotationPeriod::never: return INT64_MAX;
        case RotationPeriod::hourly: return (time_ms / kHour + 1) * kHour;
        case RotationPeriod::daily: return (time_ms / kDay + 1) * kDay;
        case RotationPeriod::weekly: {
            // 1970-01-01 was a Thursday; weeks start on Monday 00:00 UTC.
            const std::int64_t day = time_ms / kDay;
            const std::int64_t monday = day - ((day + 3) % 7);
            return (monday + 7) * kDay;
        }
        case RotationPeriod::monthly: {
            const sys_days d{days{time_ms / kDay}};
            const year_month_day ymd{d};
            const year_month next = year_month{ymd.year(), ymd.month()} + months{1};
            return sys_days{next / 1}.time_since_epoch().count() * kDay;
        }
    }
    return INT64_MAX;
}

Drain::Drain(AuditSource& source, AuditStore& store, const mac::AuditKey& key, AlertSink& alerts, DrainOptions options,
             NowMs now_ms)
    : source_(source),
      store_(store),
      key_(key),
      alerts_(alerts),
      options_(options),
      now_ms_(std::move(now_ms)),
      verifier_(
          std::make_unique<mac::ChainVerifier>(&key_, nullptr, [this](mac::Fault&& f) { on_fault(std::move(f)); })),
      batch_latency_(kBatchLatencyBounds),
      record_latency_(kRecordLatencyBounds) {
    verified_entry_no_ = store_.durable().entry_no;
    if (store_.durable().has_end) stats_.sealed_epoch = store_.durable().end_epoch;
    restore_tree();
}

Drain::~Drain() {
    // stop() takes a last checkpoint and tree head (strings, the sink): nothing may escape a destructor.
    (void)detail::run_catching([this] { stop(); });
}

void Drain::raise(std::string kind, Severity sev, std::string message, std::uint64_t seq) {
    alerts_.alert(Alert{std::move(kind), sev, std::move(message), seq, now_ms_()});
}

void Drain::on_fault(mac::Fault&& f) {
    {
        std::lock_guard lock(stats_mutex_);
        ++stats_.faults;
        if (static_cast<std::size_t>(f.kind) < stats_.faults_by_kind.size())
            ++stats_.faults_by_kind[static_cast<std::size_t>(f.kind)];
    }
    std::string where = f.file;
    if (f.line != 0) where += ":" + std::to_string(f.line);
    raise("chain." + std::string(mac::to_string(f.kind)), Severity::critical, where + ": " + f.message, f.seq);
}

Status Drain::restore(bool started_module) {
    verified_entry_no_ = store_.durable().entry_no;
    restore_tree();
    if (auto end = store_.durable().chain_end()) verifier_->resume(*end);
    HSMAUDIT_TRY(restore_open_segment());
    // The boot counter: the last one the store holds (a restart continues watching), else none
    // (a first start): the module's boots up to its current one happened before the agent
    // watched, so a change among the records already in the ring is not an alert (a freshly
    // initialised module: `hsmcore init` was boot 1, the first start is boot 2).
    if (last_boot_ == 0 || started_module) {
        if (auto s = source_.status(); s && s->boot != 0) {
            if (last_boot_ == 0)
                boot_baseline_ = s->boot;
            else
                own_start_boot_ = s->boot;  // embedded: the boot the agent's own start gave the module
        }
    }
    return {};
}

Status Drain::restore_open_segment() {
    const std::string path = store_.current_path();
    if (path.empty()) return {};
    // The open segment was verified when it was drained; verifying it again proves nobody
    // changed it while the agent was down, and rebuilds the chain state exactly.
    auto src = mac::open_segment_source(path, &key_);
    if (!src) return std::move(src).error();
    base::LineReader reader(std::move(*src), mac::kMaxLineBytes);
    base::Line line;
    bool first = true;
    for (;;) {
        auto got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got) break;
        if (first) {
            first = false;
            auto open = mac::parse_open_line(line.text);
            if (!open) {
                raise("store.damaged", Severity::critical,
                      path + ": the open segment does not start with an open line");
                return {};
            }
            verifier_->begin_segment(*open, line.text, std::filesystem::path(path).filename().string());
            segment_opened_ms_ = now_ms_();
            rotate_at_ms_ = next_rotation_ms(options_.rotation, segment_opened_ms_);
            last_boot_ = open->boot;
        } else {
            verifier_->line(line.text, line.number, line.terminated, line.too_long);
            if (auto boot = record_boot(line.text); boot != 0) last_boot_ = boot;
        }
        segment_line_ = line.number;
    }
    return {};
}

void Drain::verify_entry(const EntryBatch& batch, const EntryRef& e) {
    std::string_view text = batch.line(e);
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    switch (e.kind) {
        case EntryKind::open: {
            if (verifier_->in_segment()) verifier_->end_segment(false);  // the module never sealed it
            auto open = mac::parse_open_line(text);
            segment_line_ = 1;
            if (!open) {
                raise("chain.malformed_line", Severity::critical,
                      "malformed open line from the module: " + open.error().message);
                return;
            }
            verifier_->begin_segment(*open, text, mac::segment_file_name(open->serial, open->epoch));
            segment_opened_ms_ = now_ms_();
            rotate_at_ms_ = next_rotation_ms(options_.rotation, segment_opened_ms_);
            seal_requested_ = false;
            return;
        }
        case EntryKind::record:
        case EntryKind::seal:
            ++segment_line_;
            verifier_->line(text, segment_line_);
            if (e.kind == EntryKind::record) watch_record(text, e.seq, verifier_->last_record());
            if (e.kind == EntryKind::seal && verifier_->in_segment()) verifier_->end_segment(false);
            return;
    }
}

void Drain::set_ack_paused(bool paused, const std::string& reason) {
    if (ack_paused_.exchange(paused) == paused) return;
    if (paused)
        raise("drain.acks_paused", Severity::critical,
              "the drain stopped reading and acknowledging: " + reason +
                  ". The module keeps every record; its ring fills and then it stops cryptography");
    else
        raise("drain.acks_resumed", Severity::info, "the drain resumed: " + reason);
    std::lock_guard lock(stats_mutex_);
    stats_.acks_paused = paused;
}

void Drain::set_options(const DrainOptions& options) {
    std::lock_guard lock(options_mutex_);
    pending_options_ = options;
}

Result<std::size_t> Drain::step() {
    Result<std::size_t> r = make_error(errc::internal, "drain step did not run");
    if (auto threw = detail::run_catching([&] { r = step_once(); }))
        r = make_error(errc::internal, "drain step threw: " + *threw);
    if (!r) {
        on_step_failed(r.error());
    } else if (failures_ != 0) {
        raise(
            "drain.recovered", Severity::info,
            "the drain stores and acknowledges records again after " + std::to_string(failures_) + " failed attempts");
        failures_ = 0;
        failed_condition_.clear();
        failures_since_alert_ = 0;
        std::lock_guard lock(stats_mutex_);
        stats_.failing = false;
    }
    return r;
}

Result<std::size_t> Drain::step_once() {
    {
        std::lock_guard lock(options_mutex_);
        if (pending_options_) {
            options_ = *pending_options_;
            pending_options_.reset();
            if (options_.merkle_tree != tree_.has_value()) restore_tree();
            if (verifier_->in_segment()) rotate_at_ms_ = next_rotation_ms(options_.rotation, segment_opened_ms_);
        }
    }
    if (ack_paused_.load()) {
        // Nothing read is nothing stored and nothing acknowledged: the module keeps it all.
        std::this_thread::sleep_for(options_.poll_wait);
        const std::int64_t now = now_ms_();
        watch_ring(now);
        std::lock_guard lock(stats_mutex_);
        stats_.last_step_ms = now;  // paused on purpose, not stuck: the watchdog must not restart us
        return std::size_t{0};
    }
    if (store_.broken()) HSMAUDIT_TRY(reopen_store());
    batch_.clear();
    batch_record_ms_.clear();
    auto n = source_.read(store_.appended_entry_no(), options_.batch_max_entries, options_.poll_wait, batch_);
    if (!n) return std::move(n).error();
    const auto read_at = std::chrono::steady_clock::now();
    std::uint64_t records = 0, seals = 0, last_seq = 0;
    for (const EntryRef& e : batch_.entries) {
        if (e.kind == EntryKind::record) {
            ++records;
            last_seq = e.seq;
        } else if (e.kind == EntryKind::seal) {
            ++seals;
        }
    }
    if (!batch_.empty()) {
        start_tree(records);
        auto stored = store_batch();
        finish_tree();  // joined on every path (store_batch joins it before the position write)
        if (auto st = std::move(stored); !st) {
            // Whatever of the batch became durable is verified; the rest is read again.
            (void)reopen_store();
            return std::move(st).error();
        }
        if (pending_) tree_ = std::move(pending_);
        pending_.reset();
        (void)verify_durable(batch_);  // the whole batch: its records are counted below
        HSMAUDIT_TRY(acknowledge_durable());
        // Durable and acknowledged: the destinations' runners wake up to read it. After the
        // module's acknowledgement, so that a woken runner taking this CPU never delays it.
        if (commit_listener_) commit_listener_();
        batch_latency_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - read_at).count());
        if (!batch_record_ms_.empty()) {
            const std::int64_t acked_ms = now_ms_();
            auto tally = record_latency_.tally();
            for (const std::int64_t t : batch_record_ms_)
                record_latency_.count(tally, static_cast<double>(acked_ms - t) / 1000.0);
            record_latency_.add(tally);
        }
        std::lock_guard lock(stats_mutex_);
        stats_.entries += batch_.entries.size();
        stats_.records += records;
        stats_.records_verified += records;
        stats_.bytes_stored += batch_.text.size();
        stats_.seals += seals;
        ++stats_.commits;
        if (store_.durable().has_end) stats_.sealed_epoch = store_.durable().end_epoch;
        if (last_seq != 0) stats_.last_seq = last_seq;
        stats_.tree_size = tree_ ? tree_->size() : 0;
    } else {
        // What a re-opened store found durable (a commit whose fsync failed, written again).
        HSMAUDIT_TRY(acknowledge_durable());
    }
    const std::int64_t now = now_ms_();
    maybe_rotate(now);
    watch_ring(now);
    maybe_checkpoint(now, seals > 0);
    {
        std::lock_guard lock(stats_mutex_);
        stats_.last_step_ms = now;
    }
    return batch_.entries.size();
}

Status Drain::acknowledge_durable() {
    const std::uint64_t durable = store_.durable().entry_no;
    if (durable <= acked_entry_no_) return {};
    HSMAUDIT_TRY(source_.acknowledge(durable));
    acked_entry_no_ = durable;
    std::lock_guard lock(stats_mutex_);
    stats_.acked_entry_no = durable;
    return {};
}

Status Drain::store_batch() {
    HSMAUDIT_TRY(store_.append(batch_));
    // The batch's tree goes into the position's annex: it is joined once the data is durable.
    return store_.commit([this] { finish_tree(); });
}

Status Drain::reopen_store() {
    if (auto st = store_.reopen(); !st) return st;
    restore_tree();  // the tree committed with what is durable now
    {
        std::lock_guard lock(stats_mutex_);
        ++stats_.store_reopens;
    }
    // A commit whose position write reached the file although its fsync failed is durable now
    // (re-opening wrote it again): verify those entries, from the batch still in memory.
    if (const std::uint64_t records = verify_durable(batch_); records != 0) {
        std::lock_guard lock(stats_mutex_);
        stats_.records += records;
        stats_.records_verified += records;
    }
    if (verified_entry_no_ != store_.durable().entry_no) return rebuild_verifier();
    return {};
}

std::uint64_t Drain::verify_durable(const EntryBatch& batch) {
    const std::uint64_t durable = store_.durable().entry_no;
    std::uint64_t records = 0;
    for (const EntryRef& e : batch.entries) {
        if (e.entry_no <= verified_entry_no_ || e.entry_no > durable) continue;
        verify_entry(batch, e);
        verified_entry_no_ = e.entry_no;
        if (e.kind == EntryKind::record) ++records;
    }
    return records;
}

Status Drain::rebuild_verifier() {
    // The store and the verifier disagree (never expected): start again from what the store
    // holds, as a restart does. Faults already reported in the open segment may be reported again.
    verifier_ =
        std::make_unique<mac::ChainVerifier>(&key_, nullptr, [this](mac::Fault&& f) { on_fault(std::move(f)); });
    raise("drain.verifier_rebuilt", Severity::warning,
          "online verification restarted from the store at entry " + std::to_string(store_.durable().entry_no) +
              " after a write failure");
    return restore();
}

void Drain::on_step_failed(const Error& e) {
    ++failures_;
    const std::int64_t now = now_ms_();
    // The condition, without the numbers that change at every retry: one alert per condition,
    // then a reminder at most once a minute with how often it failed meanwhile.
    std::string condition = e.code.message();
    ++failures_since_alert_;
    const bool changed = condition != failed_condition_;
    if (changed || now - failed_alerted_ms_ >= 60'000) {
        std::string msg = "drain step failed: " + e.describe();
        if (!changed && failures_since_alert_ > 1)
            msg += " (" + std::to_string(failures_since_alert_) + " failed attempts since the last alert)";
        msg += "; the module keeps every record not yet stored; retrying";
        raise("drain.failed", Severity::critical, std::move(msg));
        failed_alerted_ms_ = now;
        failed_condition_ = std::move(condition);
        failures_since_alert_ = 0;
    }
    std::lock_guard lock(stats_mutex_);
    ++stats_.step_failures;
    stats_.failing = true;
    stats_.last_step_ms = now;  // failing and retrying is alive, not stuck
}

void Drain::maybe_rotate(std::int64_t now) {
    // The store's open segment decides, not the verifier's state (which skips a replayed segment).
    if (store_.current_path().empty()) return;
    // A seal asked for and not seen (the module was blocked, or restarted): ask again.
    if (seal_requested_ && now - seal_requested_ms_ < 30'000) return;
    const bool by_size = store_.open_segment_bytes() >= options_.segment_max_bytes;
    const bool by_time = now >= rotate_at_ms_;
    if (!by_size && !by_time) return;
    if (auto st = source_.request_seal(); !st) {
        if (!seal_failed_alerted_)
            raise("rotation.seal_failed", Severity::warning, "cannot ask the module to seal: " + st.error().describe());
        seal_failed_alerted_ = true;
        return;
    }
    seal_failed_alerted_ = false;
    seal_requested_ = true;
    seal_requested_ms_ = now;
}

std::uint64_t Drain::record_boot(std::string_view line) {
    // "<seq> <time> serial=<s> boot=<b> ..." (docs/FORMAT.md 2.5); 0 when there is none.
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.size() < sp + 25) return 0;
    const auto bp = line.find(" boot=", sp + 25);
    if (bp == std::string_view::npos) return 0;
    const auto end = line.find(' ', bp + 6);
    std::uint64_t boot = 0;
    if (!mac::parse_u64(line.substr(bp + 6, end == std::string_view::npos ? end : end - bp - 6), boot)) return 0;
    return boot;
}

void Drain::watch_record(std::string_view line, std::uint64_t seq, const mac::RecordScan* scan) {
    // "<seq> <time> serial=<s> boot=<b> ..." (docs/FORMAT.md 2.5); a malformed line is the verifier's to report.
    std::optional<std::int64_t> t;
    std::uint64_t boot = 0;
    if (scan != nullptr && scan->syntax_ok()) {
        // The verifier's one pass over this line read both (the same values: the time's 24 bytes
        // after the first space, the first " boot=" after them, which is the boot field).
        t = scan->time_ms;
        boot = scan->boot;
    } else {
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos || line.size() < sp + 25) return;
        if (auto parsed = mac::parse_time(line.substr(sp + 1, 24))) t = *parsed;
        boot = record_boot(line);
    }
    if (t) {
        if (last_record_ms_ != 0 && *t + options_.clock_backwards_tolerance.count() < last_record_ms_)
            raise("module.clock_backwards", Severity::warning,
                  "the module's clock went back " + std::to_string(last_record_ms_ - *t) + " ms at record " +
                      std::to_string(seq) + " (" + mac::format_time(last_record_ms_) + " then " + mac::format_time(*t) +
                      "): records may appear out of order; sync the module clock",
                  seq);
        last_record_ms_ = *t;
        batch_record_ms_.push_back(*t);
    }
    if (boot != 0) {
        if (last_boot_ == 0 && boot_baseline_ != 0) {
            // A first start: the agent has no state yet, so no earlier boot to compare with.
            base::logger().info(
                "module: first seen boot {} at record {} (the module is at boot {}; the agent "
                "has no earlier state)",
                boot, seq, boot_baseline_);
        } else if (last_boot_ != 0 && boot > last_boot_ && boot <= boot_baseline_) {
            // Still the backlog written before the agent's first start (the module's boot at that
            // start is the baseline): the module restarted before the agent watched it.
            base::logger().info("module: boot {} at record {}, before the agent first ran (the module is at boot {})",
                                boot, seq, boot_baseline_);
        } else if (last_boot_ != 0 && boot == own_start_boot_ && boot > last_boot_) {
            base::logger().info("module: boot {} at record {}: the module restarted with the agent (embedded mode)",
                                boot, seq);
        } else if (last_boot_ != 0 && boot != last_boot_) {
            raise(boot > last_boot_ ? "module.boot_changed" : "module.boot_counter_decreased",
                  boot > last_boot_ ? Severity::warning : Severity::critical,
                  "the module's boot counter went from " + std::to_string(last_boot_) + " to " + std::to_string(boot) +
                      " at record " + std::to_string(seq) +
                      (boot > last_boot_ ? ": the module restarted" : ": the module's state was reset or replayed"),
                  seq);
        }
        last_boot_ = boot;
    }
}

void Drain::maybe_checkpoint(std::int64_t now, bool sealed) {
    if (!checkpoint_sink_) return;
    release_checkpoint();
    // Version 2: the module signs the first sequence number the store still holds with the head,
    // so deleting the oldest segments or archives later shows (docs/FORMAT.md section 7). When
    // retention moves that number, a checkpoint stating it is taken at once (checked once a
    // second: a directory listing and one file's first line), so that the window in which the
    // newest checkpoint still names deleted records (trail_head_missing) stays short.
    constexpr std::int64_t kRetainedCheckMs = 1000;
    const bool due = sealed || checkpoint_owed_ || now - last_checkpoint_ms_ >= options_.checkpoint_interval.count();
    if (held_) {
        // The held one names records not stored yet; a newer one would name more. One the store
        // has not reached for a whole interval never will in time (the module's chain was reset
        // below it, or the drain cannot store): a fresh one takes its place, so the destinations
        // keep getting checkpoints.
        if (!due || now - held_->taken_ms < options_.checkpoint_interval.count()) {
            checkpoint_owed_ = checkpoint_owed_ || due;
            return;
        }
        raise("checkpoint.not_kept", Severity::warning,
              "a chain-head checkpoint (record " + std::to_string(held_->covers) + ") waited " +
                  std::to_string((now - held_->taken_ms) / 1000) + " s for the store, which holds records through " +
                  std::to_string(stored_seq()) + "; a new one takes its place");
        held_.reset();
    }
    if (!due && now - last_retained_check_ms_ < kRetainedCheckMs) return;
    last_retained_check_ms_ = now;
    const std::uint64_t retained = first_retained_seq(store_.dir(), key_).value_or(0);
    if (!due && retained == last_retained_) return;
    last_retained_ = retained;
    last_checkpoint_ms_ = now;
    checkpoint_owed_ = false;
    auto line = source_.checkpoint(retained);
    if (!line && retained != 0) {
        raise("checkpoint.retained_refused", Severity::warning,
              "the module refused a checkpoint stating retained=" + std::to_string(retained) + " (" +
                  line.error().describe() + "); taking one without it");
        line = source_.checkpoint(0);
    }
    if (!line) {
        raise("checkpoint.failed", Severity::warning, "cannot get a chain-head checkpoint: " + line.error().describe());
        return;
    }
    // A line that does not parse names nothing to wait for: kept at once, as received.
    const auto parsed = mac::parse_checkpoint_line(*line);
    held_ = HeldCheckpoint{parsed ? parsed->seq : 0, now, std::move(*line), {}};
    take_tree_head();
    release_checkpoint();
}

void Drain::release_checkpoint() {
    if (!held_) return;
    if (held_->covers > stored_seq()) return;
    HeldCheckpoint held = std::move(*held_);
    held_.reset();
    checkpoint_sink_(held.checkpoint);
    if (!held.tree_head.empty()) checkpoint_sink_(held.tree_head);
    std::lock_guard lock(stats_mutex_);
    ++stats_.checkpoints;
    if (!held.tree_head.empty()) ++stats_.tree_heads;
}

void Drain::restore_tree() {
    tree_.reset();
    pending_.reset();
    tree_check_.reset();
    if (!options_.merkle_tree) {
        store_.set_annex({});
        return;
    }
    const std::uint64_t stored = stored_seq();
    const std::string& annex = store_.durable_annex();
    std::string why;
    if (annex.empty()) {
        if (stored == 0) {
            tree_.emplace();
            store_.set_annex(tree_annex(*tree_));
            return;
        }
        why = "the store's position carries no tree (a store from before tree heads, or a repaired position file)";
    } else if (!annex.starts_with(kTreeAnnexPrefix)) {
        why = "the store's position annex is not a tree";
    } else {
        auto t = mac::tlog::CompactTree::decode(std::string_view(annex).substr(kTreeAnnexPrefix.size()));
        if (!t)
            why = "the stored tree does not decode: " + t.error().message;
        else if (t->size() != stored)
            why =
                "the stored tree covers " + std::to_string(t->size()) + " records, the store " + std::to_string(stored);
        else {
            tree_ = std::move(*t);
            store_.set_annex(annex);
            return;
        }
    }
    store_.set_annex({});
    if (!tree_lost_alerted_)
        raise("tree.unavailable", Severity::warning,
              "the agent keeps no Merkle tree of the chain: " + why +
                  ". The module's signed tree heads are still taken and kept, but not checked against the agent's "
                  "records");
    tree_lost_alerted_ = true;
}

namespace {

// Below this many records a batch's leaves are hashed on the drain thread; above, on a helper
// thread while the drain encrypts, writes and fsyncs the batch (the tree is needed only when the
// position is written). Hashing is the tree's whole cost: ~0.3 us a record with SHA-NI.
constexpr std::size_t kParallelTreeRecords = 256;

}  // namespace

Drain::TreeExtension Drain::extend(const EntryBatch& batch, mac::tlog::CompactTree tree, std::uint64_t check_size) {
    TreeExtension out;
    for (const EntryRef& e : batch.entries) {
        if (e.kind != EntryKind::record || e.seq <= tree.size()) continue;
        if (e.seq != tree.size() + 1) {
            out.gap_seq = e.seq;
            break;
        }
        // Leaf seq-1: the record's line without its LF (docs/FORMAT.md section 10).
        std::string_view leaf = batch.line(e);
        if (!leaf.empty() && leaf.back() == '\n') leaf.remove_suffix(1);
        tree.append(mac::tlog::leaf_hash(leaf));
        if (tree.size() == check_size) out.root_at_check = tree.root();
    }
    out.tree = std::move(tree);
    return out;
}

void Drain::start_tree(std::size_t records) {
    pending_.reset();
    if (!tree_) return;
    const std::uint64_t check = tree_check_ ? tree_check_->first : 0;
    tree_result_.reset();
    tree_failed_.reset();
    tree_started_ = true;
    auto job = [this, base = *tree_, check] {
        // An exception (bad_alloc) must not end the process from a helper thread: it is reported.
        tree_failed_ = detail::run_catching([&] { tree_result_ = extend(batch_, base, check); });
    };
    if (records < kParallelTreeRecords)
        job();
    else
        tree_thread_ = std::jthread(std::move(job));  // reads batch_, which nobody changes until finish_tree()
}

void Drain::finish_tree() {
    if (!tree_started_) return;
    tree_started_ = false;
    if (tree_thread_.joinable()) tree_thread_.join();
    if (!tree_result_) {
        lose_tree("the agent's Merkle tree could not be extended: " + tree_failed_.value_or("no result"), 0);
        return;
    }
    TreeExtension ext = std::move(*tree_result_);
    tree_result_.reset();
    if (ext.gap_seq != 0) {
        lose_tree("the agent's Merkle tree stops at record " + std::to_string(ext.tree.size()) +
                      ": the next record drained is " + std::to_string(ext.gap_seq),
                  ext.gap_seq);
        return;
    }
    if (ext.root_at_check && tree_check_) {
        check_tree_head(tree_check_->first, tree_check_->second, *ext.root_at_check);
        tree_check_.reset();
    }
    store_.set_annex(tree_annex(ext.tree));
    pending_ = std::move(ext.tree);
}

void Drain::lose_tree(const std::string& why, std::uint64_t seq) {
    raise("tree.unavailable", Severity::warning,
          why + ". The module's signed tree heads are still taken and kept, but no longer checked", seq);
    tree_lost_alerted_ = true;
    tree_.reset();
    pending_.reset();
    tree_check_.reset();
    store_.set_annex({});
}

void Drain::check_tree_head(std::uint64_t size, const mac::tlog::Hash& root, const mac::tlog::Hash& mine) {
    if (root == mine) return;
    raise("treehead.mismatch", Severity::critical,
          "the module's signed tree head for " + std::to_string(size) + " records has root " +
              mac::base64_encode(mac::ByteView(root.data(), root.size())) +
              ", the agent's own tree over the records "
              "it stored has " +
              mac::base64_encode(mac::ByteView(mine.data(), mine.size())) +
              ": the records the agent holds are not the ones the module signed (the note is kept)",
          size);
    std::lock_guard lock(stats_mutex_);
    ++stats_.tree_head_mismatches;
}

void Drain::take_tree_head() {
    if (!options_.merkle_tree) return;
    auto note = source_.tree_head();
    if (!note) {
        if (!tree_head_failed_alerted_)
            raise("treehead.failed", Severity::warning,
                  "cannot get the module's signed tree head: " + note.error().describe());
        tree_head_failed_alerted_ = true;
        return;
    }
    tree_head_failed_alerted_ = false;
    // One line (the note spans several); the agent's clock after it, unsigned, for SIEMs' timestamps.
    held_->tree_head = "@treehead " + mac::base64_encode(mac::as_bytes(*note)) + " time=" + mac::format_time(now_ms_());
    // Opened as any verifier opens it: the chain's origin, signed by the audit signing key (FORMAT.md 10.2).
    auto verifier = mac::tree_verifier(key_.pub());
    auto head = verifier ? mac::open_checkpoint(*note, *verifier) : Result<mac::TreeHead>(std::move(verifier).error());
    if (head) held_->covers = std::max(held_->covers, head->size);  // its size is its newest record's seq
    if (!head) {
        raise(
            "treehead.bad_signature", Severity::critical,
            "the module's tree head does not open with the chain's key (kept as received): " + head.error().describe());
        return;
    }
    if (!tree_) return;
    if (head->size == tree_->size()) {
        check_tree_head(head->size, head->root, tree_->root());
    } else if (head->size > tree_->size()) {
        tree_check_ = std::pair{head->size, head->root};  // checked when the drain's tree reaches that size
    } else {
        raise("treehead.mismatch", Severity::critical,
              "the module's signed tree head covers " + std::to_string(head->size) + " records, fewer than the " +
                  std::to_string(tree_->size()) + " the agent stored: the module's tree went back (the note is kept)",
              head->size);
        std::lock_guard lock(stats_mutex_);
        ++stats_.tree_head_mismatches;
    }
}

void Drain::watch_ring(std::int64_t now) {
    if (now - last_status_ms_ < options_.status_interval.count()) return;
    last_status_ms_ = now;
    auto st = source_.status();
    if (!st) {
        // Once per outage, not once a second: the failure is a condition, not an event.
        if (!status_failed_alerted_)
            raise("module.status_failed", Severity::warning,
                  "cannot read the module's status: " + st.error().describe());
        status_failed_alerted_ = true;
        return;
    }
    status_failed_alerted_ = false;
    if (st->capacity_bytes == 0) return;
    const double fill = static_cast<double>(st->used_bytes) / static_cast<double>(st->capacity_bytes);
    // The trend over a window, not between two samples: a ring drained in batches saw-tooths
    // between empty and a few percent, which is not filling. Only a sustained net rise is.
    used_samples_.emplace_back(now, st->used_bytes);
    while (used_samples_.size() > 2 && now - used_samples_[1].first >= options_.predict_window.count())
        used_samples_.pop_front();
    double fill_rate = 0;  // bytes/s, net over the window
    const auto& [t0, u0] = used_samples_.front();
    if (now - t0 >= options_.predict_window.count() / 2 && now > t0)
        fill_rate =
            (static_cast<double>(st->used_bytes) - static_cast<double>(u0)) * 1000.0 / static_cast<double>(now - t0);
    const double capacity = static_cast<double>(st->capacity_bytes);
    const double reserve =
        st->reserve_bytes != 0 ? static_cast<double>(st->reserve_bytes) : options_.reserve_fraction * capacity;
    const double reserve_at = capacity - reserve;
    const double to_reserve =
        fill_rate > 1.0 ? std::max(0.0, reserve_at - static_cast<double>(st->used_bytes)) / fill_rate : -1;

    const int level = fill >= options_.fill_critical ? 2 : fill >= options_.fill_warning ? 1 : 0;
    if (level != fill_level_) {
        const std::string pct = std::to_string(static_cast<int>(fill * 100)) + "%";
        if (level == 2)
            raise("ring.fill_critical", Severity::critical, "the module's audit ring is " + pct + " full");
        else if (level == 1)
            raise("ring.fill_warning", Severity::warning, "the module's audit ring is " + pct + " full");
        else
            raise("ring.fill_clear", Severity::info, "the module's audit ring is back to " + pct + " full");
        fill_level_ = level;
    }
    // Hysteresis: raised below the threshold, cleared only well above it (or when not filling).
    const bool soon = predicted_alerted_ ? (to_reserve >= 0 && to_reserve < 2 * options_.predict_warning_s)
                                         : (to_reserve >= 0 && to_reserve < options_.predict_warning_s);
    if (soon != predicted_alerted_) {
        if (soon)
            raise("ring.predicted_full", Severity::critical,
                  "the module's audit ring will reach its reserve in about " +
                      std::to_string(static_cast<int>(to_reserve)) +
                      " s at the current rate; the module then stops cryptography");
        else
            raise("ring.predicted_full_clear", Severity::info, "the module's audit ring is no longer filling fast");
        predicted_alerted_ = soon;
    }
    if (st->blocked != blocked_alerted_) {
        if (st->blocked)
            raise("module.blocked", Severity::critical, "the module has stopped cryptography: its audit ring is full");
        else
            raise("module.resumed", Severity::info, "the module resumed cryptography");
        blocked_alerted_ = st->blocked;
    }
    std::lock_guard lock(stats_mutex_);
    stats_.ring_fill = fill;
    stats_.ring_fill_peak = std::max(stats_.ring_fill_peak, fill);
    stats_.seconds_to_reserve = to_reserve;
    stats_.module_blocked = st->blocked;
}

void Drain::start() {
    thread_ = std::jthread([this](const std::stop_token& stop) {
        std::mutex pace_mutex;
        std::condition_variable_any pace;  // nobody notifies it: a wait ends at its time or at stop
        while (!stop.stop_requested()) {
            const auto began = std::chrono::steady_clock::now();
            if (auto moved = step()) {
                // Group commit: a commit costs the same CPU (fsync, acknowledgement, destinations'
                // wake-ups) for one record as for thousands. Records arriving meanwhile wait in
                // the ring; a step whose read had to wait for the first entry started long enough
                // ago, so a lone record is not delayed.
                if (*moved != 0 && *moved < options_.batch_max_entries && options_.commit_interval.count() > 0) {
                    std::unique_lock lock(pace_mutex);
                    (void)pace.wait_until(lock, stop, began + options_.commit_interval, [] { return false; });
                }
                continue;
            }
            // Nothing is lost: the module keeps every entry until acknowledged. step() alerted; back off.
            const auto until = std::chrono::steady_clock::now() +
                               std::chrono::milliseconds(std::min(5000, 50 << std::min(failures_, 7)));
            while (!stop.stop_requested() && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                watch_ring(now_ms_());  // the ring fills while the store fails: keep alerting on it
            }
        }
    });
}

void Drain::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
        // A last chain head at a clean stop: what the module holds is on record off the box. It
        // is kept once the store holds what it names: the records the module wrote since the
        // last step (the built-in workload has stopped by now) are stored first. A module that
        // goes on writing is followed for kStopDrainLimit at most; what is left stays in it.
        maybe_checkpoint(now_ms_(), true);
        const auto until = std::chrono::steady_clock::now() + kStopDrainLimit;
        while (held_ && std::chrono::steady_clock::now() < until) {
            auto moved = step();
            if (!moved || *moved == 0) break;  // step() ends with maybe_checkpoint(): kept if covered
        }
        if (held_) {
            raise("checkpoint.not_kept", Severity::info,
                  "the last chain-head checkpoint (record " + std::to_string(held_->covers) +
                      ") is not kept: the store holds records through " + std::to_string(stored_seq()) +
                      "; the module keeps the rest, drained at the next start");
            held_.reset();
        }
    }
}

DrainStats Drain::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

}  // namespace hsmaudit::agent
