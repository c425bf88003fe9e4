// Unit tests of the emulated module: audit classes, blocking and resuming, lock-out, cryptography,
// restarts (boot counter, chain continuity verified by the real verifier).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "hsmcore/errc.h"
#include "hsmcore/module/module.h"
#include "hsmcore/ring/entry_codec.h"
#include "mac/keys.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"

namespace hsmaudit::hsmcore::module {
namespace {

namespace fs = std::filesystem;

class ModuleTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("hsmcore_module_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
    }
    void TearDown() override {
        module_.reset();
        fs::remove_all(dir_);
    }
    void init(std::string mask = "all", std::size_t ring_bytes = 1 << 20, std::size_t reserve = 0) {
        InitOptions o;
        o.audit_mask = std::move(mask);
        o.ring_bytes = ring_bytes;
        o.reserve_bytes = reserve;
        auto st = Module::init(dir_.string(), o);
        ASSERT_TRUE(st) << st.error().message;
        auto pins = load_client_pins(dir_.string());
        ASSERT_TRUE(pins) << pins.error().message;
        pins_ = *pins;
        start();
    }
    void start() {
        ModuleOptions o;
        o.clock = [this] { return now_.load(); };
        auto m = Module::open(dir_.string(), o);
        ASSERT_TRUE(m) << m.error().message;
        module_ = std::move(*m);
    }
    std::uint64_t session(std::uint32_t partition, const char* role) {
        auto s = module_->open_session(partition);
        EXPECT_TRUE(s);
        auto r = parse_role(role);
        auto l = module_->login(s->handle, *r, pins_.at({role, partition}));
        EXPECT_TRUE(l) << l.error().message;
        return s->handle;
    }
    /// All record entries in the ring, decoded.
    std::vector<mac::AuditRecord> records() {
        auto reader = module_->reader();
        std::vector<ring::EntryView> v;
        EXPECT_TRUE(reader.read_after(reader.status().oldest_entry - 1, 1'000'000, v));
        std::vector<mac::AuditRecord> out;
        for (const auto& e : v) {
            if (e.entry.kind != ring::EntryKind::record) continue;
            mac::AuditRecord rec;
            mac::Mac m{};
            EXPECT_TRUE(ring::decode_record(e.entry, reader.serial(), rec, m));
            out.push_back(rec);
        }
        return out;
    }
    std::size_t count(const std::string& event, std::uint32_t result = 0) {
        std::size_t n = 0;
        for (const auto& r : records())
            if (r.event == event && r.result == result) ++n;
        return n;
    }

