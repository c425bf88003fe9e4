// Unit tests of the host interface: the control protocol, the in-process and cross-process hosts,
// and a multi-process stress test (one writer, one acknowledging reader that verifies every MAC,
// two reader processes that race with the writer's reuse of acknowledged space).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "hsmcore/errc.h"
#include "hsmcore/host/control_protocol.h"
#include "hsmcore/host/control_server.h"
#include "hsmcore/host/module_host.h"
#include "hsmcore/module/module.h"
#include "mac/chain_verifier.h"
#include "mac/checkpoint.h"
#include "mac/keys.h"
#include "mac/segment_format.h"

namespace hsmaudit::hsmcore::host {
namespace {

namespace fs = std::filesystem;
using module::Module;

class HostTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmcore_host_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
    }
    void TearDown() override {
        module_.reset();
        fs::remove_all(dir_);
    }
    void init(std::size_t ring_bytes) {
        module::InitOptions o;
        o.ring_bytes = ring_bytes;
        ASSERT_TRUE(Module::init(dir_.string(), o));
        auto m = Module::open(dir_.string());
        ASSERT_TRUE(m);
        module_ = std::move(*m);
        auto pins = module::load_client_pins(dir_.string());
        ASSERT_TRUE(pins);
        pins_ = *pins;
    }
    std::uint64_t co_session() {
        auto s = module_->open_session(1);
        EXPECT_TRUE(module_->login(s->handle, module::Role::co, pins_.at({"CO", 1})));
        return s->handle;
    }

    fs::path dir_;
    std::unique_ptr<Module> module_;
    std::map<std::pair<std::string, std::uint32_t>, std::string> pins_;
};

TEST(ControlProtocol, RepliesParseAndErrorsKeepTheirCode) {
    auto ok = parse_reply("OK seq=5 handle=7 data=abcd");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->get_u64("seq"), 5u);
    EXPECT_EQ(ok->get("data"), "abcd");
    auto err = parse_reply("ERR log_full audit log full");
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().code, errc::log_full);
    EXPECT_EQ(err.error().message, "audit log full");
    EXPECT_FALSE(parse_reply("garbage"));
    EXPECT_FALSE(parse_reply("OK novalue"));
}

