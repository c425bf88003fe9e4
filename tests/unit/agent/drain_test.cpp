// The drain and the store together, against a module stand-in that produces real chain entries.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "agent/engine/pipeline/drain.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/first_retained.h"
#include "fake_module.h"
#include "mac/verifier.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using testing::AlertList;
using testing::FakeModule;

class DrainTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-drain-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        auto k = mac::generate_chain_keys();
        ASSERT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<FakeModule>(*keys_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::unique_ptr<AuditStore> open_store() {
        auto s = AuditStore::open(AuditStoreOptions{dir_.string(), GetParam()}, keys_->key);
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        return s ? std::move(*s) : nullptr;
    }
    std::unique_ptr<Drain> make_drain(AuditStore& store, DrainOptions opt = {}) {
        opt.poll_wait = std::chrono::milliseconds(0);
        return std::make_unique<Drain>(*module_, store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    }
    void drain_all(Drain& d) {
        for (int i = 0; i < 1000 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(d.step().has_value());
        ASSERT_EQ(module_->acked(), module_->size());
    }
    /// The store verified, with the checkpoint lines a sink received as anchors.
    mac::VerifyReport verify(const std::vector<std::string>& checkpoint_lines = {}) {
        mac::VerifyOptions opt;
        opt.key.emplace(keys_->key);
        for (const auto& l : checkpoint_lines) {
            auto c = mac::parse_checkpoint_line(l);
            EXPECT_TRUE(c.has_value()) << l;
            if (c) opt.anchors.push_back(*c);
        }
        auto r = mac::verify_paths({dir_.string()}, opt);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
        return r ? *r : mac::VerifyReport{};
    }

    static inline int counter_ = 0;
    fs::path dir_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<FakeModule> module_;
    AlertList alerts_;
    std::int64_t now_ms_ = 1'795'500'000'000;
};

TEST_P(DrainTest, StoresAndAcknowledgesEverythingAndTheTrailVerifies) {
    auto store = open_store();
    DrainOptions opt;
    opt.segment_max_bytes = 20'000;  // several rotations
    auto drain = make_drain(*store, opt);
    ASSERT_TRUE(drain->restore().has_value());
    for (int round = 0; round < 10; ++round) {
        module_->produce(137);
        drain_all(*drain);
    }
    EXPECT_TRUE(module_->violations().empty()) << module_->violations().front();
    EXPECT_GT(module_->seal_requests(), 0);
    auto sealed = store->sealed_segments();
    ASSERT_TRUE(sealed.has_value());
    EXPECT_GT(sealed->size(), 1u);
    const auto report = verify();
    EXPECT_TRUE(report.verified()) << (report.faults.empty() ? "" : report.faults.front().message);
    EXPECT_EQ(report.records, 1370u);
    EXPECT_EQ(report.first_seq, 1u);
    EXPECT_EQ(report.last_seq, 1370u);
    EXPECT_EQ(report.open_segments, 1u);
    EXPECT_TRUE(alerts_.alerts().empty()) << alerts_.alerts().front().message;
    EXPECT_EQ(drain->stats().records, 1370u);
}

TEST_P(DrainTest, SegmentsAreEncryptedAtRestWhenConfigured) {
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->produce(10);
    drain_all(*drain);
    std::ifstream in(store->current_path(), std::ios::binary);
    std::string head(8, '\0');
    in.read(head.data(), 8);
    EXPECT_EQ(head == "HSMAENC2", GetParam());
    EXPECT_EQ(head.starts_with("@open "), !GetParam());
}

TEST_P(DrainTest, DataWrittenButNotCommittedIsCutOnRecoveryAndDrainedAgainWithoutDuplicates) {
    const fs::path position = dir_ / "position";
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        module_->produce(50);
        drain_all(*drain);
        fs::copy_file(position, dir_ / "position.saved");
        // The next batch's data reaches the disk, but the agent dies before its position slot
        // is written: restoring the saved position file reproduces exactly that state.
        module_->produce(30);
        EntryBatch batch;
        ASSERT_TRUE(module_->read(store->appended_entry_no(), 1000, {}, batch).has_value());
        ASSERT_TRUE(store->append(batch).has_value());
        ASSERT_TRUE(store->commit().has_value());
        // ...and an appended batch that never reached commit at all.
        module_->produce(5);
        batch.clear();
        ASSERT_TRUE(module_->read(store->appended_entry_no(), 1000, {}, batch).has_value());
        ASSERT_TRUE(store->append(batch).has_value());
    }
    fs::copy_file(dir_ / "position.saved", position, fs::copy_options::overwrite_existing);
    fs::remove(dir_ / "position.saved");
    auto store = open_store();
    EXPECT_NE(store->recovery_summary().find("uncommitted bytes"), std::string::npos) << store->recovery_summary();
    EXPECT_EQ(store->durable().entry_no, 51u);  // the open line and 50 records
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    const auto report = verify();
    EXPECT_TRUE(report.verified()) << (report.faults.empty() ? "" : report.faults.front().message);
    EXPECT_EQ(report.records, 85u);
    EXPECT_EQ(report.last_seq, 85u);
    EXPECT_TRUE(alerts_.alerts().empty());
}

TEST_P(DrainTest, ASealAppendedButNotCommittedIsUndoneOnRecovery) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        module_->produce(20);
        drain_all(*drain);
        module_->seal_now();
        module_->produce(5);
        EntryBatch batch;
        ASSERT_TRUE(module_->read(store->appended_entry_no(), 1000, {}, batch).has_value());
        ASSERT_TRUE(store->append(batch).has_value());  // seals, moves the file, opens the next: uncommitted
    }
    auto store = open_store();
    EXPECT_NE(store->recovery_summary().find("moved"), std::string::npos) << store->recovery_summary();
    auto sealed = store->sealed_segments();
    ASSERT_TRUE(sealed.has_value());
    EXPECT_TRUE(sealed->empty());
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    const auto report = verify();
    EXPECT_TRUE(report.verified()) << (report.faults.empty() ? "" : report.faults.front().message);
    EXPECT_EQ(report.records, 25u);
    EXPECT_EQ(report.sealed_segments, 1u);
}