    fs::path dir_;
    std::atomic<std::int64_t> now_{1'795'500'000'000};
    std::map<std::pair<std::string, std::uint32_t>, std::string> pins_;
    std::unique_ptr<Module> module_;
};

TEST_F(ModuleTest, InitCreatesKeysWithSafeModesAndAuditsTheStart) {
    init();
    for (const char* f : {"audit.key", "audit.sign", "nvram.state", "module.json", "client.pins"}) {
        const auto perms = fs::status(dir_ / f).permissions();
        EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << f;
    }
    EXPECT_EQ(count("LUNA_MODULE_INIT"), 1u);
    EXPECT_EQ(count("LUNA_MODULE_START"), 2u);  // init's own start, then ours
    EXPECT_EQ(module_->boot(), 2u);
    auto again = Module::init(dir_.string(), {});
    ASSERT_FALSE(again);
}

TEST_F(ModuleTest, CryptoOperationsAreRealAndAudited) {
    init();
    const auto co = session(1, "CO");
    for (KeyAlg alg : {KeyAlg::rsa2048, KeyAlg::ec_p256, KeyAlg::ec_p384}) {
        auto k = module_->generate_key(co, alg, "test");
        ASSERT_TRUE(k) << k.error().message;
        EXPECT_GT(k->seq, 0u);
        auto sig = module_->sign(co, k->handle, "hello");
        ASSERT_TRUE(sig) << sig.error().message;
        EXPECT_TRUE(module_->verify(co, k->handle, "hello", sig->data));
        auto bad = module_->verify(co, k->handle, "hellO", sig->data);
        ASSERT_FALSE(bad);
    }
    auto rsa = module_->generate_key(co, KeyAlg::rsa3072, "rsa");
    ASSERT_TRUE(rsa);
    auto ct = module_->encrypt(co, rsa->handle, "secret");
    ASSERT_TRUE(ct);
    auto pt = module_->decrypt(co, rsa->handle, ct->data);
    ASSERT_TRUE(pt);
    EXPECT_EQ(pt->data, "secret");
    auto aes = module_->generate_key(co, KeyAlg::aes256, "kek");
    ASSERT_TRUE(aes);
    auto act = module_->encrypt(co, aes->handle, "payload");
    ASSERT_TRUE(act);
    EXPECT_EQ(module_->decrypt(co, aes->handle, act->data)->data, "payload");
    // Wrap an EC key, unwrap it, and check the copy signs what the original verifies.
    auto ec = module_->generate_key(co, KeyAlg::ec_p256, "ec");
    auto blob = module_->wrap_key(co, aes->handle, ec->handle);
    ASSERT_TRUE(blob) << blob.error().message;
    auto copy = module_->unwrap_key(co, aes->handle, blob->data, "copy");
    ASSERT_TRUE(copy) << copy.error().message;
    auto sig = module_->sign(co, copy->handle, "m");
    ASSERT_TRUE(sig);
    EXPECT_TRUE(module_->verify(co, ec->handle, "m", sig->data));
    EXPECT_TRUE(module_->destroy_object(co, ec->handle));
    EXPECT_FALSE(module_->sign(co, ec->handle, "m"));
    // A CU may use keys but not manage them.
    const auto cu = session(1, "CU");
    EXPECT_TRUE(module_->sign(cu, copy->handle, "x"));
    auto denied = module_->generate_key(cu, KeyAlg::aes256, "no");
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code, errc::not_permitted);
    EXPECT_EQ(count("LUNA_GENERATE_KEY_PAIR", 0x101), 0u);
    EXPECT_EQ(count("LUNA_GENERATE_KEY", 0x101), 1u);
    EXPECT_EQ(count("LUNA_VERIFY", 0xC0 - 0xC0 + 0x06), 3u);  // the three bad signatures: CKR_FUNCTION_FAILED
    auto st = module_->status();
    EXPECT_GT(st.counters.crypto_requests, 15u);
    EXPECT_GE(st.counters.crypto_errors, 5u);
}

TEST_F(ModuleTest, AuditClassesFilterAsConfiguredAndCriticalEventsAlwaysLog) {
    init("none");
    const auto au = session(0, "AU");
    const auto co = session(1, "CO");
    auto k = module_->generate_key(co, KeyAlg::ec_p256, "k");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->seq, 0u);  // none: not logged
    EXPECT_EQ(module_->sign(co, k->handle, "a")->seq, 0u);

    auto set = module_->set_audit_mask(au, "first");
    ASSERT_TRUE(set);
    EXPECT_GT(set->seq, 0u);  // the configuration change is critical: always logged
    auto k2 = module_->generate_key(co, KeyAlg::ec_p256, "k2");
    auto first = module_->sign(co, k2->handle, "a");
    EXPECT_GT(first->seq, 0u);
    EXPECT_EQ(module_->sign(co, k2->handle, "b")->seq, 0u);
    EXPECT_EQ(module_->sign(co, k->handle, "c")->seq, 0u);  // k was used before

    ASSERT_TRUE(module_->set_audit_mask(au, "failure,access"));
    EXPECT_EQ(module_->sign(co, k2->handle, "d")->seq, 0u);
    EXPECT_FALSE(module_->sign(co, 999, "e"));
    EXPECT_GT(module_->logout(co)->seq, 0u);

    ASSERT_TRUE(module_->set_audit_mask(au, "usage+keymanage"));
    const auto co2 = session(1, "CO");  // access is no longer logged
    EXPECT_GT(module_->sign(co2, k2->handle, "f")->seq, 0u);
    EXPECT_GT(module_->generate_key(co2, KeyAlg::aes256, "a")->seq, 0u);

    auto bad = module_->set_audit_mask(au, "usage,bogus");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("bogus"), std::string::npos);
    auto not_au = module_->set_audit_mask(co2, "all");
    ASSERT_FALSE(not_au);
    EXPECT_EQ(not_au.error().code, errc::not_permitted);

    std::map<std::string, std::string> cls;  // event -> class of the last such record
    std::size_t signs = 0;
    for (const auto& r : records()) {
        if (r.event == "LUNA_SIGN") {
            ++signs;
            cls[r.event + std::to_string(signs)] = r.event_class;
        }
    }
    EXPECT_EQ(signs, 3u);  // first use, the failure, the usage one
    EXPECT_EQ(cls["LUNA_SIGN1"], "first");
    EXPECT_EQ(cls["LUNA_SIGN2"], "failure");
    EXPECT_EQ(cls["LUNA_SIGN3"], "usage");
    EXPECT_EQ(count("LUNA_AUDIT_CONFIG"), 3u);
    EXPECT_EQ(count("LUNA_AUDIT_CONFIG", 0x07), 1u);  // the bogus mask, critical
    EXPECT_EQ(count("LUNA_LOGIN"), 0u + 0u);          // logins happened while access was off
    // The mask survives a restart.
    module_.reset();
    start();
    EXPECT_EQ(format_audit_mask(module_->audit_mask()), "keymanage,usage");
}

