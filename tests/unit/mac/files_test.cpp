// base::write_file_atomic under each failing operation (tests/support/faulty_file_system.h): the
// target is either untouched or wholly replaced, never torn, and no temp file is left.
#include "base/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/support/faulty_file_system.h"
#include "tests/support/test_files.h"

namespace hsmaudit::mac {
namespace {

namespace fs = std::filesystem;
using hsmaudit::testing::FaultyFileSystem;
using hsmaudit::testing::FsOp;

using hsmaudit::testing::slurp;

class WriteFileAtomicTest : public ::testing::TestWithParam<bool> {  // exclusive or not
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hsmaudit-files-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }

    static inline int counter_ = 0;
    fs::path dir_;
};

TEST_P(WriteFileAtomicTest, EachFailingOperationAtEachCallLeavesTheTargetWholeAndNoTemp) {
    const bool exclusive = GetParam();
    const std::string target = (dir_ / "state.json").string();
    const std::string old_text = "old contents\n";
    // Large enough for several writes when each write is short.
    std::string new_text;
    for (int i = 0; i < 2000; ++i) new_text += "new line " + std::to_string(i) + "\n";

    FaultyFileSystem counter;
    ASSERT_TRUE(write_file_atomic(target, new_text, 0600, exclusive, counter).has_value());
    const FsOp ops[] = {FsOp::open, FsOp::write, FsOp::fsync, FsOp::rename, FsOp::link, FsOp::unlink};
    std::map<FsOp, std::uint64_t> per_call;
    for (FsOp op : ops) per_call[op] = counter.calls(op);
    ASSERT_EQ(per_call[FsOp::open], 2u) << "the temp and the directory";
    ASSERT_EQ(per_call[FsOp::fsync], 2u);
    ASSERT_EQ(per_call[exclusive ? FsOp::link : FsOp::rename], 1u);

    int fired = 0;
    for (FsOp op : ops) {
        for (std::uint64_t n = 1; n <= std::max<std::uint64_t>(per_call[op], 1); ++n) {
            for (int error : {ENOSPC, EIO}) {
                const std::string where = std::string(hsmaudit::testing::to_string(op)) + " #" + std::to_string(n) +
                                          " " + std::strerror(error);
                fs::remove(target);
                if (!exclusive) {
                    std::ofstream(target, std::ios::binary) << old_text;
                }
                FaultyFileSystem faulty;
                faulty.fail_nth(op, n, error);
                auto st = write_file_atomic(target, new_text, 0600, exclusive, faulty);
                if (faulty.injected() == 0) {
                    EXPECT_TRUE(st.has_value()) << where;  // the op is not used on this path
                    continue;
                }
                ++fired;
                // Only the directory's open and fsync come after the rename: then the new file is
                // in place (not known durable) and the caller is told.
                const bool after_rename = (op == FsOp::fsync || op == FsOp::open) && n == 2;
                // The unlink of the temp after link() is the one failure that leaves a temp.
                const bool temp_cleanup = exclusive && op == FsOp::unlink;
                if (!temp_cleanup) {
                    EXPECT_FALSE(st.has_value()) << where << ": a failed call must be an error";
                }
                const std::string now = fs::exists(target) ? slurp(target) : std::string("<absent>");
                if (after_rename || temp_cleanup) {
                    EXPECT_EQ(now, new_text) << where;
                } else if (exclusive) {
                    EXPECT_EQ(now, "<absent>") << where << ": the target was created";
                } else {
                    EXPECT_EQ(now, old_text) << where << ": the target changed";
                }
                if (!temp_cleanup) {
                    const auto left = names();
                    EXPECT_EQ(left.size(), fs::exists(target) ? 1u : 0u) << where << ": a temp file was left";
                }
                // Safe to call again: with the fault gone it succeeds.
                if (exclusive) fs::remove(target);
                for (const auto& name : names())
                    if (name != "state.json") fs::remove(dir_ / name);
                FaultyFileSystem clean;
                ASSERT_TRUE(write_file_atomic(target, new_text, 0600, exclusive, clean).has_value()) << where;
                EXPECT_EQ(slurp(target), new_text) << where;
                struct stat st_mode {};
                ASSERT_EQ(::stat(target.c_str(), &st_mode), 0);
                EXPECT_EQ(st_mode.st_mode & 0777, 0600u) << where;
            }
        }
    }
    EXPECT_GE(fired, 10);
}

TEST_P(WriteFileAtomicTest, ShortWritesAreContinuedAndAFullDiskFailsCleanly) {
    const bool exclusive = GetParam();
    const std::string target = (dir_ / "state.json").string();
    const std::string text(100'000, 'x');
    FaultyFileSystem faulty;
    faulty.short_write_nth(1, 10);
    faulty.short_write_nth(2, 1);
    ASSERT_TRUE(write_file_atomic(target, text, 0600, exclusive, faulty).has_value());
    EXPECT_EQ(slurp(target), text);

    fs::remove(target);
    faulty.set_full(true);
    EXPECT_FALSE(write_file_atomic(target, text, 0600, exclusive, faulty).has_value());
    EXPECT_TRUE(names().empty()) << "neither the target nor a temp";
    faulty.set_full(false);
    EXPECT_TRUE(write_file_atomic(target, text, 0600, exclusive, faulty).has_value());
    EXPECT_EQ(slurp(target), text);
}

INSTANTIATE_TEST_SUITE_P(Mode, WriteFileAtomicTest, ::testing::Values(false, true),
                         [](const auto& param_info) { return param_info.param ? "exclusive" : "replace"; });

}  // namespace
}  // namespace hsmaudit::mac
