// The HEC exporter against tests/integration/exporters/hec/hec_receiver.py over TLS with mutual
// authentication on loopback: batching, gzip, one channel, acks (on time, late, out of order,
// never), a token refused, a busy server, no indexer acknowledgement on the token, a wrong CA or
// server name, plain HTTP only when asked for.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "exporters/formats/formatter.h"
#include "exporters/hec/errc.h"
#include "exporters/hec/hec_exporter.h"
#include "exporters/hec/protocol.h"
#include "tests/integration/exporters/hec/hec_receiver.h"

namespace hsmaudit::exporters::hec {
namespace {

using namespace std::chrono_literals;
using testing::hec::HecReceiver;
using testing::hec::HecReceiverOptions;
using testing::hec::Pki;
using testing::relp::make_audit_events;

std::unique_ptr<HecExporter> make_exporter(const HecOptions& o) {
    formats::FormatOptions f;
    f.kind = formats::FormatKind::hec;
    auto channel = make_channel_id();
    EXPECT_TRUE(channel);
    return std::make_unique<HecExporter>(o, formats::make_formatter(f), channel ? *channel : "");
}

std::vector<std::uint64_t> iota(std::uint64_t first, std::uint64_t count) {
    std::vector<std::uint64_t> v(count);
    for (std::uint64_t i = 0; i < count; ++i) v[i] = first + i;
    return v;
}

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

class HecExporterTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(Pki::get().ok) << Pki::get().log; }
};

TEST_F(HecExporterTest, BatchesGzipOneChannelAndExactPrefix) {
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.batch_events = 100;
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    const auto events = make_audit_events(1, 250);
    ASSERT_TRUE(e->send(events));
    auto n = e->acknowledged(5s);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 250u);
    EXPECT_EQ(r.received(), iota(1, 250));
    EXPECT_EQ(r.indexed(), iota(1, 250));
    const std::string req = r.requests();
    EXPECT_EQ(count_of(req, "\"path\": \"/services/collector/event\""), 3u) << req;  // 100 + 100 + 50
    EXPECT_EQ(count_of(req, "\"gzip\": true"), 3u) << req;
    EXPECT_EQ(count_of(req, "\"channel\": \"" + e->channel() + "\""), count_of(req, "\n")) << req;
    // A second batch on the same connection continues the count.
    ASSERT_TRUE(e->send(make_audit_events(251, 10)));
    n = e->acknowledged(5s);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 260u);
    const auto stats = e->stats();
    EXPECT_EQ(stats.connects, 1u);
    EXPECT_GT(stats.bytes_sent, 0u);
    EXPECT_EQ(stats.peer, "splunk_hec+https://127.0.0.1:" + std::to_string(r.port()));
    e->disconnect();
}

TEST_F(HecExporterTest, BatchBytesBoundEachPost) {
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.batch_events = 1000;
    o.batch_bytes = 8192;
    o.gzip = false;
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 100)));
    auto n = e->acknowledged(5s);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 100u);
    const std::string req = r.requests();
    const std::regex bytes_re("\"bytes\": ([0-9]+).*\"path\": \"/services/collector/event\"");
    std::size_t posts = 0;
    for (std::sregex_iterator it(req.begin(), req.end(), bytes_re), end; it != end; ++it) {
        ++posts;
        EXPECT_LE(std::stoul((*it)[1]), 8192u);
    }
    EXPECT_GT(posts, 5u) << "100 envelopes of ~1 KiB in 8 KiB posts";
    EXPECT_EQ(count_of(req, "\"gzip\": true"), 0u);
}

TEST_F(HecExporterTest, LateAcksCountOnlyOnceIndexed) {
    HecReceiver r(HecReceiverOptions{.mode = "late", .late_ms = 400});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 50)));
    auto n = e->acknowledged(0ms);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0u) << "not indexed yet";
    n = e->acknowledged(5s);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 50u);
}

TEST_F(HecExporterTest, OutOfOrderAcksConfirmOnlyTheContiguousPrefix) {
    HecReceiver r(HecReceiverOptions{.mode = "out_of_order", .late_ms = 1500});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.batch_events = 10;
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 40)));  // ackIds 0..3; 1 and 3 are indexed first
    auto n = e->acknowledged(0ms);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0u);
    // The receiver reported batches 1 and 3 indexed, yet nothing counts before batch 0 is.
    const auto early = sorted(r.indexed());
    std::vector<std::uint64_t> want = iota(11, 10);
    const auto b3 = iota(31, 10);
    want.insert(want.end(), b3.begin(), b3.end());
    EXPECT_EQ(early, want);
    n = e->acknowledged(5s);
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_EQ(*n, 40u);
}

TEST_F(HecExporterTest, AcksThatNeverComeBreakTheConnectionAfterAckTimeout) {
    HecReceiver r(HecReceiverOptions{.mode = "never"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.ack_timeout = 1s;
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 20)));
    auto n = e->acknowledged(300ms);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 0u);
    const auto start = std::chrono::steady_clock::now();
    n = e->acknowledged(5s);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().code, errc::ack_timeout) << n.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_EQ(r.received().size(), 20u);
    // Broken: the runner disconnects and resends.
    EXPECT_FALSE(e->send(make_audit_events(21, 1)));
    e->disconnect();
}