TEST_F(ModuleTest, BlocksAtTheReserveAuditsRefusalsAndResumesAfterAck) {
    init("all", 64 * 1024, 8 * 1024);
    const auto co = session(1, "CO");
    auto k = module_->generate_key(co, KeyAlg::ec_p256, "k");
    ASSERT_TRUE(k);
    std::size_t ok = 0;
    Result<Reply> r = Reply{};
    while ((r = module_->sign(co, k->handle, "x"))) ++ok;
    EXPECT_EQ(r.error().code, errc::log_full);
    EXPECT_GT(ok, 400u);
    auto st = module_->status();
    EXPECT_TRUE(st.blocked);
    EXPECT_GE(st.capacity - st.used_bytes, 2048u);  // the seal floor is never used by records
    // Crypto and partition creation are refused; sessions and logins proceed.
    const auto so = session(0, "SO");
    auto p = module_->create_partition(so, "new");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, errc::log_full);
    EXPECT_EQ(module_->generate_key(co, KeyAlg::aes256, "k").error().code, errc::log_full);
    const auto cu = session(1, "CU");
    EXPECT_TRUE(module_->logout(cu));
    EXPECT_TRUE(module_->close_session(cu));
    // Refusals are audited inside the reserve, until only the seal floor is left.
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(module_->sign(co, k->handle, "x"));
    st = module_->status();
    EXPECT_GT(st.counters.refused_log_full, 1000u);
    EXPECT_GT(st.counters.unlogged_events, 0u);
    EXPECT_GE(st.capacity - st.used_bytes, 2048u - 200u);
    EXPECT_GT(count("LUNA_SIGN", kCkrLogFull), 10u);
    EXPECT_EQ(count("LUNA_LOG_FULL"), 1u);
    EXPECT_EQ(count("LUNA_CREATE_PARTITION", kCkrLogFull), 1u);
    // A seal still fits.
    EXPECT_TRUE(module_->seal());
    // The agent acknowledges: the module resumes at once.
    ASSERT_TRUE(module_->ack_through(st.next_entry - 1));
    EXPECT_FALSE(module_->status().blocked);
    EXPECT_TRUE(module_->sign(co, k->handle, "x"));
    EXPECT_TRUE(module_->create_partition(so, "new"));
    EXPECT_EQ(count("LUNA_LOG_RESUME"), 1u);
}

TEST_F(ModuleTest, FailedLoginsLockTheRoleOutUntilReinitialised) {
    init();
    const auto s = module_->open_session(1)->handle;
    for (int i = 0; i < 2; ++i) EXPECT_EQ(module_->login(s, Role::co, "wrong").error().code, errc::pin_incorrect);
    EXPECT_EQ(module_->login(s, Role::co, "wrong").error().code, errc::pin_locked);
    EXPECT_EQ(module_->login(s, Role::co, pins_.at({"CO", 1})).error().code, errc::pin_locked);
    EXPECT_EQ(count("LUNA_ROLE_LOCKED"), 1u);
    EXPECT_EQ(count("LUNA_LOGIN", 0xA0), 3u);
    EXPECT_EQ(count("LUNA_LOGIN", 0xA4), 1u);
    // The lock-out survives a restart; the partition SO clears it.
    module_.reset();
    start();
    const auto s2 = module_->open_session(1)->handle;
    EXPECT_EQ(module_->login(s2, Role::co, pins_.at({"CO", 1})).error().code, errc::pin_locked);
    const auto pso = session(1, "PSO");
    ASSERT_TRUE(module_->init_role(pso, Role::co, "newpin1"));
    EXPECT_TRUE(module_->login(s2, Role::co, "newpin1"));
}

