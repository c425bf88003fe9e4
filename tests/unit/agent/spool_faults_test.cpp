// Fault injection under the durable line writers (issue 13): the syslog spool (EventSpool), the
// fsynced line files (LineLog) and alerts.jsonl (AlertLog). Every failing operation at every Nth
// call, random schedules (seeded; the seed is printed), and a full disk that empties again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "agent/api/event.h"
#include "agent/engine/alert_log.h"
#include "agent/engine/export/store_source.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/line_log.h"
#include "agent/engine/store/state_layout.h"
#include "base/unique_fd.h"
#include "tests/support/faulty_file_system.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
using hsmaudit::testing::FaultyFileSystem;
using hsmaudit::testing::FsOp;

std::int64_t fixed_now() {
    return 1'795'500'000'000;
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// The payloads of a spool directory, in file and line order.
std::vector<std::string> spool_payloads(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (const auto& f : files) {
        std::istringstream in(read_all(f));
        std::string line;
        while (std::getline(in, line)) {
            if (line.starts_with("@spool ")) continue;
            const auto sp1 = line.find(' ');
            const auto sp2 = line.find(' ', sp1 + 1);
            const auto h = line.rfind(" h=");
            if (sp1 == std::string::npos || sp2 == std::string::npos || h == std::string::npos || h < sp2) {
                out.push_back("<malformed: " + line + ">");
                continue;
            }
            out.push_back(line.substr(sp2 + 1, h - sp2 - 1));
        }
    }
    return out;
}

/// A test's temp dir: in RAM where there is one (these tests are about what the writers do
/// after a failure, not about the disk; thousands of fsyncs on a real disk take minutes).
fs::path temp_dir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                              ? fs::path("/dev/shm")
                              : fs::temp_directory_path();
    fs::path d = base / ("hsmaudit-spoolfaults-" + std::to_string(::getpid()) + "-" + info->name() + "-" + tag);
    fs::remove_all(d);
    return d;
}

/// Collects alerts.
class Recorder final : public AlertSink {
public:
    void alert(Alert&& a) override {
        std::lock_guard lock(mutex_);
        alerts_.push_back(std::move(a));
    }
    std::size_t count(const std::string& kind) const {
        std::lock_guard lock(mutex_);
        return static_cast<std::size_t>(
            std::count_if(alerts_.begin(), alerts_.end(), [&](const Alert& a) { return a.kind == kind; }));
    }

private:
    mutable std::mutex mutex_;
    std::vector<Alert> alerts_;
};

SpoolOptions spool_options(const fs::path& dir, base::FileSystem* fs) {
    SpoolOptions o;
    o.dir = dir.string();
    o.segment_max_bytes = 400;  // a new segment every few lines: creation is faulted too
    o.quota_bytes = 1ULL << 40;
    o.queue_max = 1 << 16;
    o.fs = fs;
    return o;
}

/// One faulted run of the spool: pushes and flushes with `arm` deciding, before each flush, which
/// fault to inject. Then either the faults are cleared and the spool flushes and is re-opened
/// as a restart does (`crash` false), or it is dropped while the disk fails (`crash` true) and
/// re-opened. Checks the chain, the numbering and that every line a successful flush covered is
/// there exactly once, in order.
struct SpoolRun {
    int rounds = 12;
    bool crash = false;
    std::function<void(FaultyFileSystem&, int round)> arm;
};