TEST_F(HecExporterTest, TokenRefusedNamesTheFileNeverTheToken) {
    HecReceiver r(HecReceiverOptions{.mode = "refuse"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    ASSERT_TRUE(e->connect()) << "the health check needs no token";
    auto st = e->send(make_audit_events(1, 5));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::token_refused);
    EXPECT_NE(st.error().message.find("HEC code 4"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find(r.token_path()), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("exporters.splunk.splunk_hec.token_file"), std::string::npos);
    EXPECT_EQ(st.error().message.find("5d1a7c52"), std::string::npos) << "the token must not appear";
    EXPECT_TRUE(r.received().empty());
}

TEST_F(HecExporterTest, WrongTokenIsRefusedAndARewrittenFileIsReadAtTheNextConnect) {
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    const std::string other = r.dir() + "/other-token";
    testing::relp::write_text(other, "not-the-token\n", 0600);
    o.token_file = other;
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    auto st = e->send(make_audit_events(1, 5));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::token_refused);
    e->disconnect();
    testing::relp::write_text(other, "5d1a7c52-hec-test-token\n", 0600);
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 5)));
    auto n = e->acknowledged(5s);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 5u);
}

TEST_F(HecExporterTest, BusyIsAnErrorToBackOffOn) {
    HecReceiver r(HecReceiverOptions{.busy = 2});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(e->connect());
        auto st = e->send(make_audit_events(1, 5));
        ASSERT_FALSE(st);
        EXPECT_EQ(st.error().code, errc::busy) << st.error().message;
        EXPECT_NE(st.error().message.find("HEC code 9"), std::string::npos) << st.error().message;
        e->disconnect();
    }
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 5)));
    auto n = e->acknowledged(5s);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 5u);
    const auto stats = e->stats();
    const auto busy =
        std::find_if(stats.counters.begin(), stats.counters.end(), [](const auto& c) { return c.first == "busy"; });
    ASSERT_NE(busy, stats.counters.end());
    EXPECT_EQ(busy->second, 2u);
}

TEST_F(HecExporterTest, RefusedDataBlocksNeverDrops) {
    HecReceiver r(HecReceiverOptions{.mode = "reject"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    ASSERT_TRUE(e->connect());
    auto st = e->send(make_audit_events(1, 5));
    ASSERT_FALSE(st) << "a batch Splunk refuses is an error, not skipped";
    EXPECT_EQ(st.error().code, errc::rejected);
    EXPECT_NE(st.error().message.find("HEC code 6 'Invalid data format' (event 0 of the batch)"), std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("blocks"), std::string::npos) << st.error().message;
    // Nothing counts: the runner resends the same events after its back-off.
    auto n = e->acknowledged(0ms);
    EXPECT_FALSE(n);
}

TEST_F(HecExporterTest, TokenWithoutIndexerAcknowledgement) {
    HecReceiver r(HecReceiverOptions{.mode = "no_ack"});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    auto e = make_exporter(o);
    ASSERT_TRUE(e->connect());
    auto st = e->send(make_audit_events(1, 5));
    ASSERT_FALSE(st) << "ack: true needs indexer acknowledgement on the token";
    EXPECT_EQ(st.error().code, errc::ack_disabled);
    EXPECT_NE(st.error().message.find("splunk_hec.ack: false"), std::string::npos) << st.error().message;
    e->disconnect();
    // ack: false: acknowledged on HTTP 200.
    o.ack = false;
    auto weak = make_exporter(o);
    ASSERT_TRUE(weak->connect());
    ASSERT_TRUE(weak->send(make_audit_events(1, 5)));
    auto n = weak->acknowledged(0ms);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 5u);
}

TEST_F(HecExporterTest, ServerIdentityIsVerified) {
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto o = r.exporter_options();
    o.ca = Pki::get().rogue_ca;
    auto st = make_exporter(o)->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::connect_failed) << st.error().message;
    o = r.exporter_options();
    o.server_name = "other.test";
    st = make_exporter(o)->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::connect_failed) << st.error().message;
    o = r.exporter_options();
    o.server_name = "";  // the URL's host is 127.0.0.1, not in the certificate
    st = make_exporter(o)->connect();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::connect_failed) << st.error().message;
    // Without a client certificate the receiver (which requires one) refuses the handshake.
    o = r.exporter_options();
    o.cert.clear();
    o.key.clear();
    auto e = make_exporter(o);
    st = e->connect();
    if (st) st = e->send(make_audit_events(1, 1));  // TLS 1.3: the refusal may come after the handshake
    EXPECT_FALSE(st);
    EXPECT_TRUE(r.received().empty());
}

TEST_F(HecExporterTest, PlainHttpWhenAskedFor) {
    HecReceiver r(HecReceiverOptions{.plain = true});
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    ASSERT_TRUE(e->connect());
    ASSERT_TRUE(e->send(make_audit_events(1, 3)));
    auto n = e->acknowledged(5s);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 3u);
    // An https exporter does not talk to it.
    auto o = r.exporter_options();
    o.tls = true;
    o.server_name = "server.test";
    EXPECT_FALSE(make_exporter(o)->connect());
}

TEST_F(HecExporterTest, ReceiverGoneIsAnErrorNotAHang) {
    HecReceiver r;
    ASSERT_TRUE(r.start()) << r.diagnostics();
    auto e = make_exporter(r.exporter_options());
    ASSERT_TRUE(e->connect());
    r.kill();
    const auto start = std::chrono::steady_clock::now();
    auto st = e->send(make_audit_events(1, 5));
    EXPECT_FALSE(st);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_FALSE(e->connect());
}

}  // namespace
}  // namespace hsmaudit::exporters::hec
