// Retention: the quota of the export area, deletion of delivered archives only (oldest first),
// the zero-exporter policy, and the fail-safe pause of acknowledgements (with a fake clock).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "agent/engine/pipeline/drain.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "agent/engine/store/retention.h"
#include "fake_module.h"
#include "tests/support/faulty_file_system.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using testing::AlertList;
using testing::FakeModule;

/// Exporters whose slowest one has delivered through `seq`.
class FakeCursors : public DeliveryCursors {
public:
    std::optional<std::uint64_t> min_delivered_seq() const override { return seq; }
    std::optional<std::uint64_t> seq;
};

std::uint64_t usage_of(const fs::path& dir) {
    std::uint64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) total += e.file_size();
    return total;
}

class RetentionTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-retention-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        auto k = mac::generate_chain_keys();
        ASSERT_TRUE(k.has_value());
        keys_.emplace(std::move(*k));
        module_ = std::make_unique<FakeModule>(*keys_);
        auto s = AuditStore::open(AuditStoreOptions{audit_dir().string(), false}, keys_->key);
        ASSERT_TRUE(s.has_value()) << s.error().message;
        store_ = std::move(*s);
        DrainOptions opt;
        opt.poll_wait = std::chrono::milliseconds(0);
        opt.status_interval = std::chrono::milliseconds(1000);
        drain_ = std::make_unique<Drain>(*module_, *store_, keys_->key, alerts_, opt, [this] { return now_ms_; });
        ASSERT_TRUE(drain_->restore().has_value());
        ArchiverOptions aopt;
        aopt.audit_dir = audit_dir().string();
        archiver_ = std::make_unique<Archiver>(
            aopt, keys_->key, alerts_, [this] { return drain_->stats().sealed_epoch; }, [this] { return now_ms_; });
    }
    void TearDown() override {
        archiver_.reset();
        drain_.reset();
        store_.reset();
        fs::remove_all(dir_);
    }

    fs::path audit_dir() const { return dir_ / "audit"; }

    void drain_all() {
        for (int i = 0; i < 1000 && module_->acked() < module_->size(); ++i) ASSERT_TRUE(drain_->step().has_value());
        ASSERT_EQ(module_->acked(), module_->size());
    }

    /// One archive of two sealed segments of 50 records each; returns its path.
    std::string make_archive() {
        for (int i = 0; i < 2; ++i) {
            module_->produce(50);
            module_->seal_now();
        }
        drain_all();
        auto run = archiver_->run_once();
        EXPECT_TRUE(run.has_value() && run->archives.size() == 1u);
        return run && !run->archives.empty() ? run->archives.front() : std::string{};
    }

    std::unique_ptr<Retention> make_retention(std::uint64_t quota, double warning, const DeliveryCursors& cursors) {
        RetentionOptions opt;
        opt.audit_dir = audit_dir().string();
        opt.quota_bytes = quota;
        opt.warning_ratio = warning;
        return std::make_unique<Retention>(
            opt, cursors, alerts_,
            [this](bool paused, const std::string& reason) { drain_->set_ack_paused(paused, reason); },
            [this] { return now_ms_; });
    }

    /// A copy: the alert list is shared with the threads that alert.
    std::optional<Alert> find(std::string_view kind) const {
        for (auto& a : alerts_.alerts())
            if (a.kind == kind) return std::move(a);
        return std::nullopt;
    }

    static inline int counter_ = 0;
    fs::path dir_;
    std::optional<mac::NewChainKeys> keys_;
    std::unique_ptr<FakeModule> module_;
    AlertList alerts_;
    std::unique_ptr<AuditStore> store_;
    std::unique_ptr<Drain> drain_;
    std::unique_ptr<Archiver> archiver_;
    std::int64_t now_ms_ = 1'795'500'000'000;
};

