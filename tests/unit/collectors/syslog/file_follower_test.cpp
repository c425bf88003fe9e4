#include "collectors/syslog/file_follower.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/unit/collectors/syslog/test_sink.h"

namespace hsmaudit::collectors::syslog {
namespace {

namespace fs = std::filesystem;
using testing::CollectingSink;

void append(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::app | std::ios::binary);
    f << text;
}

std::vector<std::string> msgs(CollectingSink& sink) {
    std::vector<std::string> out;
    for (auto& m : sink.take()) out.push_back(m.msg);
    return out;
}

using Lines = std::vector<std::string>;

class FileFollowerTest : public ::testing::Test {
protected:
    void SetUp() override { dir_ = testing::make_temp_dir(); }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
    CollectingSink sink_;
    Probe probe_;
};

TEST_F(FileFollowerTest, ReadsAppendedLinesAndWaitsForPartialOnes) {
    const auto log = dir_ / "messages";
    FileFollower f(log, sink_, probe_);
    ASSERT_TRUE(f.poll());  // absent: fine
    EXPECT_EQ(*f.poll(), 0u);
    append(log,
           "2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: info : 0 : Starting up NTLS........\n"
           "Nov 24 06:29:00 myLuna cbs[7]: par");
    EXPECT_EQ(*f.poll(), 1u);
    auto got = sink_.take();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].format, SyslogFormat::luna_file);
    EXPECT_EQ(got[0].transport, Transport::file);
    EXPECT_EQ(got[0].peer, log.string());
    append(log, "tial\r\n");
    EXPECT_EQ(*f.poll(), 1u);
    EXPECT_EQ(msgs(sink_), Lines{"partial"});
    EXPECT_EQ(*f.poll(), 0u);
}

TEST_F(FileFollowerTest, FollowsRenameRotationWithoutLosingTheOldTail) {
    const auto log = dir_ / "messages";
    append(log, "Nov 24 06:29:00 h a: one\n");
    FileFollower f(log, sink_, probe_);
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), Lines{"one"});
    // logrotate: rename, the writer still appends to the old file, then a new file appears.
    fs::rename(log, dir_ / "messages.1");
    append(dir_ / "messages.1", "Nov 24 06:29:01 h a: two\nNov 24 06:29:02 h a: unterminated");
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), Lines{"two"});
    append(log, "Nov 24 06:29:03 h a: three\n");
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), (Lines{"unterminated", "three"}));
    append(log, "Nov 24 06:29:04 h a: four\n");
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), Lines{"four"});
}

TEST_F(FileFollowerTest, TruncationRestartsFromTheBeginning) {
    const auto log = dir_ / "messages";
    append(log, "Nov 24 06:29:00 h a: one long line before truncation\n");
    FileFollower f(log, sink_, probe_);
    ASSERT_TRUE(f.poll());
    sink_.take();
    fs::resize_file(log, 0);  // copytruncate
    append(log, "Nov 24 06:29:01 h a: new\n");
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), Lines{"new"});
    // Truncated and regrown past the old offset before we looked: the head bytes give it away.
    std::ofstream(log, std::ios::trunc)
        << "Nov 24 06:29:02 h a: XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n";
    ASSERT_TRUE(f.poll());
    EXPECT_EQ(msgs(sink_), Lines{"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"});
}

TEST_F(FileFollowerTest, ResumesFromAPositionAndDetectsInodeReuse) {
    const auto log = dir_ / "messages";
    append(log, "Nov 24 06:29:00 h a: one\nNov 24 06:29:01 h a: two\n");
    FollowerPosition pos;
    {
        FileFollower f(log, sink_, probe_);
        ASSERT_TRUE(f.poll());
        append(log, "Nov 24 06:29:02 h a: par");
        ASSERT_TRUE(f.poll());
        pos = f.position();
    }
    EXPECT_EQ(pos.offset, 50u);  // two complete lines; the partial one is not committed
    sink_.take();
    {
        append(log, "tial\n");
        FileFollower f(log, sink_, probe_, {}, pos);
        ASSERT_TRUE(f.poll());
        EXPECT_EQ(msgs(sink_), Lines{"partial"});
    }
    // Inode reuse: a different file now has the saved (device, inode) - simulated by pointing the saved
    // position at the new file's identity with the old file's head.
    fs::remove(log);
    append(log, "Nov 24 07:00:00 h a: fresh file with other content\n");
    struct stat st {};
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    pos.device = static_cast<std::uint64_t>(st.st_dev);
    pos.inode = static_cast<std::uint64_t>(st.st_ino);
    pos.offset = 20;
    FileFollower g(log, sink_, probe_, {}, pos);
    ASSERT_TRUE(g.poll());
    EXPECT_EQ(msgs(sink_), Lines{"fresh file with other content"});
}

