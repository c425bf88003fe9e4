// The writer's side of the chain: MACs recomputed independently from docs/FORMAT.md, epoch key
// evolution and erasure, resume from a persisted head, and argument/state errors.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "mac/chain_writer.h"
#include "mac/errc.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

AuditRecord make_record(std::int64_t t) {
    AuditRecord r;
    r.time_ms = t;
    r.partition = 1;
    r.role = "CO";
    r.session = 5;
    r.event = "LUNA_SIGN";
    r.event_class = "usage";
    r.details = {{"key", "101"}};
    return r;
}

bool contains_bytes(const void* hay, std::size_t hay_len, const Bytes32& needle) {
    const auto* h = static_cast<const std::uint8_t*>(hay);
    for (std::size_t i = 0; i + needle.size() <= hay_len; ++i)
        if (std::memcmp(h + i, needle.data(), needle.size()) == 0) return true;
    return false;
}

std::string strip_lf(const std::string& s) {
    return s.substr(0, s.size() - 1);
}

TEST(ChainWriter, MacsFollowTheDocumentedConstruction) {
    const NewChainKeys keys = make_keys();
    auto w = ChainWriter::create(keys.key.chain(), "150123", 4, keys.signer, genesis_head(keys.key));
    ASSERT_TRUE(w.has_value()) << w.error().message;
    const Bytes32 k0 = epoch0_key(keys.key.secret(), keys.key.chain());
    EXPECT_EQ(w->head().epoch_key, k0);

    // K_0 = HMAC(secret, "hsmaudit/v1/epoch-key" || chain id), computed here independently.
    std::string label = "hsmaudit/v1/epoch-key";
    label.append(reinterpret_cast<const char*>(keys.key.chain().data()), keys.key.chain().size());
    EXPECT_EQ(*hmac_sha256(keys.key.secret(), as_bytes(label)), k0);

    auto open = w->open_segment(1'795'500'000'000);
    ASSERT_TRUE(open.has_value());
    auto po = parse_open_line(strip_lf(*open));
    ASSERT_TRUE(po.has_value()) << po.error().message;
    EXPECT_EQ(po->prev, Mac{});  // genesis: 32 zero bytes
    EXPECT_EQ(po->boot, 4u);
    EXPECT_EQ(po->first_seq, 1u);
    EXPECT_EQ(*hmac_sha256(k0, as_bytes(po->body()), po->prev), po->mac);

    std::string out;
    AuditRecord rec = make_record(1'795'500'000'001);
    auto m1 = w->append(rec, out);
    ASSERT_TRUE(m1.has_value());
    EXPECT_EQ(rec.seq, 1u);
    EXPECT_EQ(rec.serial, "150123");
    EXPECT_EQ(rec.boot, 4u);
    const std::string line1 = strip_lf(out);  // split_record_line() returns views into it
    auto v1 = split_record_line(line1);
    ASSERT_TRUE(v1.has_value());
    EXPECT_EQ(v1->mac, *m1);
    EXPECT_EQ(*hmac_sha256(k0, as_bytes(v1->body), Mac{}), *m1);  // MAC_1 = HMAC(K_0, body_1 || 0^32)
    auto parsed = parse_record_body(v1->body);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, rec);

    std::string out2;
    AuditRecord rec2 = make_record(1'795'500'000'002);
    auto m2 = w->append(rec2, out2);
    ASSERT_TRUE(m2.has_value());
    const std::string line2 = strip_lf(out2);
    auto v2 = split_record_line(line2);
    ASSERT_TRUE(v2.has_value());
    EXPECT_EQ(*hmac_sha256(k0, as_bytes(v2->body), *m1), *m2);  // chained on MAC_1

    auto seal = w->seal(1'795'500'000'003);
    ASSERT_TRUE(seal.has_value());
    const std::string seal_text = strip_lf(*seal);
    auto ps = parse_seal_line(seal_text);
    ASSERT_TRUE(ps.has_value()) << ps.error().message;
    EXPECT_EQ(ps->seal.records, 2u);
    EXPECT_EQ(ps->seal.first_seq, 1u);
    EXPECT_EQ(ps->seal.last_seq, 2u);
    EXPECT_EQ(ps->seal.final_mac, *m2);
    EXPECT_EQ(*hmac_sha256(k0, as_bytes(ps->mac_body), ps->seal.final_mac), ps->seal.mac);
    EXPECT_TRUE(keys.key.pubkey().verify(as_bytes(ps->signed_body), ps->seal.sig));
    // Digest chain over the open line and the record lines, each with its LF.
    auto sha = Sha256::create();
    ASSERT_TRUE(sha.has_value());
    Bytes32 d = sha->compute(as_bytes("hsmaudit/v1/segment"), as_bytes(*open));
    d = sha->compute(d, as_bytes(out));
    d = sha->compute(d, as_bytes(out2));
    EXPECT_EQ(ps->seal.digest, d);
}

