// The SNMP engine's boot counter file under a failing disk: the exporter still starts (its traps
// about the full disk matter most), the old file stays whole, and the next start saves again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "exporters/snmp/engine.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/test_files.h"

namespace hsmaudit::exporters::snmp {
namespace {

namespace fs = std::filesystem;
using hsmaudit::testing::FaultyFileSystem;
using hsmaudit::testing::FsOp;

using hsmaudit::testing::slurp;

TEST(SnmpEngineFaults, AFailedSaveIsReportedNotFatalAndRetriedAtTheNextStart) {
    const fs::path dir = fs::temp_directory_path() / ("hsmaudit-snmp-engine-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto first = load_and_boot(dir.string(), {}, 32473);
    ASSERT_TRUE(first.has_value()) << first.error().describe();
    EXPECT_FALSE(first->unsaved);
    const std::string saved = slurp(dir / "snmp-engine.json");

    for (FsOp op : {FsOp::open, FsOp::write, FsOp::fsync, FsOp::rename}) {
        FaultyFileSystem faulty;
        faulty.fail_nth(op, 1, op == FsOp::fsync ? EIO : ENOSPC);
        auto run = load_and_boot(dir.string(), {}, 32473, faulty);
        ASSERT_TRUE(run.has_value()) << hsmaudit::testing::to_string(op) << ": " << run.error().describe();
        EXPECT_TRUE(run->unsaved) << hsmaudit::testing::to_string(op);
        EXPECT_EQ(run->engine_id, first->engine_id);
        EXPECT_EQ(run->boots, 2u) << "one more than the stored count";
        EXPECT_EQ(slurp(dir / "snmp-engine.json"), saved) << "the stored file stays whole";
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
        EXPECT_EQ(n, 1u) << "no temp file left";
    }
    FaultyFileSystem full;
    full.set_full(true);
    auto run = load_and_boot(dir.string(), {}, 32473, full);
    ASSERT_TRUE(run.has_value());
    EXPECT_TRUE(run->unsaved);

    // Space again: the next start saves, counting from what was stored.
    auto next = load_and_boot(dir.string(), {}, 32473);
    ASSERT_TRUE(next.has_value());
    EXPECT_FALSE(next->unsaved);
    EXPECT_EQ(next->boots, 2u);
    auto after = load_and_boot(dir.string(), {}, 32473);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(after->boots, 3u);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace hsmaudit::exporters::snmp