TEST_P(DrainTest, RandomCrashPointsNeverLoseOrDuplicateARecord) {
    std::mt19937 rng(20261124);
    std::uint64_t produced = 0;
    for (int cycle = 0; cycle < 15; ++cycle) {
        auto store = open_store();
        auto drain = make_drain(*store, DrainOptions{.segment_max_bytes = 8000});
        ASSERT_TRUE(drain->restore().has_value());
        const int steps = static_cast<int>(rng() % 4);
        for (int s = 0; s < steps; ++s) {
            const auto n = 1 + rng() % 40;
            module_->produce(n);
            produced += n;
            ASSERT_TRUE(drain->step().has_value());
        }
        if (rng() % 2 == 0) {  // die with an appended, uncommitted batch
            module_->produce(7);
            produced += 7;
            EntryBatch batch;
            ASSERT_TRUE(module_->read(store->appended_entry_no(), 1 + rng() % 20, {}, batch).has_value());
            ASSERT_TRUE(store->append(batch).has_value());
        }
    }
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    EXPECT_TRUE(module_->violations().empty());
    const auto report = verify();
    EXPECT_TRUE(report.verified()) << (report.faults.empty() ? "" : report.faults.front().message);
    EXPECT_EQ(report.records, produced);
    EXPECT_EQ(report.last_seq, produced);
}

TEST_P(DrainTest, ATamperedRecordIsAlertedStoredAndStillAcknowledged) {
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->produce(10);
    auto& e = module_->entry(6);  // record 5
    const auto at = e.line.find("result=0x");
    e.line[at + 16] = e.line[at + 16] == '1' ? '2' : '1';
    drain_all(*drain);
    ASSERT_TRUE(alerts_.has("chain.record_mac_mismatch"));
    EXPECT_EQ(alerts_.alerts().front().seq, 5u);
    EXPECT_EQ(drain->stats().faults, 1u);
    const auto report = verify();
    EXPECT_EQ(report.records, 10u);  // nothing dropped
    EXPECT_EQ(report.fault_counts[static_cast<std::size_t>(mac::FaultKind::record_mac_mismatch)], 1u);
}