TEST_F(RetentionTest, DeletesOnlyArchivesEveryExporterDeliveredOldestFirst) {
    std::vector<std::string> archives;
    archives.reserve(4);
    for (int i = 0; i < 4; ++i) archives.push_back(make_archive());  // seqs 1-100, 101-200, 201-300, 301-400
    FakeCursors cursors;
    cursors.seq = 250;  // the slowest exporter is inside the third archive
    const std::uint64_t used = usage_of(audit_dir());
    auto retention = make_retention(used - 1, 0.01, cursors);  // over quota; wants to go far below it
    auto st = retention->check();
    ASSERT_TRUE(st.has_value()) << st.error().message;
    EXPECT_FALSE(fs::exists(archives[0]));
    EXPECT_FALSE(fs::exists(archives[1]));
    EXPECT_TRUE(fs::exists(archives[2])) << "holds records 251-300 that an exporter has not delivered";
    EXPECT_TRUE(fs::exists(archives[3]));
    EXPECT_EQ(st->archives_deleted, 2u);
    EXPECT_EQ(st->used_bytes, usage_of(audit_dir()));
    ASSERT_NE(find("retention.deleted"), std::nullopt);
    EXPECT_EQ(st->level, QuotaLevel::warning) << "below the quota, but what is left may not be deleted";
    EXPECT_FALSE(st->acks_paused);

    // Once the exporters catch up, the next oldest goes, and nothing newer than it.
    cursors.seq = 400;
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->archives_deleted, 2u) << "below the quota now: nothing is deleted early";
    retention = make_retention(usage_of(audit_dir()), 1.0, cursors);  // at the quota; stop just below it
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(fs::exists(archives[2]));
    EXPECT_TRUE(fs::exists(archives[3])) << "one deletion was enough";
}