void run_spool(const fs::path& dir, const SpoolRun& run) {
    FaultyFileSystem ffs;
    std::vector<std::string> pushed;
    std::size_t acked = 0;  // pushed[0, acked) were covered by a successful flush
    {
        auto opened = EventSpool::open(spool_options(dir, &ffs), fixed_now);
        ASSERT_TRUE(opened.has_value()) << opened.error().describe();
        auto spool = std::move(*opened);
        int id = 0;
        for (int round = 0; round < run.rounds; ++round) {
            if (run.arm) run.arm(ffs, round);
            for (int k = 0; k < 1 + round % 3; ++k) {
                pushed.push_back("{\"id\":" + std::to_string(id++) + ",\"msg\":\"appliance event\"}");
                ASSERT_TRUE(spool->push(pushed.back()));
            }
            if (spool->flush()) acked = pushed.size();
        }
        if (run.crash) {
            ffs.clear();
            ffs.set_full(true);  // stop()'s last flush fails too: what is not durable may be lost
        } else {
            ffs.clear();
            auto st = spool->flush();
            ASSERT_TRUE(st.has_value()) << st.error().describe();
            acked = pushed.size();
            EXPECT_FALSE(spool->stats().broken);
            EXPECT_EQ(spool->stats().waiting, 0u);
        }
    }
    // The restart.
    {
        auto opened = EventSpool::open(spool_options(dir, nullptr), fixed_now);
        ASSERT_TRUE(opened.has_value()) << opened.error().describe();
        pushed.push_back("{\"id\":\"after restart\"}");
        ASSERT_TRUE((*opened)->push(pushed.back()));
        ASSERT_TRUE((*opened)->flush().has_value());
    }
    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value()) << c.error().describe();
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ(c->first_line, 1u);
    EXPECT_EQ(c->last_line, c->lines);  // 1..N, no gap, no duplicate number
    const auto got = spool_payloads(dir);
    ASSERT_EQ(got.size(), c->lines);
    // What is there is a prefix of what was pushed (in order, each once) plus the line written
    // after the restart, and it holds at least every acknowledged line.
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), pushed.back());
    const std::size_t before_restart = got.size() - 1;
    EXPECT_GE(before_restart, acked);
    ASSERT_LE(before_restart, pushed.size() - 1);
    for (std::size_t i = 0; i < before_restart; ++i) ASSERT_EQ(got[i], pushed[i]) << "line " << i + 1;
    if (!run.crash) {
        EXPECT_EQ(before_restart, pushed.size() - 1);
    }
}

// NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): a test table; fields in the order of its rows
struct OpCase {
    const char* name;
    FsOp op;
    int error;
    bool short_write;
};

constexpr OpCase kOps[] = {
    {"open_ENOSPC", FsOp::open, ENOSPC, false},   {"open_EIO", FsOp::open, EIO, false},
    {"write_ENOSPC", FsOp::write, ENOSPC, false}, {"write_EIO", FsOp::write, EIO, false},
    {"short_write", FsOp::write, 0, true},        {"fdatasync_EIO", FsOp::fdatasync, EIO, false},
    {"fsync_dir_EIO", FsOp::fsync, EIO, false},   {"truncate_EIO", FsOp::truncate, EIO, false},
    {"unlink_EIO", FsOp::unlink, EIO, false},
};

void arm(FaultyFileSystem& ffs, const OpCase& op, std::uint64_t nth) {
    if (op.short_write)
        ffs.short_write_nth(nth, 7);
    else
        ffs.fail_nth(op.op, nth, op.error);
    // Truncation and unlinking happen only while recovering: fail a write too, so they are reached.
    if (op.op == FsOp::truncate || op.op == FsOp::unlink) ffs.fail_nth(FsOp::write, nth, EIO);
}

TEST(SpoolFaults, EveryOperationFailingAtEveryNthCallLosesNothingAcknowledged) {
    for (const auto& op : kOps) {
        for (std::uint64_t nth = 1; nth <= 14; ++nth) {
            for (bool crash : {false, true}) {
                SCOPED_TRACE(std::string(op.name) + " at call " + std::to_string(nth) + (crash ? ", crash" : ""));
                const fs::path dir = temp_dir(std::string(op.name) + "-" + std::to_string(nth) + (crash ? "-c" : ""));
                SpoolRun run;
                run.crash = crash;
                run.arm = [&](FaultyFileSystem& ffs, int round) {
                    if (round == 0) arm(ffs, op, nth);
                };
                run_spool(dir, run);
                fs::remove_all(dir);
                if (::testing::Test::HasFailure()) return;
            }
        }
    }
}

TEST(SpoolFaults, EveryOperationFailingRepeatedly) {
    // The same fault again at each round: recovery itself runs into failures.
    for (const auto& op : kOps) {
        for (std::uint64_t nth = 1; nth <= 4; ++nth) {
            SCOPED_TRACE(std::string(op.name) + " every round at call " + std::to_string(nth));
            const fs::path dir = temp_dir(std::string(op.name) + "-" + std::to_string(nth));
            SpoolRun run;
            run.arm = [&](FaultyFileSystem& ffs, int) { arm(ffs, op, nth); };
            run_spool(dir, run);
            fs::remove_all(dir);
            if (::testing::Test::HasFailure()) return;
        }
    }
}