TEST_P(DrainTest, AnOpenSegmentAlteredWhileTheAgentWasDownIsAlertedAtRestart) {
    if (GetParam()) GTEST_SKIP() << "plain files only: an encrypted one is covered by the chunk tag";
    std::string path;
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        module_->produce(10);
        drain_all(*drain);
        path = store->current_path();
    }
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(f)), {});
        const auto at = text.find("event=LUNA_", text.find('\n') + 1);
        text[at + 6] = 'X';
        f.seekp(0);
        f << text;
    }
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    EXPECT_TRUE(alerts_.has("chain.record_mac_mismatch"));
}

TEST_P(DrainTest, RingFillAndBlockingRaiseAlertsAndClear) {
    module_ = std::make_unique<FakeModule>(*keys_, 20'000);
    auto store = open_store();
    DrainOptions opt;
    opt.batch_max_entries = 1;  // drain slowly: the ring stays full at the next status read
    auto drain = make_drain(*store, opt);
    module_->produce(300);
    module_->set_blocked(true);
    now_ms_ += 2000;
    ASSERT_TRUE(drain->step().has_value());
    EXPECT_TRUE(alerts_.has("ring.fill_critical"));
    EXPECT_TRUE(alerts_.has("module.blocked"));
    EXPECT_FALSE(alerts_.has("ring.fill_clear"));
    module_->set_blocked(false);
    drain_all(*drain);
    now_ms_ += 2000;
    ASSERT_TRUE(drain->step().has_value());
    EXPECT_TRUE(alerts_.has("ring.fill_clear"));
    EXPECT_TRUE(alerts_.has("module.resumed"));
    EXPECT_GT(drain->stats().ring_fill_peak, 0.8);
}

TEST_P(DrainTest, ASustainedRiseIsPredictedButADrainedSawToothIsNot) {
    module_ = std::make_unique<FakeModule>(*keys_, 500'000);
    auto store = open_store();
    auto drain = make_drain(*store);
    // Drained every second: the ring saw-tooths between empty and a burst; no prediction.
    for (int s = 0; s < 30; ++s) {
        module_->produce(200);
        now_ms_ += 1000;
        ASSERT_TRUE(drain->step().has_value());
    }
    EXPECT_FALSE(alerts_.has("ring.predicted_full"));
    // The agent cannot acknowledge (e.g. its disk is full): the ring rises steadily.
    drain->set_ack_paused(true, "test");
    for (int s = 0; s < 30 && !alerts_.has("ring.predicted_full"); ++s) {
        module_->produce(200);
        now_ms_ += 1000;
        ASSERT_TRUE(drain->step().has_value());
    }
    EXPECT_TRUE(alerts_.has("ring.predicted_full"));
    EXPECT_GT(drain->stats().seconds_to_reserve, 0);
}

TEST_P(DrainTest, SignedCheckpointsAreTakenAtEverySealAndOnTheInterval) {
    auto store = open_store();
    DrainOptions opt;
    opt.checkpoint_interval = std::chrono::milliseconds(60'000);
    auto drain = make_drain(*store, opt);
    std::vector<std::string> lines;
    drain->set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    module_->produce(10);
    ASSERT_TRUE(drain->step().has_value());  // the first step takes one
    EXPECT_EQ(lines.size(), 1u);
    module_->produce(10);
    now_ms_ += 1000;
    ASSERT_TRUE(drain->step().has_value());  // not due yet
    EXPECT_EQ(lines.size(), 1u);
    module_->seal_now();
    module_->produce(1);
    ASSERT_TRUE(drain->step().has_value());  // a seal: one more
    EXPECT_EQ(lines.size(), 2u);
    now_ms_ += 60'000;
    ASSERT_TRUE(drain->step().has_value());  // the interval
    ASSERT_EQ(lines.size(), 3u);
    auto c = mac::parse_checkpoint_line(lines.back());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->verify(keys_->key.pubkey()));
    EXPECT_EQ(c->seq, 21u);
    // The stored trail matches the checkpoints.
    mac::VerifyOptions vo;
    vo.key.emplace(keys_->key);
    for (const auto& l : lines) vo.anchors.push_back(*mac::parse_checkpoint_line(l));
    auto r = mac::verify_paths({dir_.string()}, vo);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->verified());
    EXPECT_EQ(r->anchors_checked, 2u);  // records 10 and 21 (two checkpoints name record 21)
    // Version 2: the module signed the first sequence number the store held.
    EXPECT_EQ(c->version, 2u);
    EXPECT_EQ(c->retained, 1u);
    EXPECT_EQ(module_->last_retained(), 1u);
    EXPECT_EQ(r->retained_seq, 1u);
    // Deleting the oldest segment (records 1-20) is then detected, and the store says so itself.
    const auto segs = list_store_segments(dir_.string());
    ASSERT_GE(segs.size(), 2u);
    fs::remove(segs.front().path);
    EXPECT_EQ(first_retained_seq(dir_.string(), keys_->key).value_or(0), 21u);
    // The drain notices within a second and takes a checkpoint stating the new first record.
    now_ms_ += 1000;
    ASSERT_TRUE(drain->step().has_value());
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(module_->last_retained(), 21u);
    now_ms_ += 1000;
    ASSERT_TRUE(drain->step().has_value());
    EXPECT_EQ(lines.size(), 4u);  // unchanged: none
    auto cut = mac::verify_paths({dir_.string()}, vo);
    ASSERT_TRUE(cut.has_value());
    EXPECT_EQ(cut->fault_counts[static_cast<std::size_t>(mac::FaultKind::trail_head_missing)], 1u);
    // With that newest checkpoint among the anchors, the remaining trail verifies again.
    vo.anchors.push_back(*mac::parse_checkpoint_line(lines.back()));
    auto again = mac::verify_paths({dir_.string()}, vo);
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(again->verified()) << (again->faults.empty() ? "" : again->faults[0].message);
    EXPECT_EQ(again->retained_seq, 21u);
}

TEST_P(DrainTest, AModuleClockGoingBackAndABootCounterChangeAreAlerted) {
    auto store = open_store();
    auto drain = make_drain(*store);
    module_->produce(5);
    module_->produce_at(module_->now_ms() - 500);  // within the 1 s tolerance: not an alert
    drain_all(*drain);
    EXPECT_TRUE(alerts_.alerts().empty());
    module_->produce_at(module_->now_ms() - 3'600'000);  // an hour back
    module_->reboot();
    module_->produce(2);
    drain_all(*drain);
    ASSERT_TRUE(alerts_.has("module.clock_backwards"));
    ASSERT_TRUE(alerts_.has("module.boot_changed"));
    for (const auto& a : alerts_.alerts()) {
        if (a.kind == "module.clock_backwards") {
            EXPECT_EQ(a.seq, 7u);
        }
        if (a.kind == "module.boot_changed") {
            EXPECT_EQ(a.seq, 8u);
        }
    }
    EXPECT_EQ(alerts_.alerts().size(), 2u);
    EXPECT_TRUE(verify().verified());  // the records are authentic: only the clock and the boot changed
}

// Issue 16 item 6: a first start against a freshly initialised module (`hsmcore init` wrote its
// records as boot 1, the module was started again as boot 2 before the agent ran) is not a
// module restart the agent saw: no alert.
TEST_P(DrainTest, AFirstStartAgainstAFreshlyInitialisedModuleRaisesNoBootAlert) {
    module_->produce(3);  // the init session's records (boot 1)
    module_->reboot();    // the module's first real start (boot 2)
    module_->produce(4);
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    EXPECT_FALSE(alerts_.has("module.boot_changed"));
    EXPECT_TRUE(alerts_.alerts().empty()) << alerts_.alerts().front().kind;
    // A real restart while the agent runs is still a warning.
    module_->reboot();
    module_->produce(2);
    drain_all(*drain);
    ASSERT_TRUE(alerts_.has("module.boot_changed"));
    EXPECT_EQ(alerts_.alerts().size(), 1u);
    EXPECT_EQ(alerts_.alerts().front().seq, 8u);
    EXPECT_EQ(alerts_.alerts().front().severity, Severity::warning);
}

// A module that restarted many times before the agent's first start (boot counter 5, records of
// boots 3, 4 and 5 in the ring) and no agent state: "first seen boot N" at info, no alert.
TEST_P(DrainTest, AFirstStartAgainstAModuleWithAnEarlierBootHistoryRaisesNoBootAlert) {
    module_->reboot();
    module_->reboot();
    module_->produce(2);  // boot 3
    module_->reboot();
    module_->produce(2);  // boot 4
    module_->reboot();
    module_->produce(2);  // boot 5
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    EXPECT_TRUE(alerts_.alerts().empty()) << alerts_.alerts().front().kind;
}

// The agent's state keeps the boot counter (the store's open segment): a module restart while
// the agent was stopped is alerted at the restarted agent's first record.
TEST_P(DrainTest, AModuleRestartWhileTheAgentWasDownIsAlertedAfterTheAgentRestarts) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        ASSERT_TRUE(drain->restore().has_value());
        module_->produce(5);
        drain_all(*drain);
    }
    EXPECT_TRUE(alerts_.alerts().empty());
    module_->reboot();
    module_->produce(3);
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore().has_value());
    drain_all(*drain);
    ASSERT_TRUE(alerts_.has("module.boot_changed"));
    EXPECT_EQ(alerts_.alerts().size(), 1u);
    EXPECT_EQ(alerts_.alerts().front().seq, 6u);
    EXPECT_NE(alerts_.alerts().front().message.find("from 1 to 2"), std::string::npos)
        << alerts_.alerts().front().message;
    // And an agent restart without a module restart is not.
    drain.reset();
    store.reset();
    module_->produce(2);
    auto store2 = open_store();
    auto drain2 = make_drain(*store2);
    ASSERT_TRUE(drain2->restore().has_value());
    drain_all(*drain2);
    EXPECT_EQ(alerts_.alerts().size(), 1u);
}

