// Issue 17, faithful syslog: what the collector received goes through the spool and comes back to
// every destination byte for byte. parse -> SyslogIntake's payload -> the real EventSpool -> the
// destinations' reader (StoreEventSource) -> Event: every field equal, raw exactly the received
// bytes (LF, CR, NUL, backslashes, invalid UTF-8), structured data in received order with
// duplicates, the message's own time when its timestamp has a zone. Lines spooled before (payload
// version 1) read back as they did. The reader takes the longest line the writer can produce.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "agent/daemon/syslog_intake.h"
#include "agent/engine/export/store_source.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/state_layout.h"
#include "agent/engine/store/syslog_payload.h"
#include "collectors/syslog/parser.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
namespace sl = collectors::syslog;

constexpr std::int64_t kSpoolTime = 1'795'500'000'000;  // the spool's clock: the receive time

class SyslogSpoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        state_ = fs::temp_directory_path() /
                 ("hsmaudit-syslog-spool-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::remove_all(state_);
        SpoolOptions so;
        so.dir = spool_dir_of(state_.string());
        so.segment_max_bytes = 1 << 20;
        auto spool = EventSpool::open(so, [] { return kSpoolTime; });
        ASSERT_TRUE(spool.has_value()) << spool.error().describe();
        spool_ = std::move(*spool);
    }
    void TearDown() override {
        spool_.reset();
        fs::remove_all(state_);
    }

    /// Spools `payloads`, then reads every syslog event back as a destination does.
    std::vector<Event> round_trip(const std::vector<std::string>& payloads) {
        for (const auto& p : payloads) EXPECT_TRUE(spool_->push(p));
        EXPECT_TRUE(spool_->flush().has_value());
        auto src = make_store_event_source(StoreSourceOptions{state_.string(), nullptr, "150123", "hsm1"});
        std::vector<Event> out;
        for (;;) {
            const std::uint64_t after = out.empty() ? 0 : out.back().position;
            auto got = src->read(Stream::syslog, after, 7, out);
            EXPECT_TRUE(got.has_value()) << got.error().describe();
            if (!got || *got == 0) break;
        }
        return out;
    }

    static sl::SyslogMessage received(const std::string& bytes, sl::Transport t = sl::Transport::tcp) {
        auto m = sl::parse_message(bytes);
        m.transport = t;
        m.peer = "127.0.0.1:5514";
        return m;
    }

    static inline int counter_ = 0;
    fs::path state_;
    std::unique_ptr<EventSpool> spool_;
};

TEST_F(SyslogSpoolTest, EveryByteOfHostileMessagesComesBack) {
    std::vector<std::string> inputs = {
        // A Windows path with doubled backslashes and a literal "\x0A": both must stay as they are.
        "<13>1 2026-11-24T06:29:00.123456+02:00 h app 1 m - C:\\\\dir \\x0A done",
        // Multi-line (octet-counted), CR LF inside, NUL, and a trailing LF that is not the MSG's.
        std::string("<13>1 - h a p m - line1\nline2\r\nline3 nul:") + '\0' + " end\n",
        // SD: order and duplicates, escapes, control characters and invalid UTF-8 in values.
        "<13>1 - h a p m [z@1 b=\"1\" a=\"x\\\"y\\]z\\\\w\" b=\"tab\there\nnl\"][a@1 v=\"\xFF\xFE\"][z@1 c=\"5\"] m",
        // Not UTF-8 at all, no grammar: malformed, kept.
        std::string("\xFF\xFE\x00\x01 binary \x80\x7F", 12),
        // RFC 3164 and the appliance's file line: no zone, so the receive time is the event's.
        "<13>Nov 24 06:29:00 host tag[9]: bsd \\ text",
        "2026 Nov 24 06:29:00 myLuna local5 info NTLS [1234]: luna",
        "",
    };
    std::mt19937_64 rng(17);
    for (int i = 0; i < 200; ++i) {
        std::string in = "<13>1 - h a p m - ";
        in.resize(in.size() + rng() % 400);
        for (std::size_t k = 18; k < in.size(); ++k) in[k] = static_cast<char>(rng());
        inputs.push_back(std::move(in));
    }
    std::vector<std::string> payloads;
    std::vector<SyslogFields> expect;
    for (const auto& in : inputs) {
        const auto m = received(in);
        expect.push_back(syslog_fields_of(m));
        payloads.push_back(syslog_spool_payload(m, sl::kDefaultMaxMessageBytes));
    }
    const auto events = round_trip(payloads);
    ASSERT_EQ(events.size(), inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto& e = events[i];
        EXPECT_EQ(e.syslog, expect[i]) << "message " << i;
        EXPECT_EQ(e.syslog.raw, inputs[i]) << "message " << i;
        EXPECT_EQ(e.received_ms, kSpoolTime);
    }
    EXPECT_EQ(events[0].syslog.msg, "C:\\\\dir \\x0A done");
    EXPECT_EQ(events[0].time_ms, 1795494540123) << "2026-11-24T06:29:00.123+02:00: the message's own time";
    EXPECT_EQ(events[1].syslog.msg, std::string("line1\nline2\r\nline3 nul:") + '\0' + " end");
    const auto& sd = events[2].syslog.sd;
    ASSERT_EQ(sd.size(), 3u);
    EXPECT_EQ(sd[0].first, "z@1");
    EXPECT_EQ(sd[1].first, "a@1");
    EXPECT_EQ(sd[2].first, "z@1");
    ASSERT_EQ(sd[0].second.size(), 3u);
    EXPECT_EQ(sd[0].second[0], (std::pair<std::string, std::string>{"b", "1"}));
    EXPECT_EQ(sd[0].second[1], (std::pair<std::string, std::string>{"a", "x\"y]z\\w"}));
    EXPECT_EQ(sd[0].second[2], (std::pair<std::string, std::string>{"b", "tab\there\nnl"}));
    EXPECT_EQ(sd[1].second[0].second, "\xFF\xFE");
    EXPECT_FALSE(events[3].syslog.malformed.empty());
    EXPECT_EQ(events[4].time_ms, kSpoolTime) << "RFC 3164: no year, no zone";
    EXPECT_EQ(events[5].time_ms, kSpoolTime) << "the appliance's file time has no zone";
    EXPECT_EQ(events[0].syslog.format, "rfc5424");
    EXPECT_EQ(events[0].syslog.transport, "tcp");
}