std::uint64_t base_seed() {
    if (const char* s = std::getenv("HSMAUDIT_FAULT_SEED")) return std::strtoull(s, nullptr, 10);
    return 20261203;
}

void random_fault(std::mt19937_64& rng, FaultyFileSystem& ffs, bool with_truncate = true) {
    const auto& op = kOps[rng() % std::size(kOps)];
    if (!with_truncate && op.op == FsOp::truncate) return;
    const std::uint64_t nth = 1 + rng() % 6;
    if (op.short_write)
        ffs.short_write_nth(nth, static_cast<std::size_t>(rng() % 120));
    else
        ffs.fail_nth(op.op, nth, op.error);
}

TEST(SpoolFaults, RandomScheduleOfFaults) {
    const std::uint64_t base = base_seed();
    std::cout << "seeds " << base << " .. " << base + 99 << " (HSMAUDIT_FAULT_SEED=<seed> to rerun)\n";
    for (std::uint64_t seed = base; seed < base + 100; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937_64 rng(seed);
        const fs::path dir = temp_dir(std::to_string(seed));
        SpoolRun run;
        run.rounds = 20;
        run.crash = rng() % 3 == 0;
        run.arm = [&](FaultyFileSystem& ffs, int) {
            const auto roll = rng() % 10;
            if (roll < 4) random_fault(rng, ffs);
            if (roll == 4) ffs.set_full(true);
            if (roll == 5) ffs.set_full(false);
        };
        run_spool(dir, run);
        fs::remove_all(dir);
        if (::testing::Test::HasFailure()) {
            std::cout << "failing seed: " << seed << "\n";
            return;
        }
    }
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return pred();
}

TEST(SpoolFaults, AFullDiskIsSurvivedWithoutSpinningAndTheQueueIsWrittenWhenSpaceReturns) {
    const fs::path dir = temp_dir("full");
    FaultyFileSystem ffs;
    Recorder alerts;
    auto o = spool_options(dir, &ffs);
    o.flush_interval = std::chrono::milliseconds(5);
    o.retry_max = std::chrono::milliseconds(40);
    o.alerts = &alerts;
    auto opened = EventSpool::open(o, fixed_now);
    ASSERT_TRUE(opened.has_value());
    auto spool = std::move(*opened);
    spool->start();
    std::vector<std::string> pushed;
    auto push = [&](int n) {
        for (int i = 0; i < n; ++i) {
            pushed.push_back("{\"n\":" + std::to_string(pushed.size()) + "}");
            ASSERT_TRUE(spool->push(pushed.back()));
        }
    };
    push(10);
    ASSERT_TRUE(eventually([&] { return spool->stats().appended == 10; }));

    ffs.set_full(true);
    push(30);
    ASSERT_TRUE(eventually([&] { return spool->stats().write_errors >= 2 && spool->stats().broken; }));
    // Backing off: a spinning writer would make thousands of calls in this time.
    const auto calls_before = ffs.calls(FsOp::write) + ffs.calls(FsOp::fdatasync) + ffs.calls(FsOp::open);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    const auto calls = ffs.calls(FsOp::write) + ffs.calls(FsOp::fdatasync) + ffs.calls(FsOp::open) - calls_before;
    EXPECT_LE(calls, 60u);
    push(5);
    EXPECT_EQ(spool->stats().appended, 10u);
    EXPECT_EQ(alerts.count("spool.write_failed"), 1u);  // rate-limited: once, not at every retry

    ffs.set_full(false);  // space is freed; nobody re-opens the spool
    ASSERT_TRUE(eventually([&] { return spool->stats().appended == pushed.size(); }));
    const auto s = spool->stats();
    EXPECT_FALSE(s.broken);
    EXPECT_EQ(s.waiting, 0u);
    EXPECT_GE(s.recoveries, 1u);
    EXPECT_TRUE(eventually([&] { return alerts.count("spool.recovered") == 1; }));
    spool->stop();

    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ(spool_payloads(dir), pushed);
    fs::remove_all(dir);
}