TEST_F(ModuleTest, PartitionsAreCreatedInitialisedAndIsolated) {
    init();
    const auto so = session(0, "SO");
    auto p = module_->create_partition(so, "payments");
    ASSERT_TRUE(p);
    ASSERT_TRUE(module_->init_partition(so, static_cast<std::uint32_t>(p->handle), "payments", "psopin1"));
    const auto pso = module_->open_session(static_cast<std::uint32_t>(p->handle))->handle;
    ASSERT_TRUE(module_->login(pso, Role::pso, "psopin1"));
    ASSERT_TRUE(module_->init_role(pso, Role::co, "copin12"));
    const auto co = module_->open_session(static_cast<std::uint32_t>(p->handle))->handle;
    ASSERT_TRUE(module_->login(co, Role::co, "copin12"));
    auto k = module_->generate_key(co, KeyAlg::aes256, "k");
    ASSERT_TRUE(k);
    const auto co1 = session(1, "CO");
    EXPECT_EQ(module_->encrypt(co1, k->handle, "x").error().code, errc::not_found);  // another partition's key
    auto list = module_->list_partitions();
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[2].label, "payments");
    EXPECT_EQ(list[2].keys, 1u);
    EXPECT_FALSE(module_->create_partition(co1, "x"));  // only the SO
}

TEST_F(ModuleTest, ClockOffsetAndDriftShowInRecords) {
    init();
    const auto so = session(0, "SO");
    ASSERT_TRUE(module_->set_clock(so, -60'000, 0));
    const auto co = session(1, "CO");
    const auto recs = records();
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.back().time_ms, now_.load() - 60'000);
    ASSERT_TRUE(module_->set_clock(so, 0, 1000));  // +1000 ppm
    now_ += 1'000'000;
    EXPECT_EQ(module_->now_ms(), now_.load() + 1000);
    (void)co;
}

TEST_F(ModuleTest, RestartsIncrementBootAndTheChainVerifiesAcrossThem) {
    init();
    for (int boot = 0; boot < 3; ++boot) {
        const auto co = session(1, "CO");
        auto k = module_->generate_key(co, KeyAlg::ec_p256, "k");
        for (int i = 0; i < 20; ++i) ASSERT_TRUE(module_->sign(co, k->handle, "m"));
        if (boot == 1) {
            ASSERT_TRUE(module_->seal());
        }
        module_.reset();
        start();
    }
    EXPECT_EQ(module_->boot(), 5u);
    ASSERT_TRUE(module_->seal());
    // Write the ring out as segment files and verify them with the real verifier.
    auto reader = module_->reader();
    std::vector<ring::EntryView> v;
    ASSERT_TRUE(reader.read_after(0, 1'000'000, v));
    const fs::path out = dir_ / "out";
    fs::create_directories(out);
    std::ofstream f;
    std::vector<std::string> files;
    std::set<std::uint32_t> boots;
    for (const auto& e : v) {
        std::string line;
        ASSERT_TRUE(ring::render_entry_line(e.entry, reader.serial(), line));
        if (e.entry.kind == ring::EntryKind::open) {
            auto o = mac::parse_open_line(std::string_view(line).substr(0, line.size() - 1));
            ASSERT_TRUE(o);
            f.close();
            files.push_back((out / mac::segment_file_name(reader.serial(), o->epoch)).string());
            f.open(files.back(), std::ios::binary);
        }
        if (e.entry.kind == ring::EntryKind::record) {
            mac::AuditRecord r;
            mac::Mac m{};
            ASSERT_TRUE(ring::decode_record(e.entry, reader.serial(), r, m));
            boots.insert(r.boot);
        }
        f << line;
    }
    f.close();
    EXPECT_EQ(files.size(), 3u);
    EXPECT_EQ(boots.size(), 5u);
    auto key = mac::load_audit_key((dir_ / "audit.key").string());
    ASSERT_TRUE(key);
    mac::VerifyOptions opt;
    opt.key = *key;
    auto rep = mac::verify_paths(files, opt);
    ASSERT_TRUE(rep);
    EXPECT_EQ(rep->faults_total, 0u) << (rep->faults.empty() ? "" : rep->faults[0].message);
    EXPECT_EQ(rep->segments.size(), 3u);
}

}  // namespace
}  // namespace hsmaudit::hsmcore::module