TEST_F(HostTest, ControlRequestsAreValidatedAndNeverCrash) {
    init(1 << 20);
    auto h = [&](std::string_view req) { return ControlServer::handle(*module_, req); };
    EXPECT_EQ(h("PING"), "OK");
    EXPECT_EQ(h(""), "ERR protocol_error empty request");
    EXPECT_EQ(h("FROB 1 2").rfind("ERR protocol_error", 0), 0u);
    EXPECT_EQ(h("SIGN x y zz").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_EQ(h("SIGN 1 1 abc").rfind("ERR invalid_argument", 0), 0u);  // odd hex
    EXPECT_EQ(h("ACK 18446744073709551616").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_EQ(h("ACK 999999").rfind("ERR invalid_argument", 0), 0u);  // beyond the newest entry
    EXPECT_EQ(h("LOGIN 1 KING 1234").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_EQ(h("SIGN 77 1 00").rfind("ERR not_found", 0), 0u);  // no such session
    const std::string binary("SIGN \x01\xff\x00 1", 11);         // NOLINT(bugprone-string-constructor): a NUL inside
    EXPECT_EQ(h(binary).rfind("ERR ", 0), 0u);
    auto open = parse_reply(h("OPEN 1"));
    ASSERT_TRUE(open);
    const std::string s = std::to_string(open->get_u64("handle"));
    EXPECT_EQ(h("LOGIN " + s + " CO " + pins_.at({"CO", 1})).rfind("OK", 0), 0u);
    auto k = parse_reply(h("GENKEY " + s + " EC-P256 lbl"));
    ASSERT_TRUE(k);
    auto sig = parse_reply(h("SIGN " + s + " " + std::to_string(k->get_u64("handle")) + " 00ff"));
    ASSERT_TRUE(sig);
    EXPECT_GT(sig->get_u64("seq"), 0u);
    EXPECT_EQ(h("VERIFY " + s + " " + std::to_string(k->get_u64("handle")) + " 00ff " + std::string(sig->get("data"))),
              "OK seq=" + std::to_string(sig->get_u64("seq") + 1) + " handle=0");
    auto st = parse_reply(h("STATUS"));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->get("serial"), "150123");
    EXPECT_EQ(st->get_u64("next_seq"), sig->get_u64("seq") + 2);
}

TEST_F(HostTest, InProcessHostReadsAcksAndSeals) {
    init(1 << 20);
    auto host = make_in_process_host(*module_);
    const auto s = co_session();
    auto k = module_->generate_key(s, module::KeyAlg::ec_p256, "k");
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(module_->sign(s, k->handle, "m"));
    std::vector<ring::EntryView> v;
    auto n = host->read_after(0, 1000, v);
    ASSERT_TRUE(n);
    const std::uint64_t last = v.back().entry.entry_no;
    EXPECT_EQ(*n, v.size());
    EXPECT_EQ(v.front().entry.kind, ring::EntryKind::open);
    ASSERT_TRUE(host->ack_through(last));
    auto st = host->status();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->used_bytes, 0u);
    EXPECT_EQ(st->oldest_entry, last + 1);
    auto seal = host->seal();
    ASSERT_TRUE(seal);
    EXPECT_EQ(*seal, last + 1);
    v.clear();
    ASSERT_TRUE(host->read_after(last, 10, v));
    ASSERT_EQ(v.size(), 2u);
    EXPECT_EQ(v[0].entry.kind, ring::EntryKind::seal);
    EXPECT_EQ(v[1].entry.kind, ring::EntryKind::open);
    std::string line;
    ASSERT_TRUE(render_line(v[0], host->serial(), line));
    EXPECT_EQ(line.rfind("@seal ", 0), 0u);
}

TEST_F(HostTest, CrossProcessHostUsesTheRingFileAndTheControlSocket) {
    init(1 << 20);
    auto server = ControlServer::start(*module_, (dir_ / kControlSocket).string());
    ASSERT_TRUE(server) << server.error().message;
    auto host = connect_host(dir_.string());
    ASSERT_TRUE(host) << host.error().message;
    const auto s = co_session();
    auto k = module_->generate_key(s, module::KeyAlg::aes256, "k");
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(module_->encrypt(s, k->handle, "m"));
    std::vector<ring::EntryView> v;
    ASSERT_TRUE((*host)->read_after(0, 1000, v));
    ASSERT_FALSE(v.empty());
    ASSERT_TRUE((*host)->ack_through(v.back().entry.entry_no));
    EXPECT_EQ(module_->status().oldest_entry, v.back().entry.entry_no + 1);
    auto seal = (*host)->seal();
    ASSERT_TRUE(seal) << seal.error().message;
    EXPECT_EQ(*seal, v.back().entry.entry_no + 1);
    auto bad = (*host)->ack_through(1'000'000);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::invalid_argument);
    (*server)->stop();
    auto gone = (*host)->ack_through(1);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, errc::unavailable);
}