TEST(ChainWriter, EpochKeyEvolvesOneWayAndTheOldKeyLeavesTheHead) {
    const NewChainKeys keys = make_keys();
    auto w = ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, genesis_head(keys.key));
    ASSERT_TRUE(w.has_value());
    EpochKeyDeriver deriver(keys.key);
    std::string out;
    for (std::uint64_t e = 0; e < 5; ++e) {
        EXPECT_EQ(w->head().epoch, e);
        const Bytes32 before = w->head().epoch_key;
        EXPECT_EQ(before, deriver.key_for(e));
        ASSERT_TRUE(w->open_segment(1000 + static_cast<std::int64_t>(e)).has_value());
        AuditRecord rec = make_record(2000);
        ASSERT_TRUE(w->append(rec, out).has_value());
        ASSERT_TRUE(w->seal(3000).has_value());
        const ChainHead& head = w->head();
        EXPECT_EQ(head.epoch, e + 1);
        // K_{e+1} = HMAC(K_e, "hsmaudit/v1/evolve" || u64be(e+1)).
        std::string label = "hsmaudit/v1/evolve";
        for (int shift = 56; shift >= 0; shift -= 8) label += static_cast<char>(((e + 1) >> shift) & 0xFF);
        EXPECT_EQ(head.epoch_key, *hmac_sha256(before, as_bytes(label)));
        EXPECT_EQ(head.epoch_key, next_epoch_key(before, e + 1));
        // The persisted state holds no copy of the erased key.
        EXPECT_FALSE(contains_bytes(&head, sizeof head, before)) << "epoch " << e;
        EXPECT_NE(head.epoch_key, before);
    }
    // The deriver goes back to K_0 when asked for an earlier epoch.
    EXPECT_EQ(deriver.key_for(0), epoch0_key(keys.key.secret(), keys.key.chain()));
    EXPECT_EQ(deriver.key_for(5), w->head().epoch_key);
}

TEST(ChainWriter, ResumesFromAPersistedHead) {
    const NewChainKeys keys = make_keys();
    const TempDir dir;
    std::string seg0, seg1;
    ChainHead saved;
    {
        auto w = ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, genesis_head(keys.key));
        ASSERT_TRUE(w.has_value());
        seg0 = *w->open_segment(1000);
        for (int i = 0; i < 3; ++i) {
            AuditRecord rec = make_record(1000 + i);
            ASSERT_TRUE(w->append(rec, seg0).has_value());
        }
        saved = w->head();  // power loss mid-segment: the head is what survives
    }
    auto w = ChainWriter::create(keys.key.chain(), "150123", 2, keys.signer, saved);
    ASSERT_TRUE(w.has_value());
    for (int i = 0; i < 2; ++i) {
        AuditRecord rec = make_record(2000 + i);
        ASSERT_TRUE(w->append(rec, seg0).has_value());
    }
    seg0 += *w->seal(3000);
    seg1 = *w->open_segment(4000);
    AuditRecord rec = make_record(4001);
    ASSERT_TRUE(w->append(rec, seg1).has_value());
    EXPECT_EQ(rec.seq, 6u);
    write_all(dir.sub("a.log"), seg0);
    write_all(dir.sub("b.log"), seg1);
    const VerifyReport r = verify_ok({dir.path()}, key_options(keys));
    EXPECT_TRUE(r.verified()) << describe(r);
    EXPECT_EQ(r.records, 6u);
    EXPECT_EQ(r.open_segments, 1u);
}

