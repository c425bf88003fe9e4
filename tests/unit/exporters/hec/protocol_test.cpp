// HEC's protocol without HTTP: answers parsed (and hostile ones refused), HTTP status + HEC code
// classified, the acknowledged prefix with acks out of order, gzip and the channel id.
#include <gtest/gtest.h>
#include <zlib.h>

#include <regex>
#include <set>
#include <string>

#include "exporters/hec/errc.h"
#include "exporters/hec/protocol.h"

namespace hsmaudit::exporters::hec {
namespace {

using namespace std::chrono_literals;

TEST(HecReply, ParsesSuccessWithAckId) {
    auto r = parse_event_reply(R"({"text":"Success","code":0,"ackId":7})");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->code, 0);
    EXPECT_EQ(r->text, "Success");
    EXPECT_EQ(r->ack_id, 7u);
    auto big = parse_event_reply(R"({"code":0,"ackId":18446744073709551615})");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->ack_id, 18446744073709551615u);
    auto bad_event = parse_event_reply(R"({"text":"Invalid data format","code":6,"invalid-event-number":3})");
    ASSERT_TRUE(bad_event);
    EXPECT_EQ(bad_event->invalid_event_number, 3u);
}

TEST(HecReply, RefusesWhatIsNotAHecAnswer) {
    for (const char* body :
         {"", "null", "[]", "\"x\"", "{", "{\"code\":\"0\"}", "{\"code\":1.5}", "{\"code\":-1}", "{\"text\":5}",
          "{\"ackId\":-1}", "{\"ackId\":\"3\"}", "{\"ackId\":1e3}", "<html>busy</html>"}) {
        auto r = parse_event_reply(body);
        EXPECT_FALSE(r) << body;
        if (!r) {
            EXPECT_EQ(r.error().code, errc::protocol_error) << body;
        }
    }
}

TEST(HecReply, BoundsSizeDepthAndText) {
    EXPECT_FALSE(parse_event_reply(std::string(kMaxReplyBytes + 1, ' ')));
    std::string deep(10'000, '[');
    EXPECT_FALSE(parse_event_reply(deep));
    // Brackets inside strings do not count.
    auto ok = parse_event_reply(R"({"text":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","code":0})");
    ASSERT_TRUE(ok);
    auto hostile = parse_event_reply("{\"text\":\"" + std::string(5000, 'a') + "\\u0007\\n\",\"code\":9}");
    ASSERT_TRUE(hostile);
    EXPECT_LE(hostile->text.size(), 210u);
    for (char c : hostile->text) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
}

TEST(HecAckReply, ParsesAndRefusesHostileAnswers) {
    auto r = parse_ack_reply(R"({"acks":{"0":true,"1":false,"2":true}})");
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[1], std::make_pair(std::uint64_t{1}, false));
    for (const char* body :
         {"{}", R"({"acks":[1,2]})", R"({"acks":{"x":true}})", R"({"acks":{"-1":true}})", R"({"acks":{"1":1}})",
          R"({"acks":{"99999999999999999999999":true}})", R"({"acks":{"":true}})"})
        EXPECT_FALSE(parse_ack_reply(body)) << body;
    EXPECT_EQ(render_ack_request({}), R"({"acks":[]})");
    EXPECT_EQ(render_ack_request({3, 1, 2}), R"({"acks":[3,1,2]})");
}

TEST(HecClassify, StatusAndCodeToError) {
    auto reply = [](int code) {
        EventReply r;
        r.code = code;
        return std::optional<EventReply>(r);
    };
    EXPECT_TRUE(classify(200, reply(0), "u"));
    EXPECT_TRUE(classify(200, std::nullopt, "u"));
    struct Case {
        long status;
        int code;
        errc want;
    };
    for (const Case c :
         {Case{401, 2, errc::token_refused}, Case{401, 3, errc::token_refused}, Case{403, 4, errc::token_refused},
          Case{403, 1, errc::token_refused}, Case{503, 9, errc::busy}, Case{429, -1, errc::busy},
          Case{200, 9, errc::busy}, Case{503, 18, errc::busy}, Case{400, 6, errc::rejected},
          Case{400, 7, errc::rejected}, Case{400, 5, errc::rejected}, Case{413, -1, errc::rejected},
          Case{400, 14, errc::ack_disabled}, Case{500, 8, errc::server_error}, Case{502, -1, errc::server_error},
          Case{400, 10, errc::protocol_error}, Case{404, -1, errc::protocol_error}}) {
        auto st = classify(c.status, c.code < 0 ? std::nullopt : reply(c.code), "https://h:8088/x");
        ASSERT_FALSE(st) << c.status << " " << c.code;
        EXPECT_EQ(st.error().code, c.want) << c.status << " " << c.code << ": " << st.error().message;
        EXPECT_EQ(st.error().message.rfind("https://h:8088/x: ", 0), 0u) << st.error().message;
    }
}