TEST(SpoolFaults, ABoundedQueueDropsWhileTheDiskIsFullCountsAndAlertsOnce) {
    const fs::path dir = temp_dir("drop");
    FaultyFileSystem ffs;
    Recorder alerts;
    auto o = spool_options(dir, &ffs);
    o.queue_max = 8;
    o.flush_interval = std::chrono::milliseconds(5);
    o.retry_max = std::chrono::milliseconds(20);
    o.alerts = &alerts;
    auto spool = std::move(*EventSpool::open(o, fixed_now));
    ffs.set_full(true);
    spool->start();
    std::uint64_t accepted = 0;
    for (int i = 0; i < 200; ++i) accepted += spool->push("{\"i\":" + std::to_string(i) + "}") ? 1 : 0;
    // The writer holds at most one queue's worth it could not write, the queue another.
    EXPECT_LE(accepted, 16u);
    EXPECT_EQ(spool->stats().dropped, 200 - accepted);
    ASSERT_TRUE(eventually([&] { return alerts.count("spool.dropped") == 1; }));
    for (int i = 0; i < 50; ++i) (void)spool->push("{\"more\":" + std::to_string(i) + "}");
    ffs.set_full(false);
    ASSERT_TRUE(eventually([&] {
        const auto s = spool->stats();
        return s.appended + s.dropped == 250;
    }));
    EXPECT_EQ(alerts.count("spool.dropped"), 1u);  // once per interval, with the count
    spool->stop();
    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    fs::remove_all(dir);
}

std::atomic<bool> g_clock_throws{false};
std::int64_t throwing_now() {
    if (g_clock_throws) throw std::runtime_error("clock failed");
    return fixed_now();
}

TEST(SpoolFaults, AnExceptionInTheWriterStopsItCleanlyWithAnAlert) {
    const fs::path dir = temp_dir("throw");
    Recorder alerts;
    auto o = spool_options(dir, nullptr);
    o.flush_interval = std::chrono::milliseconds(5);
    o.alerts = &alerts;
    auto spool = std::move(*EventSpool::open(o, throwing_now));
    spool->start();
    ASSERT_TRUE(spool->push("{\"before\":1}"));
    ASSERT_TRUE(eventually([&] { return spool->stats().appended == 1; }));
    g_clock_throws = true;
    ASSERT_TRUE(spool->push("{\"during\":1}"));
    ASSERT_TRUE(eventually([&] { return alerts.count("spool.writer_stopped") == 1; }));
    EXPECT_TRUE(spool->stats().broken);
    spool->stop();  // its last flush throws too: caught, the process goes on
    g_clock_throws = false;
    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    fs::remove_all(dir);
}

TEST(SpoolFaults, ASegmentLeftWithOnlyATornHeaderIsWrittenAgainAtRestart) {
    const fs::path dir = temp_dir("torn-header");
    {
        auto spool = std::move(*EventSpool::open(spool_options(dir, nullptr), fixed_now));
        for (int i = 0; i < 12; ++i) ASSERT_TRUE(spool->push("{\"i\":" + std::to_string(i) + "}"));
        ASSERT_TRUE(spool->flush().has_value());
    }
    std::size_t segments = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++segments;
    ASSERT_GE(segments, 2u);
    // A crash while the next segment's header was being written (and a leftover that fits no
    // segment, which is removed).
    std::ofstream(dir / "spool-000000000000000d.log") << "@spool v=1 name=sys";
    std::ofstream(dir / "spool-00000000000000ff.log") << "@spool v=1 na";
    {
        auto opened = EventSpool::open(spool_options(dir, nullptr), fixed_now);
        ASSERT_TRUE(opened.has_value()) << opened.error().describe();
        EXPECT_EQ((*opened)->stats().next_line, 13u);
        ASSERT_TRUE((*opened)->push("{\"after\":1}"));
        ASSERT_TRUE((*opened)->flush().has_value());
    }
    EXPECT_FALSE(fs::exists(dir / "spool-00000000000000ff.log"));
    EXPECT_TRUE(read_all(dir / "spool-000000000000000d.log").starts_with("@spool v=1 name=syslog first=13 prev="));
    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ(c->last_line, 13u);
    fs::remove_all(dir);
}