TEST(ChainWriter, EmptySegmentSealsAndVerifies) {
    const NewChainKeys keys = make_keys();
    const TempDir dir;
    auto w = ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, genesis_head(keys.key));
    ASSERT_TRUE(w.has_value());
    std::string seg0 = *w->open_segment(1000);
    auto seal = w->seal(1001);
    ASSERT_TRUE(seal.has_value());
    auto ps = parse_seal_line(strip_lf(*seal));
    ASSERT_TRUE(ps.has_value());
    EXPECT_EQ(ps->seal.records, 0u);
    EXPECT_EQ(ps->seal.first_seq, 1u);
    EXPECT_EQ(ps->seal.last_seq, 0u);
    seg0 += *seal;
    std::string seg1 = *w->open_segment(1002);
    AuditRecord rec = make_record(1003);
    ASSERT_TRUE(w->append(rec, seg1).has_value());
    seg1 += *w->seal(1004);
    write_all(dir.sub(segment_file_name("150123", 0)), seg0);
    write_all(dir.sub(segment_file_name("150123", 1)), seg1);
    for (const auto& opt : {key_options(keys), pub_options(keys)}) {
        const VerifyReport r = verify_ok({dir.path()}, opt);
        EXPECT_TRUE(r.verified()) << describe(r);
        EXPECT_EQ(r.records, 1u);
        EXPECT_EQ(r.sealed_segments, 2u);
    }
}

TEST(ChainWriter, StateAndArgumentErrors) {
    const NewChainKeys keys = make_keys();
    const NewChainKeys other = make_keys();
    auto bad_serial = ChainWriter::create(keys.key.chain(), "has space", 1, keys.signer, genesis_head(keys.key));
    ASSERT_FALSE(bad_serial.has_value());
    EXPECT_EQ(bad_serial.error().code, errc::invalid_argument);
    EXPECT_FALSE(ChainWriter::create(keys.key.chain(), "", 1, keys.signer, genesis_head(keys.key)).has_value());
    EXPECT_FALSE(ChainWriter::create(keys.key.chain(), std::string(33, 'a'), 1, keys.signer, genesis_head(keys.key))
                     .has_value());
    auto foreign = ChainWriter::create(keys.key.chain(), "150123", 1, other.signer, genesis_head(keys.key));
    ASSERT_FALSE(foreign.has_value());
    EXPECT_EQ(foreign.error().code, errc::bad_key);

    auto w = ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, genesis_head(keys.key));
    ASSERT_TRUE(w.has_value());
    std::string out;
    AuditRecord rec = make_record(1);
    auto early = w->append(rec, out);
    ASSERT_FALSE(early.has_value());
    EXPECT_EQ(early.error().code, errc::invalid_state);
    auto seal = w->seal(1);
    ASSERT_FALSE(seal.has_value());
    EXPECT_EQ(seal.error().code, errc::invalid_state);
    ASSERT_TRUE(w->open_segment(1).has_value());
    auto twice = w->open_segment(1);
    ASSERT_FALSE(twice.has_value());
    EXPECT_EQ(twice.error().code, errc::invalid_state);

    // A record that would exceed the line limit is refused, and nothing is written.
    AuditRecord huge = make_record(2);
    huge.details.push_back({"blob", std::string(kMaxLineBytes, 'x')});
    auto too_long = w->append(huge, out);
    ASSERT_FALSE(too_long.has_value());
    EXPECT_EQ(too_long.error().code, errc::invalid_argument);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(w->head().next_seq, 1u);

    // Detail keys must parse back: no '=', no uppercase, no empty key.
    for (const char* key : {"", "Key", "a=b", "9lives", "has space", "abcdefghijklmnopqrstuvwxyz0123456"}) {
        AuditRecord r = make_record(3);
        r.details = {{key, "v"}};
        auto res = w->append(r, out);
        ASSERT_FALSE(res.has_value()) << "accepted detail key '" << key << "'";
        EXPECT_EQ(res.error().code, errc::invalid_argument);
    }
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(w->head().next_seq, 1u);
}

TEST(SegmentFileName, TheEpochReadsBackFromTheNameAndOtherNamesAreRefused) {
    for (std::uint64_t epoch : {0ULL, 1ULL, 0xabcdefULL, 0xffffffffULL, 0x1234567890ULL})
        EXPECT_EQ(segment_file_epoch(segment_file_name("150123", epoch)), epoch);
    for (const char* bad : {"hsm_150123_.log", "hsm_150123_0000000G.log", "hsm_150123_00000001.txt",
                            "spool-0000000000000001.log", "hsm_150123_00000000000000001.log", "hsm__x.log"})
        EXPECT_FALSE(segment_file_epoch(bad).has_value()) << bad;
}

}  // namespace
}  // namespace hsmaudit::mac
