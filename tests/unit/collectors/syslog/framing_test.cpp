#include "collectors/syslog/framing.h"

#include <gtest/gtest.h>

namespace hsmaudit::collectors::syslog {
namespace {

std::vector<Frame> feed_all(StreamFramer& f, std::string_view data, bool byte_by_byte = false) {
    std::vector<Frame> out;
    if (byte_by_byte) {
        for (char c : data) f.feed(std::string_view(&c, 1), out);
    } else {
        f.feed(data, out);
    }
    return out;
}

TEST(StreamFramer, OctetCountingAcrossArbitrarySplits) {
    const std::string stream = "11 <13>1 - - x19 <13>1 - - line\nfeed5 <1>ab";
    for (bool bytewise : {false, true}) {
        StreamFramer f(1024);
        auto out = feed_all(f, stream, bytewise);
        EXPECT_EQ(f.mode(), StreamFramer::Mode::octet_counting);
        ASSERT_EQ(out.size(), 3u);
        EXPECT_EQ(out[0].bytes, "<13>1 - - x");
        EXPECT_EQ(out[1].bytes, "<13>1 - - line\nfeed");  // a newline inside an octet-counted frame is data
        EXPECT_EQ(out[2].bytes, "<1>ab");
        for (const auto& fr : out) {
            EXPECT_FALSE(fr.oversized || fr.truncated || fr.framing_error);
        }
    }
}

TEST(StreamFramer, LfFramingWithCrLfAndDigitLeadingLines) {
    StreamFramer f(1024);
    // The appliance's file-style lines start with a year: must not be taken for an octet count.
    auto out = feed_all(f, "2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: a\r\n\n<13>b\n<14>partial");
    EXPECT_EQ(f.mode(), StreamFramer::Mode::lf);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].bytes, "2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: a");
    EXPECT_EQ(out[1].bytes, "<13>b");
    f.finish(out);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[2].bytes, "<14>partial");
    EXPECT_FALSE(out[2].truncated);
}

TEST(StreamFramer, OversizedOctetFrameIsCutAndTheRestSkipped) {
    StreamFramer f(16);
    const std::string big = "<13>" + std::string(96, 'x');
    auto out = feed_all(f, "100 " + big + "5 <1>ok", true);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0].oversized);
    EXPECT_EQ(out[0].bytes, big.substr(0, 16));
    EXPECT_EQ(out[1].bytes, "<1>ok");
    EXPECT_FALSE(out[1].oversized);
}

TEST(StreamFramer, OversizedLfLineIsCutOnceAndMemoryStaysBounded) {
    StreamFramer f(1024);
    std::vector<Frame> out;
    const std::string mib(1 << 20, 'A');
    f.feed("<13>", out);
    for (int i = 0; i < 4; ++i) f.feed(mib, out);  // 4 MiB without a newline
    f.feed("\n<13>next\n", out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0].oversized);
    EXPECT_EQ(out[0].bytes.size(), 1024u);
    EXPECT_EQ(out[1].bytes, "<13>next");
}

TEST(StreamFramer, BadCountFallsBackToLfWithAFramingError) {
    StreamFramer f(1024);
    auto out = feed_all(f, "5 <1>ab<13>no count here\n<14>after\n");
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].bytes, "<1>ab");
    EXPECT_TRUE(out[1].framing_error);
    EXPECT_EQ(out[1].bytes, "<13>no count here");
    EXPECT_FALSE(out[2].framing_error);
    EXPECT_EQ(f.mode(), StreamFramer::Mode::lf);
}

TEST(StreamFramer, HugeOrZeroCountsAreNotOctetCounting) {
    StreamFramer a(1024);
    auto out = feed_all(a, "99999999999 <1>x\n");
    EXPECT_EQ(a.mode(), StreamFramer::Mode::lf);
    ASSERT_EQ(out.size(), 1u);
    StreamFramer b(1024);
    out = feed_all(b, "0 <1>x\n");
    EXPECT_EQ(b.mode(), StreamFramer::Mode::lf);
    StreamFramer c(1024);
    out = feed_all(c, "3 <1>5 x");  // second count lacks a '<' but that is only checked on the first frame
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(c.mode(), StreamFramer::Mode::octet_counting);
}

TEST(StreamFramer, TruncatedFrameAtCloseIsFlagged) {
    StreamFramer f(1024);
    auto out = feed_all(f, "50 <13>1 - - - - - cut");
    EXPECT_TRUE(out.empty());
    f.finish(out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].truncated);
    EXPECT_EQ(out[0].bytes, "<13>1 - - - - - cut");
    StreamFramer g(1024);
    out = feed_all(g, "12");
    g.finish(out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].truncated);
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