TEST(SpoolFaults, AReaderHoldingASegmentOpenSeesTheLinesWrittenAfterRecovery) {
    // The exporters' reader keeps a segment open and does not look for a file of the same name
    // again: recovery must rewrite the segment in place, not remove and create it anew.
    const fs::path dir = temp_dir("reader");
    FaultyFileSystem ffs;
    auto spool = std::move(*EventSpool::open(spool_options(dir, &ffs), fixed_now));
    ffs.fail_nth(FsOp::fdatasync, 1, EIO);
    ASSERT_TRUE(spool->push("{\"first\":1}"));
    ASSERT_FALSE(spool->flush().has_value());
    const fs::path seg = dir / "spool-0000000000000001.log";
    UniqueFd reader(::open(seg.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(reader.valid());
    ASSERT_TRUE(spool->flush().has_value());
    std::string got(4096, '\0');
    const ssize_t n = ::pread(reader.get(), got.data(), got.size(), 0);
    ASSERT_GT(n, 0);
    got.resize(static_cast<std::size_t>(n));
    EXPECT_EQ(got, read_all(seg));
    EXPECT_NE(got.find("{\"first\":1}"), std::string::npos);
    fs::remove_all(dir);
}

TEST(SpoolFaults, AFailedDirectorySyncOfANewSegmentIsDoneAgainAfterRecovery) {
    const fs::path dir = temp_dir("dirsync");
    FaultyFileSystem ffs;
    auto spool = std::move(*EventSpool::open(spool_options(dir, &ffs), fixed_now));
    ffs.fail_nth(FsOp::fsync, 1, EIO);  // the directory sync after creating the first segment
    ASSERT_TRUE(spool->push("{\"first\":1}"));
    ASSERT_FALSE(spool->flush().has_value());
    ASSERT_TRUE(spool->flush().has_value());
    EXPECT_EQ(ffs.calls(FsOp::fsync), 2u);  // the new file's entry is durable before its lines count
    EXPECT_EQ(spool->stats().appended, 1u);
    fs::remove_all(dir);
}

TEST(SpoolFaults, ALineWhoseHashDoesNotChainIsCutAtRestart) {
    const fs::path dir = temp_dir("bad-hash");
    {
        auto spool = std::move(*EventSpool::open(spool_options(dir, nullptr), fixed_now));
        ASSERT_TRUE(spool->push("{\"a\":1}"));
        ASSERT_TRUE(spool->flush().has_value());
    }
    const fs::path file = *fs::directory_iterator(dir);
    std::ofstream(file, std::ios::app) << "2 2026-11-24T06:00:00.000Z {\"forged\":1} h=" << std::string(64, '0')
                                       << "\n";
    {
        auto spool = std::move(*EventSpool::open(spool_options(dir, nullptr), fixed_now));
        EXPECT_EQ(spool->stats().next_line, 2u);
        ASSERT_TRUE(spool->push("{\"b\":2}"));
        ASSERT_TRUE(spool->flush().has_value());
    }
    auto c = check_spool(dir.string());
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(c->faults.empty()) << c->faults.front();
    EXPECT_EQ((spool_payloads(dir)), (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
    fs::remove_all(dir);
}

// ---- LineLog and AlertLog ------------------------------------------------------------------

/// Every line of `text`, checking each is whole (ends with LF).
std::vector<std::string> whole_lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto lf = text.find('\n', at);
        EXPECT_NE(lf, std::string::npos) << "a torn last line: " << text.substr(at);
        if (lf == std::string::npos) break;
        out.push_back(text.substr(at, lf - at));
        at = lf + 1;
    }
    return out;
}

TEST(LineLogFaults, AFailedAppendLeavesOnlyWholeLinesAndNothingAcknowledgedIsLost) {
    const std::uint64_t base = base_seed();
    std::cout << "seeds " << base << " .. " << base + 199 << " (HSMAUDIT_FAULT_SEED=<seed> to rerun)\n";
    for (std::uint64_t seed = base; seed < base + 200; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937_64 rng(seed);
        const fs::path dir = temp_dir(std::to_string(seed));
        FaultyFileSystem ffs;
        std::vector<std::string> appended;
        std::set<std::string> acked;
        {
            auto opened = LineLog::open(dir.string(), "log.jsonl", ffs);
            ASSERT_TRUE(opened.has_value()) << opened.error().describe();
            auto log = std::move(*opened);
            for (int i = 0; i < 30; ++i) {
                const auto roll = rng() % 10;
                // (Not truncation: cutting the torn bytes is what must work for the check below.)
                if (roll < 4) random_fault(rng, ffs, /*with_truncate=*/false);
                if (roll == 4) ffs.set_full(true);
                if (roll == 5) ffs.set_full(false);
                appended.push_back("{\"line\":" + std::to_string(i) + ",\"pad\":\"" + std::string(rng() % 40, 'x') +
                                   "\"}");
                if (log->append(appended.back())) {
                    // Success covers this line and every one kept before it.
                    acked.insert(appended.begin(), appended.end());
                }
                // Whatever happened, a reader sees only whole lines, each one appended.
                for (const auto& l : whole_lines(read_all(log->path())))
                    ASSERT_TRUE(std::find(appended.begin(), appended.end(), l) != appended.end()) << l;
            }
            if (rng() % 2 == 0) {
                ffs.clear();
                ASSERT_TRUE(log->retry().has_value());
                acked.insert(appended.begin(), appended.end());
            }
        }
        // Re-opened as at a restart, with one more line.
        auto log = std::move(*LineLog::open(dir.string(), "log.jsonl"));
        appended.push_back("{\"line\":\"after restart\"}");
        ASSERT_TRUE(log->append(appended.back()).has_value());
        acked.insert(appended.back());
        const auto lines = whole_lines(read_all(log->path()));
        // In append order, each at most once, every acknowledged one present.
        std::size_t next = 0;
        for (const auto& l : lines) {
            const auto it = std::find(appended.begin() + static_cast<std::ptrdiff_t>(next), appended.end(), l);
            ASSERT_NE(it, appended.end()) << "out of order or duplicated: " << l;
            for (auto skipped = appended.begin() + static_cast<std::ptrdiff_t>(next); skipped != it; ++skipped)
                EXPECT_EQ(acked.count(*skipped), 0u) << "acknowledged and lost: " << *skipped;
            next = static_cast<std::size_t>(it - appended.begin()) + 1;
        }
        EXPECT_EQ(next, appended.size());
        fs::remove_all(dir);
        if (::testing::Test::HasFailure()) {
            std::cout << "failing seed: " << seed << "\n";
            return;
        }
    }
}

TEST(LineLogFaults, EachOperationAtEachNthCall) {
    for (const auto& op : kOps) {
        for (std::uint64_t nth = 1; nth <= 6; ++nth) {
            SCOPED_TRACE(std::string(op.name) + " at call " + std::to_string(nth));
            const fs::path dir = temp_dir(std::string(op.name) + std::to_string(nth));
            FaultyFileSystem ffs;
            auto log = std::move(*LineLog::open(dir.string(), "c.log", ffs));
            arm(ffs, op, nth);
            std::vector<std::string> appended;
            for (int i = 0; i < 8; ++i) {
                appended.push_back("checkpoint " + std::to_string(i) + " time=2026-12-03T00:00:00.000Z");
                (void)log->append(appended.back());
                EXPECT_EQ(read_all(log->path()).find("checkpoint " + std::to_string(i) + " time"),
                          read_all(log->path()).rfind("checkpoint " + std::to_string(i) + " time"));
            }
            ffs.clear();
            ASSERT_TRUE(log->retry().has_value());
            EXPECT_EQ(log->waiting(), 0u);
            EXPECT_EQ(whole_lines(read_all(log->path())), appended);  // kept lines written later, in order
            fs::remove_all(dir);
            if (::testing::Test::HasFailure()) return;
        }
    }
}

TEST(LineLogFaults, ATornLastLineIsCutAtOpen) {
    const fs::path dir = temp_dir("torn");
    fs::create_directories(dir);
    std::ofstream(dir / "c.log") << "one\ntwo\nthr";
    auto log = std::move(*LineLog::open(dir.string(), "c.log"));
    ASSERT_TRUE(log->append("three").has_value());
    EXPECT_EQ(read_all(dir / "c.log"), "one\ntwo\nthree\n");
    fs::remove_all(dir);
}

TEST(AlertLogFaults, AlertsWhileTheDiskIsFullAreCountedKeptAndWrittenWhenItRecovers) {
    const fs::path dir = temp_dir("alerts");
    FaultyFileSystem ffs;
    auto log = std::move(*AlertLog::open(dir.string(), ffs));
    log->alert(Alert{"ring.fill_warning", Severity::warning, "before", 0, fixed_now()});
    ffs.set_full(true);
    for (int i = 0; i < 5; ++i)
        log->alert(Alert{"store.write_failed", Severity::critical, "full " + std::to_string(i), 0, fixed_now()});
    EXPECT_EQ(log->write_failures(), 5u);
    EXPECT_EQ(log->recent().size(), 6u);
    EXPECT_EQ(log->counts()["store.write_failed"], 5u);
    EXPECT_EQ(whole_lines(read_all(log->path())).size(), 1u);
    ffs.set_full(false);
    ASSERT_TRUE(log->retry().has_value());  // written without waiting for the next alert
    EXPECT_EQ(whole_lines(read_all(log->path())).size(), 6u);
    log->alert(Alert{"store.recovered", Severity::info, "after", 0, fixed_now()});
    const auto lines = whole_lines(read_all(log->path()));
    ASSERT_EQ(lines.size(), 7u);
    std::vector<std::string> messages;
    for (const auto& l : lines) {
        auto a = parse_alert_line(l);  // what the exporters' reader does with each line
        ASSERT_TRUE(a.has_value()) << l;
        messages.push_back(a->message);
    }
    EXPECT_EQ(messages,
              (std::vector<std::string>{"before", "full 0", "full 1", "full 2", "full 3", "full 4", "after"}));
    fs::remove_all(dir);
}

// ---- the exporters' reader, following while the writers fail and recover ----------------------

TEST(ReaderDuringFaults, TheExportersReaderSeesEachLineOnceAsItIsFinallyStored) {
    const std::uint64_t base = base_seed();
    std::cout << "seeds " << base << " .. " << base + 29 << " (HSMAUDIT_FAULT_SEED=<seed> to rerun)\n";
    for (std::uint64_t seed = base; seed < base + 30; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937_64 rng(seed);
        const fs::path state = temp_dir(std::to_string(seed));
        FaultyFileSystem ffs;
        auto spool = std::move(*EventSpool::open(spool_options(spool_dir_of(state.string()), &ffs), fixed_now));
        auto alerts = std::move(*AlertLog::open(fs::path(alerts_file_of(state.string())).parent_path().string(), ffs));
        auto source = make_store_event_source(StoreSourceOptions{state.string(), nullptr, "150123", "hsm1", false});
        std::vector<std::string> seen_syslog;
        std::vector<std::string> seen_alerts;
        auto follow = [&] {
            for (Stream stream : {Stream::syslog, Stream::alerts}) {
                auto& seen = stream == Stream::syslog ? seen_syslog : seen_alerts;
                std::vector<Event> events;
                auto got = source->read(stream, seen.size(), 1000, events);
                ASSERT_TRUE(got.has_value()) << got.error().describe();
                for (const auto& e : events) {
                    ASSERT_EQ(e.position, seen.size() + 1) << to_string(stream);
                    seen.push_back(stream == Stream::syslog ? e.syslog.msg : e.alert.message);
                }
            }
        };
        int id = 0;
        for (int round = 0; round < 30; ++round) {
            const auto roll = rng() % 10;
            if (roll < 4) random_fault(rng, ffs);
            if (roll == 4) ffs.set_full(true);
            if (roll == 5) ffs.set_full(false);
            for (int k = 0; k < 1 + round % 3; ++k)
                ASSERT_TRUE(spool->push("{\"msg\":\"m" + std::to_string(id++) + "\"}"));
            (void)spool->flush();
            alerts->alert(Alert{"test.alert", Severity::info, "a" + std::to_string(round), 0, fixed_now()});
            follow();
            if (::testing::Test::HasFatalFailure()) return;
        }
        ffs.clear();
        ASSERT_TRUE(spool->flush().has_value());
        ASSERT_TRUE(alerts->retry().has_value());
        follow();
        // What the reader handed out is exactly what is stored, line for line, nothing twice.
        std::vector<std::string> stored_syslog;
        for (const auto& p : spool_payloads(spool_dir_of(state.string())))
            stored_syslog.push_back(nlohmann::json::parse(p)["msg"].get<std::string>());
        EXPECT_EQ(seen_syslog, stored_syslog);
        EXPECT_EQ(seen_syslog.size(), static_cast<std::size_t>(id));
        std::vector<std::string> stored_alerts;
        for (const auto& l : whole_lines(read_all(alerts_file_of(state.string()))))
            stored_alerts.push_back(parse_alert_line(l)->message);
        EXPECT_EQ(seen_alerts, stored_alerts);
        EXPECT_EQ(seen_alerts.size(), 30u);
        spool.reset();
        fs::remove_all(state);
        if (::testing::Test::HasFailure()) {
            std::cout << "failing seed: " << seed << "\n";
            return;
        }
    }
}

}  // namespace
}  // namespace hsmaudit::agent