TEST_F(HostTest, CheckpointsStateTheRetainedSequenceAndTheModuleRefusesOneBeyondItsHead) {
    init(1 << 20);
    auto server = ControlServer::start(*module_, (dir_ / kControlSocket).string());
    ASSERT_TRUE(server) << server.error().message;
    auto host = connect_host(dir_.string());
    ASSERT_TRUE(host) << host.error().message;
    const auto s = co_session();
    auto k = module_->generate_key(s, module::KeyAlg::aes256, "k");
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(module_->encrypt(s, k->handle, "m"));
    auto signer = mac::load_signing_key((dir_ / mac::kAuditSignFile).string());
    ASSERT_TRUE(signer);
    const mac::Ed25519PublicKey pub = signer->public_key();
    auto v1 = (*host)->checkpoint(0);  // no retained: version 1, as before
    ASSERT_TRUE(v1) << v1.error().message;
    EXPECT_EQ(v1->version, 1u);
    EXPECT_TRUE(v1->verify(pub));
    const std::uint64_t head = v1->seq;
    ASSERT_GT(head, 0u);
    for (std::uint64_t retained : {std::uint64_t{1}, head, head + 1}) {
        auto c = (*host)->checkpoint(retained);  // through the control socket
        ASSERT_TRUE(c) << c.error().message;
        EXPECT_EQ(c->version, 2u);
        EXPECT_EQ(c->retained, retained);
        EXPECT_TRUE(c->verify(pub));
        auto in = make_in_process_host(*module_)->checkpoint(retained);
        ASSERT_TRUE(in);
        EXPECT_EQ(in->retained, retained);
    }
    // The host cannot hold records the module never wrote.
    auto beyond = (*host)->checkpoint(head + 2);
    ASSERT_FALSE(beyond);
    EXPECT_EQ(beyond.error().code, errc::invalid_argument);
    auto h = [&](std::string_view req) { return ControlServer::handle(*module_, req); };
    EXPECT_EQ(h("CHECKPOINT 0").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_EQ(h("CHECKPOINT x").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_EQ(h("CHECKPOINT 1 2").rfind("ERR invalid_argument", 0), 0u);
    EXPECT_NE(h("CHECKPOINT 1").find(" retained=1 "), std::string::npos);
    (*server)->stop();
}

// Threads instead of processes (the embedded default): four client threads drive the module while a
// drain thread reads through the in-process host, verifies every MAC and seal, and acknowledges. Run
// under ThreadSanitizer too (docs: hsmcore/README.md).
TEST_F(HostTest, ConcurrentClientThreadsAndInProcessDrainKeepTheChainIntact) {
    constexpr int kThreads = 4;
    constexpr int kOpsPerThread = 1500;
    init(std::size_t{128} * 1024);
    auto key = mac::load_audit_key((dir_ / mac::kAuditKeyFile).string());
    ASSERT_TRUE(key);
    std::atomic<bool> clients_done{false};
    std::uint64_t faults = 0;
    std::uint64_t records = 0;
    std::thread drain([&] {
        auto host = make_in_process_host(*module_);
        mac::ChainVerifier verifier(&*key, nullptr, [&](mac::Fault&&) { ++faults; });
        std::uint64_t cursor = 0;
        std::uint64_t line_no = 0;
        std::vector<ring::EntryView> v;
        std::string line;
        for (;;) {
            const bool last_round = clients_done.load();
            v.clear();
            auto n = host->read_after(cursor, 256, v);
            if (!n) {
                ++faults;
                return;
            }
            for (const auto& e : v) {
                line.clear();
                if (!render_line(e, host->serial(), line)) ++faults;
                const std::string_view text(line.data(), line.size() - 1);
                ++line_no;
                if (e.entry.kind == ring::EntryKind::open) {
                    auto o = mac::parse_open_line(text);
                    if (o) verifier.begin_segment(*o, text, "ring");
                } else {
                    verifier.line(text, line_no);
                    if (e.entry.kind == ring::EntryKind::seal) verifier.end_segment(false);
                    if (e.entry.kind == ring::EntryKind::record) ++records;
                }
                cursor = e.entry.entry_no;
            }
            if (!v.empty() && !host->ack_through(cursor)) ++faults;
            if (v.empty() && last_round) break;
            if (v.empty()) std::this_thread::yield();
        }
        verifier.end_segment(true);
    });
    std::vector<std::thread> clients;
    clients.reserve(kThreads);
    std::atomic<std::uint64_t> done{0};
    for (int t = 0; t < kThreads; ++t) {
        clients.emplace_back([&, t] {
            const auto s = co_session();
            std::uint64_t aes = 0;
            while (aes == 0) {  // refused while the ring is at its reserve: the drain frees it
                auto k = module_->generate_key(s, module::KeyAlg::aes256, "k");
                if (k)
                    aes = k->handle;
                else
                    std::this_thread::yield();
            }
            for (int i = 0; i < kOpsPerThread; ++i) {
                // Refused while the ring is at its reserve (the drain thread may lag on a busy
                // machine): retry until the drain frees space. Any other error counts as not done.
                for (;;) {
                    auto r = (i % 3 == 0) ? module_->encrypt(s, aes, "data") : module_->log_external(s, "m");
                    if (r) {
                        ++done;
                        break;
                    }
                    if (r.error().code != errc::log_full) break;
                    std::this_thread::yield();
                }
                if (t == 0 && i % 500 == 0) (void)module_->seal();
            }
        });
    }
    for (auto& c : clients) c.join();
    clients_done = true;
    drain.join();
    EXPECT_EQ(faults, 0u);
    const auto st = module_->status();
    EXPECT_EQ(records, st.next_seq - 1);
    EXPECT_EQ(done.load(), static_cast<std::uint64_t>(kThreads * kOpsPerThread));
}

// One writer (this process), one acknowledging reader process that verifies every MAC and seal with
// the real chain verifier, and two reader processes that never acknowledge and so race with the
// writer reusing space: they may fall behind (overrun) but must never see a torn or wrong entry.
TEST_F(HostTest, MultiProcessReadersAndWriterNeverCorruptEachOther) {
    constexpr std::uint64_t kRecords = 40000;
    init(std::size_t{96} * 1024);
    const std::string ring_path = (dir_ / ring::kRingFile).string();
    const std::string key_path = (dir_ / mac::kAuditKeyFile).string();
    int ack_pipe[2];
    ASSERT_EQ(::pipe(ack_pipe), 0);

    auto acker = [&]() -> int {
        ::close(ack_pipe[0]);
        auto reader = ring::RingReader::open(ring_path);
        auto key = mac::load_audit_key(key_path);
        if (!reader || !key) return 10;
        std::uint64_t faults = 0;
        mac::ChainVerifier verifier(&*key, nullptr, [&](mac::Fault&&) { ++faults; });
        std::uint64_t cursor = 0;
        std::uint64_t line_no = 0;
        std::vector<ring::EntryView> v;
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        for (;;) {
            if (std::chrono::steady_clock::now() > deadline) return 11;
            v.clear();
            auto n = reader->read_after(cursor, 512, v);
            if (!n) return 12;
            bool finished = false;
            for (const auto& e : v) {
                line.clear();
                if (!ring::render_entry_line(e.entry, reader->serial(), line)) return 13;
                const std::string_view text(line.data(), line.size() - 1);
                ++line_no;
                if (e.entry.kind == ring::EntryKind::open) {
                    auto o = mac::parse_open_line(text);
                    if (!o) return 14;
                    verifier.begin_segment(*o, text, "ring");
                } else {
                    verifier.line(text, line_no);
                    if (e.entry.kind == ring::EntryKind::seal) verifier.end_segment(false);
                }
                if (e.entry.kind == ring::EntryKind::record && e.entry.seq >= kRecords) finished = true;
                cursor = e.entry.entry_no;
            }
            if (!v.empty() && ::write(ack_pipe[1], &cursor, sizeof cursor) != sizeof cursor) return 15;
            if (finished) break;
        }
        verifier.end_segment(true);
        return faults == 0 ? 0 : 16;
    };
    auto observer = [&]() -> int {
        ::close(ack_pipe[0]);
        ::close(ack_pipe[1]);
        auto reader = ring::RingReader::open(ring_path);
        if (!reader) return 20;
        std::uint64_t cursor = 0;
        std::uint64_t seen = 0;
        std::vector<ring::EntryView> v;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (reader->status().oldest_seq <= kRecords) {
            if (std::chrono::steady_clock::now() > deadline) return 21;
            v.clear();
            auto n = reader->read_after(cursor, 64, v);
            if (!n) {
                if (n.error().code != errc::overrun) return 22;  // corrupt: a torn or wrong entry seen
                cursor = reader->status().oldest_entry - 1;
                continue;
            }
            // Views stay valid only until their entries are acknowledged (module_host.h), and this
            // reader does not acknowledge: the acker may free them, and the writer reuse the bytes,
            // while they are decoded here. A result counts only if, after decoding, the entries are
            // still unacknowledged; if they are, it must be exactly right.
            std::uint64_t prev_seq = 0;
            int bad = 0;
            std::uint64_t decoded = 0;
            for (const auto& e : v) {
                if (e.entry.kind == ring::EntryKind::record) {
                    mac::AuditRecord rec;
                    mac::Mac m{};
                    if (!ring::decode_record(e.entry, reader->serial(), rec, m)) {
                        bad = 23;
                        break;
                    }
                    if (prev_seq != 0 && rec.seq != prev_seq + 1) {
                        bad = 24;
                        break;
                    }
                    prev_seq = rec.seq;
                    ++decoded;
                }
            }
            if (!v.empty() && reader->status().oldest_entry > v.front().entry.entry_no) {
                cursor = reader->status().oldest_entry - 1;  // overrun while decoding: read again
                continue;
            }
            if (bad != 0) return bad;  // the bytes were still the module's: a torn or wrong entry
            seen += decoded;
            if (!v.empty()) cursor = v.back().entry.entry_no;
        }
        return seen > 0 ? 0 : 25;
    };

    std::vector<pid_t> children;
    for (int i = 0; i < 3; ++i) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) ::_exit(i == 0 ? acker() : observer());
        children.push_back(pid);
    }
    ::close(ack_pipe[1]);

    std::thread acks([&] {
        std::uint64_t through = 0;
        while (::read(ack_pipe[0], &through, sizeof through) == sizeof through) (void)module_->ack_through(through);
    });
    const auto s = co_session();
    std::uint64_t ops = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (module_->status().next_seq <= kRecords && std::chrono::steady_clock::now() < deadline) {
        auto r = module_->log_external(s, std::string(ops % 97, 'x'));
        if (!r) std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (++ops % 1500 == 0) (void)module_->seal();
    }
    std::vector<int> codes;
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status));
    }
    acks.join();
    ::close(ack_pipe[0]);
    EXPECT_EQ(codes[0], 0) << "acknowledging verifier";
    EXPECT_EQ(codes[1], 0) << "observer 1";
    EXPECT_EQ(codes[2], 0) << "observer 2";
    const auto st = module_->status();
    EXPECT_GT(st.next_seq, kRecords);
    EXPECT_GT(st.end_pos, 20 * st.capacity);  // the ring wrapped many times under the readers
}

}  // namespace
}  // namespace hsmaudit::hsmcore::host