// Embedded mode: the agent starts the module itself, so every agent start is one module restart
// (one boot more): info, not an alert. Two boots more means someone else started the module
// while the agent was down: alerted.
TEST_P(DrainTest, AnEmbeddedModuleRestartedByTheAgentsOwnStartIsNotAnAlert) {
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        ASSERT_TRUE(drain->restore(true).has_value());
        module_->produce(5);
        drain_all(*drain);
    }
    module_->reboot();  // the agent's own start of the module
    module_->produce(3);
    {
        auto store = open_store();
        auto drain = make_drain(*store);
        ASSERT_TRUE(drain->restore(true).has_value());
        drain_all(*drain);
    }
    EXPECT_TRUE(alerts_.alerts().empty()) << alerts_.alerts().front().message;
    module_->reboot();  // someone else opened the module while the agent was down...
    module_->produce(1);
    module_->reboot();  // ...and then the agent's own start
    module_->produce(1);
    auto store = open_store();
    auto drain = make_drain(*store);
    ASSERT_TRUE(drain->restore(true).has_value());
    drain_all(*drain);
    ASSERT_TRUE(alerts_.has("module.boot_changed"));
    EXPECT_EQ(alerts_.alerts().size(), 1u);  // 3 to 4 is the agent's own start
    EXPECT_NE(alerts_.alerts().front().message.find("from 2 to 3"), std::string::npos)
        << alerts_.alerts().front().message;
}

