// The cursor file: what it writes it reads back; anything else (cut, edited, grown, bit rot) is
// "damaged", never a cursor; a failed write (every fault of the FileSystem seam) leaves the old file.
#include "collectors/journal/cursor_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "collectors/journal/errc.h"
#include "tests/support/faulty_file_system.h"

namespace hsmaudit::collectors::journal {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCursor =
    "s=8c5052e3ac5e4518a7e39eb1d7cdfa43;i=2;b=0123456789abcdef0123456789abcdef;m=7d0;t=60a24182d8240;x="
    "686104fe5b2b53e1";

class CursorFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmaudit-jcursor-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path() const { return (dir_ / "journal-cursor").string(); }
    void put(const std::string& text) const { std::ofstream(path(), std::ios::binary | std::ios::trunc) << text; }
    fs::path dir_;
};

TEST_F(CursorFileTest, WhatIsWrittenIsReadBackAndAMissingFileIsNoCursor) {
    auto none = read_cursor_file(path());
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(write_cursor_file(path(), kCursor).has_value());
    auto back = read_cursor_file(path());
    ASSERT_TRUE(back.has_value()) << back.error().describe();
    ASSERT_TRUE(back->has_value());
    EXPECT_EQ(**back, kCursor);
    EXPECT_EQ(fs::status(path()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(CursorFileTest, EveryDamagedFileIsDamagedNotACursor) {
    const std::string good = cursor_file_text(kCursor);
    std::string flipped = good;
    flipped[40] ^= 0x01;  // one bit of the cursor
    std::string check_flipped = good;
    check_flipped[good.size() - 3] = check_flipped[good.size() - 3] == '0' ? '1' : '0';
    for (const std::string& bad :
         {std::string{}, good.substr(0, good.size() - 1), good.substr(0, 30), flipped, check_flipped,
          std::string("\0\0\0\0", 4), std::string("hsmaudit-journal-cursor v1  0000000000000000\n"), good + good,
          "hsmaudit-journal-cursor v2 " + std::string(kCursor) + "\n", std::string(5000, 'x')}) {
        put(bad);
        auto r = read_cursor_file(path());
        ASSERT_FALSE(r.has_value()) << bad;
        EXPECT_EQ(r.error().code, errc::cursor_damaged) << bad << ": " << r.error().describe();
    }
}

TEST_F(CursorFileTest, EveryFailedWriteLeavesAWholeCursorFileOldOrNew) {
    using testing::FsOp;
    std::size_t failures = 0;
    for (const FsOp op : {FsOp::open, FsOp::write, FsOp::fsync, FsOp::rename}) {
        for (std::uint64_t nth = 1; nth <= 2; ++nth) {
            for (const int error : {ENOSPC, EIO}) {
                ASSERT_TRUE(write_cursor_file(path(), "s=old;i=1").has_value());
                testing::FaultyFileSystem faulty;
                faulty.fail_nth(op, nth, error);
                const bool ok = write_cursor_file(path(), kCursor, faulty).has_value();
                failures += ok ? 0 : 1;
                auto back = read_cursor_file(path());
                ASSERT_TRUE(back.has_value() && back->has_value())
                    << testing::to_string(op) << " #" << nth << ": " << (back ? "" : back.error().describe());
                // A failed directory fsync comes after the rename: the new cursor is in place, reported failed.
                if (ok) {
                    EXPECT_EQ(**back, kCursor);
                }
                EXPECT_TRUE(**back == kCursor || **back == "s=old;i=1");
                for (const auto& e : fs::directory_iterator(dir_))
                    EXPECT_EQ(e.path().filename(), "journal-cursor") << "a temporary file was left behind";
            }
        }
    }
    EXPECT_GE(failures, 8U) << "the faults must have been seen";
    testing::FaultyFileSystem faulty;
    faulty.short_write_nth(1, 10);
    ASSERT_TRUE(write_cursor_file(path(), kCursor, faulty).has_value()) << "a short write is continued";
    EXPECT_EQ(**read_cursor_file(path()), kCursor);
    EXPECT_FALSE(write_cursor_file(path(), "has space").has_value()) << "not a cursor: refused";
}

}  // namespace
}  // namespace hsmaudit::collectors::journal