TEST(AckTracker, CountsOnlyTheContiguousPrefix) {
    AckTracker t;
    const auto now = AckTracker::Clock::now();
    ASSERT_TRUE(t.add_pending(10, 0, now));
    ASSERT_TRUE(t.add_pending(20, 1, now + 1ms));
    ASSERT_TRUE(t.add_pending(30, 2, now + 2ms));
    EXPECT_EQ(t.added(), 60u);
    EXPECT_EQ(t.prefix(), 0u);
    EXPECT_EQ(t.pending_ids(10), (std::vector<std::uint64_t>{0, 1, 2}));
    EXPECT_EQ(t.pending_ids(2), (std::vector<std::uint64_t>{0, 1}));
    // Out of order: 2 then 1 confirm nothing until 0 does.
    EXPECT_TRUE(t.acknowledge(2));
    EXPECT_EQ(t.prefix(), 0u);
    EXPECT_TRUE(t.acknowledge(1));
    EXPECT_EQ(t.prefix(), 0u);
    EXPECT_EQ(t.oldest_pending(), now);
    EXPECT_FALSE(t.acknowledge(77)) << "an id never given is ignored";
    EXPECT_FALSE(t.acknowledge(2)) << "an id confirmed twice counts once";
    EXPECT_TRUE(t.acknowledge(0));
    EXPECT_EQ(t.prefix(), 60u);
    EXPECT_EQ(t.pending_count(), 0u);
    EXPECT_FALSE(t.oldest_pending());
    // Without acks (ack: false) a batch counts at once, but not past an awaited one.
    ASSERT_TRUE(t.add_pending(5, 3, now));
    t.add_acknowledged(4);
    EXPECT_EQ(t.prefix(), 60u);
    EXPECT_TRUE(t.acknowledge(3));
    EXPECT_EQ(t.prefix(), 69u);
    // An id reused while awaited is a protocol error; reused after confirmation is fine (new batch).
    ASSERT_TRUE(t.add_pending(1, 4, now));
    auto dup = t.add_pending(1, 4, now);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, errc::protocol_error);
    ASSERT_TRUE(t.add_pending(1, 0, now));
    t.reset();
    EXPECT_EQ(t.prefix(), 0u);
    EXPECT_EQ(t.added(), 0u);
    EXPECT_EQ(t.pending_count(), 0u);
}

TEST(AckTracker, RandomOrderNeverPassesAnUnconfirmedBatch) {
    AckTracker t;
    std::vector<std::uint64_t> sizes;
    for (std::uint64_t i = 0; i < 200; ++i) {
        sizes.push_back(i % 7 + 1);
        ASSERT_TRUE(t.add_pending(sizes.back(), 1000 + i, AckTracker::Clock::now()));
    }
    std::vector<std::uint64_t> order(200);
    for (std::uint64_t i = 0; i < 200; ++i) order[i] = (i * 73) % 200;  // a permutation (gcd(73,200)=1)
    std::set<std::uint64_t> done;
    for (auto i : order) {
        t.acknowledge(1000 + i);
        done.insert(i);
        std::uint64_t expect = 0;
        for (std::uint64_t j = 0; j < 200 && done.contains(j); ++j) expect += sizes[j];
        ASSERT_EQ(t.prefix(), expect);
    }
}

TEST(HecGzip, RoundTripsThroughZlib) {
    std::string data;
    for (int i = 0; i < 1000; ++i) data += R"({"time":1.000,"event":{"n":)" + std::to_string(i) + "}}";
    auto z = gzip(data);
    ASSERT_TRUE(z) << z.error().message;
    ASSERT_GE(z->size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>((*z)[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>((*z)[1]), 0x8b);
    EXPECT_LT(z->size(), data.size() / 4);
    z_stream s{};
    ASSERT_EQ(inflateInit2(&s, 15 + 16), Z_OK);
    std::string out(data.size() + 16, '\0');
    s.next_in = reinterpret_cast<Bytef*>(z->data());
    s.avail_in = static_cast<uInt>(z->size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
    out.resize(s.total_out);
    inflateEnd(&s);
    EXPECT_EQ(out, data);
    auto empty = gzip("");
    ASSERT_TRUE(empty);
}

TEST(HecChannel, IsARandomVersion4Uuid) {
    const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
    auto a = make_channel_id();
    auto b = make_channel_id();
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(std::regex_match(*a, uuid)) << *a;
    EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace hsmaudit::exporters::hec