/// The module stand-in shared by the drain's own thread and the test thread (FakeModule is not
/// thread-safe), noting when each read that found entries began.
class LockedModule : public AuditSource {
public:
    explicit LockedModule(FakeModule& m) : m_(m) {}
    void produce(std::size_t n) {
        const std::lock_guard lock(mutex_);
        m_.produce(n);
    }
    bool all_acked() {
        const std::lock_guard lock(mutex_);
        return m_.acked() == m_.size();
    }
    std::vector<std::chrono::steady_clock::time_point> reads() {
        const std::lock_guard lock(mutex_);
        return reads_;
    }
    Result<std::size_t> read(std::uint64_t after, std::size_t max, std::chrono::milliseconds wait,
                             EntryBatch& out) override {
        const auto at = std::chrono::steady_clock::now();
        {
            const std::lock_guard lock(mutex_);
            auto n = m_.read(after, max, wait, out);
            if (!n || *n != 0) {
                if (n) reads_.push_back(at);
                return n;
            }
        }
        std::this_thread::sleep_for(wait);  // an empty ring: the module's read waits for new entries
        return std::size_t{0};
    }
    Status acknowledge(std::uint64_t entry_no) override {
        const std::lock_guard lock(mutex_);
        return m_.acknowledge(entry_no);
    }
    Status request_seal() override {
        const std::lock_guard lock(mutex_);
        return m_.request_seal();
    }
    Result<SourceStatus> status() override {
        const std::lock_guard lock(mutex_);
        return m_.status();
    }
    Result<std::string> checkpoint(std::uint64_t retained) override {
        const std::lock_guard lock(mutex_);
        if (next_checkpoint_) {
            std::string line = std::move(*next_checkpoint_);
            next_checkpoint_.reset();
            return line;
        }
        m_.produce(writes_before_checkpoint_);  // the module's clients ran between the drain's read and this
        return m_.checkpoint(retained);
    }
    void set_writes_before_checkpoint(std::size_t n) {
        const std::lock_guard lock(mutex_);
        writes_before_checkpoint_ = n;
    }
    /// The next checkpoint request gets this line.
    void set_next_checkpoint(std::string line) {
        const std::lock_guard lock(mutex_);
        next_checkpoint_ = std::move(line);
    }

private:
    FakeModule& m_;
    std::mutex mutex_;
    std::size_t writes_before_checkpoint_ = 0;
    std::optional<std::string> next_checkpoint_;
    std::vector<std::chrono::steady_clock::time_point> reads_;
};