TEST_F(FileFollowerTest, APartialLineThatGrowsTooLongIsCutAcrossPolls) {
    const auto log = dir_ / "messages";
    FollowerOptions o;
    o.max_line_bytes = 16;
    FileFollower f(log, sink_, probe_, o);
    append(log, "0123456789");
    EXPECT_EQ(*f.poll(), 0u);
    append(log, "abcdefghij\n<13>ok\n");
    EXPECT_EQ(*f.poll(), 2u);
    const auto got = sink_.take();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(got[0].oversized);
    EXPECT_EQ(got[0].raw, "0123456789abcdef");
    EXPECT_FALSE(got[1].oversized);
    EXPECT_EQ(got[1].raw, "<13>ok");
    // Exactly the maximum, assembled across polls, is not oversized.
    append(log, "<13>1 - hh");
    EXPECT_EQ(*f.poll(), 0u);
    append(log, " a p m\n");
    EXPECT_EQ(*f.poll(), 1u);
    const auto exact = sink_.take();
    ASSERT_EQ(exact.size(), 1u);
    EXPECT_EQ(exact[0].raw, "<13>1 - hh a p m");  // 16 bytes
    EXPECT_FALSE(exact[0].oversized);
}

TEST_F(FileFollowerTest, AFifoOrDirectoryAtThePathIsNotFollowedAndDoesNotBlock) {
    const auto fifo = dir_ / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    FileFollower f(fifo, sink_, probe_);
    auto r = f.poll();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 0u);
    FileFollower d(dir_, sink_, probe_);
    r = d.poll();
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 0u);
}

TEST_F(FileFollowerTest, HugeAndBinaryLinesAreCutFlaggedAndBounded) {
    const auto log = dir_ / "messages";
    FollowerOptions o;
    o.max_line_bytes = 1000;
    o.max_bytes_per_poll = std::size_t{256} * 1024;
    FileFollower f(log, sink_, probe_, o);
    append(log, std::string(1 << 20, 'q') + "\n" + std::string("\xFF\xFE\x00zz\n", 6) + "Nov 24 06:29:00 h a: ok\n");
    std::size_t total = 0;
    for (int i = 0; i < 10; ++i) total += *f.poll();  // bounded work per poll: several polls
    EXPECT_EQ(total, 3u);
    const auto got = sink_.take();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(got[0].oversized);
    EXPECT_EQ(got[0].raw.size(), 1000u);
    EXPECT_TRUE(got[1].malformed);
    EXPECT_EQ(got[1].raw, std::string("\xFF\xFE\x00zz", 5)) << "the line's bytes exactly";
    EXPECT_EQ(got[2].msg, "ok");
    EXPECT_EQ(probe_.snapshot().oversized, 1u);
    EXPECT_EQ(probe_.snapshot().received, 3u);
}

TEST_F(FileFollowerTest, FollowerThreadPollsUntilStopped) {
    const auto log = dir_ / "messages";
    auto t = FollowerThread::start(log, sink_, probe_, std::chrono::milliseconds(1));
    ASSERT_TRUE(t);
    append(log, "Nov 24 06:29:00 h a: one\n");
    auto got = sink_.wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    fs::rename(log, dir_ / "messages.1");
    append(log, "Nov 24 06:29:01 h a: two\n");
    got = sink_.wait_for(2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].msg, "two");
    (*t)->stop();
    EXPECT_EQ((*t)->position().offset, 25u);
    EXPECT_FALSE(FollowerThread::start(log, sink_, probe_, std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