TEST_F(SyslogSpoolTest, LinesSpooledBeforeVersionTwoReadBackAsTheyDid) {
    // As the writer of issue 16 spooled them: \xNN text, SD as an object (params by name), raw only
    // when malformed.
    const std::vector<std::string> v1 = {
        R"({"transport":"udp","peer":"127.0.0.1:1","format":"rfc5424","facility":5,"severity":4,"timestamp":"2026-11-24T06:29:00Z","host":"myLuna","app":"NTLS","sd":{"x@1":{"a":"1","b":"2"}},"msg":"caf\\xFF C:\\\\dir"})",
        R"({"transport":"tcp","peer":"p","format":"unknown","msg":"\\x00bin","malformed":"no PRI","raw":"\\x00bin"})",
    };
    const auto events = round_trip(v1);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].syslog.msg, "caf\\xFF C:\\\\dir");
    EXPECT_EQ(events[0].syslog.host, "myLuna");
    EXPECT_EQ(events[0].syslog.facility, 5);
    ASSERT_EQ(events[0].syslog.sd.size(), 1u);
    EXPECT_EQ(events[0].syslog.sd[0].second.size(), 2u);
    EXPECT_TRUE(events[0].syslog.raw.empty());
    EXPECT_FALSE(events[0].syslog.time_us) << "version 1 kept no event time: the receive time stays";
    EXPECT_EQ(events[0].time_ms, kSpoolTime);
    EXPECT_EQ(events[1].syslog.raw, "\\x00bin");
    EXPECT_EQ(events[1].syslog.malformed, "no PRI");
}

TEST_F(SyslogSpoolTest, TheReaderTakesTheLongestLineTheWriterCanProduce) {
    // The intake's payload bound covers its worst message: the largest size, every byte invalid
    // UTF-8 (base64) and as much structured data as fits.
    const std::size_t max = std::size_t{1} << 20;
    std::string worst = "<13>1 - h a p m ";
    while (worst.size() + 10 <= max) worst += "[x a=\"\xFF\"]";
    const auto sd_heavy = received(worst);
    ASSERT_FALSE(sd_heavy.malformed) << sd_heavy.malformed_reason;
    std::string binary(max, '\xFF');
    const std::string p1 = syslog_spool_payload(sd_heavy, max);
    const std::string p2 = syslog_spool_payload(received(binary), max);
    EXPECT_LE(p1.size(), max_syslog_payload_bytes(max));
    EXPECT_LE(p2.size(), max_syslog_payload_bytes(max));
    EXPECT_GT(p1.size(), 2 * max) << "the SD-heavy message is the long case";

    // Version 1 wrote up to about 5 bytes per received byte in each of msg and raw: a line of
    // several hundred KiB from a 64 KiB message, beyond the 64 KiB the reader took before.
    std::string escaped;
    for (int i = 0; i < 64 * 1024; ++i) escaped += "\\\\xFF";
    const std::string v1 = R"({"transport":"udp","msg":")" + escaped + R"(","malformed":"x","raw":")" + escaped + "\"}";
    ASSERT_GT(v1.size(), std::size_t{600} * 1024);
    ASSERT_LE(v1.size(), max_syslog_payload_bytes(std::size_t{64} * 1024));

    const auto events = round_trip({p1, p2, v1});
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].syslog.raw, worst);
    EXPECT_EQ(events[0].syslog.sd.size(), sd_heavy.structured_data.size());
    EXPECT_EQ(events[1].syslog.raw, binary);
    EXPECT_EQ(events[2].syslog.msg.size(), std::size_t{64} * 1024 * 4);
}

TEST(SyslogPayloadDoc, TheExampleInFormatMdIsWhatTheIntakeWrites) {
    auto m =
        sl::parse_message("<13>1 2026-11-24T08:15:19.250+02:00 myLuna app - - [x@1 a=\"1\" a=\"2\"] C:\\\\dir\nline 2");
    m.transport = sl::Transport::tcp;
    m.peer = "127.0.0.1:40522";
    const std::string payload = syslog_spool_payload(m, sl::kDefaultMaxMessageBytes);
    std::ifstream in(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/FORMAT.md");
    std::stringstream doc;
    doc << in.rdbuf();
    EXPECT_NE(doc.str().find("1 2026-11-24T06:15:19.251Z " + payload + " h=..."), std::string::npos)
        << "docs/FORMAT.md section 11 should show this payload:\n"
        << payload;
}

}  // namespace
}  // namespace hsmaudit::agent