/// Polls until the drain's thread has acknowledged everything the module wrote (20 s at most).
bool all_acked_within_20s(LockedModule& module) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!module.all_acked() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return module.all_acked();
}

// Group commit: while the module writes less than a batch, the drain's thread starts a step that
// moves entries at most once per commit_interval; every record is still stored and acknowledged.
TEST_P(DrainTest, WhileTheModuleWritesLessThanABatchStepsStartAtMostOncePerCommitInterval) {
    auto store = open_store();
    LockedModule module(*module_);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(2);
    opt.commit_interval = std::chrono::milliseconds(60);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    ASSERT_TRUE(drain.restore().has_value());
    drain.start();
    // The module writes a record every 2 ms for about 0.4 s (the workload, not a wait).
    for (int i = 0; i < 200; ++i) {
        module.produce(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const bool acked = all_acked_within_20s(module);
    drain.stop();
    ASSERT_TRUE(acked);
    const auto reads = module.reads();
    ASSERT_GE(reads.size(), 2u);
    for (std::size_t i = 1; i < reads.size(); ++i)
        EXPECT_GE(reads[i] - reads[i - 1], std::chrono::milliseconds(55)) << "read " << i << " of " << reads.size();
    EXPECT_LT(reads.size(), 200u / 4);  // many records a commit, not one
    EXPECT_EQ(drain.stats().records, 200u);
    EXPECT_TRUE(verify().verified());
}

// A backlog (full batches) is drained without pausing between batches, and stop() does not wait
// out a pause.
TEST_P(DrainTest, ABacklogIsDrainedWithoutPauseAndStopEndsAPause) {
    auto store = open_store();
    LockedModule module(*module_);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(2);
    opt.batch_max_entries = 10;
    opt.commit_interval = std::chrono::milliseconds(1000);
    module.produce(95);  // 96 entries with the open line: nine full batches, then six
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    ASSERT_TRUE(drain.restore().has_value());
    const auto started = std::chrono::steady_clock::now();
    drain.start();
    const auto deadline = started + std::chrono::seconds(20);
    while (!module.all_acked() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(module.all_acked());
    // Paced full batches would take nine pauses of a second each.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    const auto reads = module.reads();
    ASSERT_EQ(reads.size(), 10u);
    // The drain now waits out its pause after the short last batch: stop() ends it.
    const auto stopping = std::chrono::steady_clock::now();
    drain.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::milliseconds(900));
    EXPECT_EQ(drain.stats().records, 95u);
}

// The module signs its head, which runs ahead of the drain: a checkpoint naming records the store
// lacks is held and kept once they are stored. A kept checkpoint never proves records the store
// does not hold (`hsmaudit verify --anchors` would call that trail_truncated).
TEST_P(DrainTest, ACheckpointNamingRecordsNotYetStoredIsKeptOnceTheyAre) {
    auto store = open_store();
    LockedModule module(*module_);
    module.set_writes_before_checkpoint(5);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(0);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    std::vector<std::string> lines;
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    module.produce(10);
    ASSERT_TRUE(drain.step().has_value());  // stores 10 records; the module signs record 15
    EXPECT_TRUE(lines.empty());
    EXPECT_EQ(drain.stats().checkpoints, 0u);
    module.set_writes_before_checkpoint(0);
    ASSERT_TRUE(drain.step().has_value());  // stores 11-15: kept
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(drain.stats().checkpoints, 1u);
    auto c = mac::parse_checkpoint_line(lines.front());
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->seq, 15u);
    const auto r = verify(lines);
    EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults.front().message);
    EXPECT_EQ(r.anchors_checked, 1u);
}