TEST_F(RetentionTest, WithNoExporterNothingIsDeletedAndAcksPauseAtTheQuota) {
    const std::string archive = make_archive();
    NoExporters none;
    const std::uint64_t used = usage_of(audit_dir());
    std::vector<bool> calls;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = used / 2;
    Retention retention(
        opt, none, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(fs::exists(archive)) << "the local store is the only copy";
    EXPECT_EQ(st->archives_deleted, 0u);
    EXPECT_EQ(st->level, QuotaLevel::full);
    EXPECT_EQ(st->protected_bytes, used);
    EXPECT_EQ(calls, std::vector<bool>{true});
    const auto full = find("store.quota_full");
    ASSERT_NE(full, std::nullopt);
    EXPECT_EQ(full->severity, Severity::critical);
    EXPECT_NE(full->message.find("no exporter is configured"), std::string::npos) << full->message;
    // Again: no new alert, no second pause.
    ASSERT_TRUE(retention.check().has_value());
    EXPECT_EQ(calls.size(), 1u);
}

TEST_F(RetentionTest, WarnsAtTheWarningLevelWithoutPausing) {
    make_archive();
    NoExporters none;
    const std::uint64_t used = usage_of(audit_dir());
    std::vector<bool> calls;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = used + used / 20;  // 95% full
    opt.warning_ratio = 0.9;
    Retention retention(
        opt, none, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->level, QuotaLevel::warning);
    EXPECT_TRUE(calls.empty());
    ASSERT_NE(find("store.quota_warning"), std::nullopt);
    EXPECT_EQ(find("store.quota_full"), std::nullopt);
}

TEST_F(RetentionTest, AnArchiveWhoseManifestCannotBeReadIsNeverDeletedNorAnythingAfterIt) {
    const std::string good = make_archive();
    const fs::path bad = audit_dir() / "archive" / "audit-150123-00000000-00000000.tar";  // sorts first
    std::ofstream(bad) << "not an archive";
    FakeCursors cursors;
    cursors.seq = 1'000'000;
    auto retention = make_retention(usage_of(audit_dir()) / 2, 0.5, cursors);
    auto st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(fs::exists(bad));
    EXPECT_TRUE(fs::exists(good));
    EXPECT_EQ(st->level, QuotaLevel::full);
    EXPECT_TRUE(st->acks_paused);
}

TEST_F(RetentionTest, AtTheQuotaTheDrainStopsAcknowledgingAndResumesWhenSpaceIsFreed) {
    const std::string archive = make_archive();
    NoExporters none;
    auto retention = make_retention(usage_of(audit_dir()) - 1, 0.9, none);
    now_ms_ += 5'000;
    auto st = retention->check();
    ASSERT_TRUE(st.has_value());
    ASSERT_TRUE(st->acks_paused);
    EXPECT_TRUE(drain_->stats().acks_paused);
    const auto paused = find("drain.acks_paused");
    ASSERT_NE(paused, std::nullopt);
    EXPECT_EQ(paused->severity, Severity::critical);
    EXPECT_EQ(paused->time_ms, now_ms_);

    // The module goes on producing; nothing is read, stored or acknowledged, so its ring fills.
    const std::uint64_t acked = module_->acked();
    const std::uint64_t stored = store_->durable().entry_no;
    module_->produce(300);
    for (int i = 0; i < 5; ++i) {
        now_ms_ += 1'000;
        auto n = drain_->step();
        ASSERT_TRUE(n.has_value());
        EXPECT_EQ(*n, 0u);
    }
    EXPECT_EQ(module_->acked(), acked);
    EXPECT_EQ(store_->durable().entry_no, stored);
    EXPECT_TRUE(module_->violations().empty());
    // The drain still watches the ring: the module blocking is heard.
    module_->set_blocked(true);
    now_ms_ += 1'000;
    ASSERT_TRUE(drain_->step().has_value());
    EXPECT_NE(find("module.blocked"), std::nullopt);
    EXPECT_EQ(drain_->stats().last_step_ms, now_ms_) << "paused on purpose is not stuck (watchdog)";

    // The operator copies the archive off the box and deletes it: the drain resumes.
    fs::remove(archive);
    now_ms_ += 5'000;
    st = retention->check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(st->acks_paused);
    EXPECT_FALSE(drain_->stats().acks_paused);
    const auto resumed = find("drain.acks_resumed");
    ASSERT_NE(resumed, std::nullopt);
    EXPECT_EQ(resumed->time_ms, now_ms_);
    module_->set_blocked(false);
    drain_all();
    EXPECT_EQ(module_->acked(), module_->size());
    EXPECT_TRUE(module_->violations().empty());
}

// ---------------------------------------------------------------------------------------------
// A full file system and failing deletions.

TEST_F(RetentionTest, WhenStatvfsSaysTheDiskIsFullTheDrainPausesAndResumesOnceSpaceIsFree) {
    make_archive();
    NoExporters none;
    std::uint64_t available = 0;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = 1ULL << 40;  // far from the quota: only the disk is full
    opt.min_free_bytes = 1 << 20;
    opt.disk_space = [&](const std::string& dir) -> Result<DiskSpace> {
        EXPECT_EQ(dir, audit_dir().string());
        return DiskSpace{available, 20 << 20};
    };
    Retention retention(
        opt, none, alerts_, [this](bool paused, const std::string& reason) { drain_->set_ack_paused(paused, reason); },
        [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value()) << st.error().message;
    EXPECT_EQ(st->level, QuotaLevel::ok);
    EXPECT_TRUE(st->disk_full);
    EXPECT_TRUE(st->acks_paused);
    EXPECT_TRUE(drain_->stats().acks_paused);
    const auto full = find("store.disk_full");
    ASSERT_NE(full, std::nullopt);
    EXPECT_EQ(full->severity, Severity::critical);
    ASSERT_NE(find("drain.acks_paused"), std::nullopt);

    // Nothing is read from the module while paused.
    const std::uint64_t acked = module_->acked();
    module_->produce(50);
    ASSERT_TRUE(drain_->step().has_value());
    EXPECT_EQ(module_->acked(), acked);

    // Some space, but less than twice the reserve: still paused (no flapping), no new alert.
    available = (1 << 20) + 1;
    st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(st->acks_paused);
    std::size_t full_alerts = 0;
    for (const auto& a : alerts_.alerts()) full_alerts += a.kind == "store.disk_full" ? 1 : 0;
    EXPECT_EQ(full_alerts, 1u);

    available = 8 << 20;
    st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(st->disk_full);
    EXPECT_FALSE(st->acks_paused);
    EXPECT_EQ(st->available_bytes, std::optional<std::uint64_t>(8 << 20));
    EXPECT_FALSE(drain_->stats().acks_paused);
    EXPECT_NE(find("store.disk_full_clear"), std::nullopt);
    EXPECT_NE(find("drain.acks_resumed"), std::nullopt);
    drain_all();
    EXPECT_TRUE(module_->violations().empty());
}

TEST_F(RetentionTest, OnAFullDiskDeletionStillWorksAndTheFailedDirectoryFsyncIsNoError) {
    std::vector<std::string> archives;
    archives.reserve(2);
    for (int i = 0; i < 2; ++i) archives.push_back(make_archive());
    FakeCursors cursors;
    cursors.seq = 1'000'000;
    hsmaudit::testing::FaultyFileSystem faulty;
    faulty.set_full(true);  // writes, fsyncs, renames fail; unlink works, as on Linux
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = usage_of(audit_dir()) - 1;
    opt.warning_ratio = 0.01;
    opt.file_system = &faulty;
    opt.disk_space = [](const std::string&) -> Result<DiskSpace> { return DiskSpace{0, 20 << 20}; };
    std::vector<bool> calls;
    Retention retention(
        opt, cursors, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    auto st = retention.check();
    ASSERT_TRUE(st.has_value()) << st.error().message;
    EXPECT_EQ(st->archives_deleted, 2u);
    EXPECT_FALSE(fs::exists(archives[0]));
    EXPECT_FALSE(fs::exists(archives[1]));
    EXPECT_GT(faulty.calls(hsmaudit::testing::FsOp::unlink), 0u) << "deletions go through the FileSystem";
    EXPECT_GT(faulty.injected(), 0u) << "the directory fsync failed";
    EXPECT_EQ(st->failures, 0u);
    EXPECT_EQ(find("retention.failed"), std::nullopt);
    EXPECT_EQ(calls, std::vector<bool>{true}) << "the disk is still full";
}

TEST_F(RetentionTest, AFailedDeletionIsAlertedOnceCountedAndRetriedAtTheNextCheck) {
    const std::string archive = make_archive();
    FakeCursors cursors;
    cursors.seq = 1'000'000;
    hsmaudit::testing::FaultyFileSystem faulty;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.quota_bytes = usage_of(audit_dir()) - 1;
    opt.warning_ratio = 0.5;
    opt.file_system = &faulty;
    opt.disk_space = [](const std::string&) -> Result<DiskSpace> { return DiskSpace{1ULL << 30, 1ULL << 31}; };
    std::vector<bool> calls;
    Retention retention(
        opt, cursors, alerts_, [&](bool p, const std::string&) { calls.push_back(p); }, [this] { return now_ms_; });
    for (int i = 0; i < 2; ++i) {
        faulty.fail_nth(hsmaudit::testing::FsOp::unlink, 1, EIO);
        auto st = retention.check();
        ASSERT_TRUE(st.has_value()) << st.error().message;
        EXPECT_TRUE(fs::exists(archive));
        EXPECT_EQ(st->failures, static_cast<std::uint64_t>(i + 1));
        EXPECT_EQ(st->consecutive_failures, static_cast<std::uint64_t>(i + 1));
        EXPECT_EQ(st->level, QuotaLevel::full);
        EXPECT_NE(st->last_error.find(archive), std::string::npos) << st->last_error;
    }
    std::size_t failed_alerts = 0;
    for (const auto& a : alerts_.alerts()) failed_alerts += a.kind == "retention.failed" ? 1 : 0;
    EXPECT_EQ(failed_alerts, 1u) << "once per failing spell";
    EXPECT_EQ(calls, std::vector<bool>{true});

    auto st = retention.check();
    ASSERT_TRUE(st.has_value());
    EXPECT_FALSE(fs::exists(archive));
    EXPECT_EQ(st->consecutive_failures, 0u);
    EXPECT_TRUE(st->last_error.empty());
    EXPECT_NE(find("retention.failed_clear"), std::nullopt);
    EXPECT_EQ(calls, (std::vector<bool>{true, false}));
}

/// Cursors that throw, as a broken exporter might.
class ThrowingCursors : public DeliveryCursors {
public:
    std::optional<std::uint64_t> min_delivered_seq() const override { throw std::runtime_error("cursor boom"); }
};

TEST_F(RetentionTest, AnExceptionInTheThreadStopsRetentionWithAnAlertInsteadOfEndingTheProcess) {
    make_archive();
    ThrowingCursors cursors;
    RetentionOptions opt;
    opt.audit_dir = audit_dir().string();
    opt.interval = std::chrono::milliseconds(1);
    opt.disk_space = [](const std::string&) -> Result<DiskSpace> { return DiskSpace{1ULL << 30, 1ULL << 31}; };
    Retention retention(
        opt, cursors, alerts_, [](bool, const std::string&) {}, [this] { return now_ms_; });
    retention.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!retention.stats().stopped && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    retention.stop();
    EXPECT_TRUE(retention.stats().stopped);
    EXPECT_NE(retention.stats().last_error.find("cursor boom"), std::string::npos);
    EXPECT_NE(find("retention.crashed"), std::nullopt);
}

}  // namespace
}  // namespace hsmaudit::agent