// A checkpoint the store never reaches (here: of the same chain 100 records further, as a module
// reset below a head it had signed would leave) is replaced once it has waited a whole interval,
// so the destinations keep getting checkpoints; the replacement is alerted.
TEST_P(DrainTest, ACheckpointTheStoreNeverReachesIsReplacedAfterAnInterval) {
    auto store = open_store();
    LockedModule module(*module_);
    FakeModule further(*keys_);  // the same keys and workload: the same chain
    further.produce(100);
    auto ahead = further.checkpoint(0);
    ASSERT_TRUE(ahead.has_value());
    module.set_next_checkpoint(*ahead);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(0);
    opt.checkpoint_interval = std::chrono::milliseconds(60'000);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    std::vector<std::string> lines;
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    module.produce(10);
    ASSERT_TRUE(drain.step().has_value());  // takes the one naming record 100: held
    now_ms_ += 30'000;
    module.produce(1);
    ASSERT_TRUE(drain.step().has_value());  // not due: still held, nothing kept
    EXPECT_TRUE(lines.empty());
    EXPECT_FALSE(alerts_.has("checkpoint.not_kept"));
    now_ms_ += 30'000;
    ASSERT_TRUE(drain.step().has_value());  // due, held a whole interval: replaced
    EXPECT_TRUE(alerts_.has("checkpoint.not_kept"));
    ASSERT_EQ(lines.size(), 1u);
    auto c = mac::parse_checkpoint_line(lines.front());
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->seq, 11u);
    const auto r = verify(lines);
    EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults.front().message);
}

// A checkpoint line from the module that does not parse (outside input) names nothing to wait for:
// it is kept at once, as received, for the verifier to judge, and nothing is held behind it.
TEST_P(DrainTest, ACheckpointLineThatDoesNotParseIsKeptAtOnceAsReceived) {
    auto store = open_store();
    LockedModule module(*module_);
    module.set_next_checkpoint("@checkpoint v=9 \x01 not a checkpoint");
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(0);
    opt.checkpoint_interval = std::chrono::milliseconds(60'000);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    std::vector<std::string> lines;
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    module.produce(10);
    ASSERT_TRUE(drain.step().has_value());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines.front(), "@checkpoint v=9 \x01 not a checkpoint");
    now_ms_ += 60'000;  // the next one is taken on its interval: nothing was left held
    ASSERT_TRUE(drain.step().has_value());
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_TRUE(mac::parse_checkpoint_line(lines.back()).has_value());
}

// The module's clients write while the drain waits out its commit interval, then the agent stops
// (the demo's SIGTERM): the last checkpoint names those records, and stop() stores them first.
TEST_P(DrainTest, AtStopTheRecordsTheLastCheckpointNamesAreStoredBeforeItIsKept) {
    auto store = open_store();
    LockedModule module(*module_);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(2);
    opt.commit_interval = std::chrono::milliseconds(1000);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    std::vector<std::string> lines;
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    ASSERT_TRUE(drain.restore().has_value());
    drain.start();
    module.produce(10);
    ASSERT_TRUE(all_acked_within_20s(module));
    module.produce(7);  // the drain is in its pause
    drain.stop();
    EXPECT_TRUE(module.all_acked());
    ASSERT_FALSE(lines.empty());
    auto c = mac::parse_checkpoint_line(lines.back());
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->seq, 17u);
    const auto r = verify(lines);
    EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults.front().message);
    EXPECT_EQ(r.last_seq, 17u);
    EXPECT_FALSE(alerts_.has("checkpoint.not_kept"));
}

// A drain that cannot store at stop (acknowledgements paused here; a full disk alike) does not
// keep a last checkpoint naming records it lacks: it says so, and the module keeps them.
TEST_P(DrainTest, AtStopACheckpointWhoseRecordsCannotBeStoredIsNotKept) {
    auto store = open_store();
    LockedModule module(*module_);
    DrainOptions opt;
    opt.poll_wait = std::chrono::milliseconds(2);
    Drain drain(module, *store, keys_->key, alerts_, opt, [this] { return now_ms_; });
    std::vector<std::string> lines;
    drain.set_checkpoint_sink([&](const std::string& l) { lines.push_back(l); });
    ASSERT_TRUE(drain.restore().has_value());
    drain.start();
    module.produce(10);
    ASSERT_TRUE(all_acked_within_20s(module));
    drain.set_ack_paused(true, "a test");
    module.produce(3);
    drain.stop();
    EXPECT_FALSE(module.all_acked());
    EXPECT_TRUE(alerts_.has("checkpoint.not_kept"));
    for (const auto& l : lines) {
        auto c = mac::parse_checkpoint_line(l);
        ASSERT_TRUE(c.has_value());
        EXPECT_LE(c->seq, 10u);
    }
    const auto r = verify(lines);
    EXPECT_TRUE(r.verified()) << (r.faults.empty() ? "" : r.faults.front().message);
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, DrainTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "encrypted" : "plain"; });

TEST(Rotation, PeriodBoundariesAreUtcCalendarBoundaries) {
    const std::int64_t t = 1'795'500'123'456;  // 2026-11-24T06:02:03.456Z, a Tuesday
    EXPECT_EQ(mac::format_time(next_rotation_ms(RotationPeriod::hourly, t)), "2026-11-24T07:00:00.000Z");
    EXPECT_EQ(mac::format_time(next_rotation_ms(RotationPeriod::daily, t)), "2026-11-25T00:00:00.000Z");
    EXPECT_EQ(mac::format_time(next_rotation_ms(RotationPeriod::weekly, t)), "2026-11-30T00:00:00.000Z");
    EXPECT_EQ(mac::format_time(next_rotation_ms(RotationPeriod::monthly, t)), "2026-12-01T00:00:00.000Z");
    EXPECT_EQ(next_rotation_ms(RotationPeriod::never, t), INT64_MAX);
    EXPECT_FALSE(parse_rotation_period("fortnightly").has_value());
}

}  // namespace
}  // namespace hsmaudit::agent
