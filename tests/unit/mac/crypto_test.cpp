// HmacSha256 (precomputed pad states over OpenSSL's SHA-256) against OpenSSL's own EVP_MAC
// "HMAC" and the RFC 4231 test vectors: every key length class (empty, short, one block, longer
// than a block: hashed first), messages across block boundaries, split a || b at every point,
// re-keying, and a moved object.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mac/crypto.h"

namespace hsmaudit::mac {
namespace {

Bytes32 evp_hmac(ByteView key, ByteView msg) {
    Bytes32 out{};
    std::size_t len = out.size();
    char digest[] = "SHA256";
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    EXPECT_NE(mac, nullptr);
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    // EVP_MAC_init refuses a null key pointer even with length 0.
    static const std::uint8_t kNone = 0;
    EXPECT_EQ(EVP_MAC_init(ctx, key.empty() ? &kNone : key.data(), key.size(), params), 1);
    EXPECT_EQ(EVP_MAC_update(ctx, msg.data(), msg.size()), 1);
    EXPECT_EQ(EVP_MAC_final(ctx, out.data(), &len, out.size()), 1);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return out;
}

std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 131 + std::size_t{seed} * 17 + 7) & 0xFF);
    return v;
}

TEST(HmacSha256, MatchesEvpMacForEveryKeyAndMessageLength) {
    for (std::size_t key_len : {0, 1, 31, 32, 33, 63, 64, 65, 100, 131}) {
        const auto key = pattern(key_len, 1);
        auto h = HmacSha256::create(key);
        ASSERT_TRUE(h);
        for (std::size_t msg_len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 224, 256, 1000}) {
            const auto msg = pattern(msg_len, 2);
            const Bytes32 want = evp_hmac(key, msg);
            EXPECT_EQ(h->compute(msg), want) << "key " << key_len << " msg " << msg_len;
            // a || b is one message, wherever it is split.
            for (std::size_t cut : {std::size_t{0}, msg_len / 3, msg_len}) {
                const ByteView all(msg);
                EXPECT_EQ(h->compute(all.first(cut), all.subspan(cut)), want)
                    << key_len << "/" << msg_len << "@" << cut;
            }
        }
    }
}

TEST(HmacSha256, Rfc4231Vectors) {
    // Test cases 1, 2 and 6 (key longer than a block), HMAC-SHA-256.
    struct Case {
        std::vector<std::uint8_t> key;
        std::string data;
        const char* mac;
    };
    const std::vector<Case> cases = {
        {std::vector<std::uint8_t>(20, 0x0b), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {std::vector<std::uint8_t>{'J', 'e', 'f', 'e'}, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {std::vector<std::uint8_t>(131, 0xaa), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (const auto& c : cases) {
        auto h = HmacSha256::create(c.key);
        ASSERT_TRUE(h);
        EXPECT_EQ(hex_encode(h->compute(as_bytes(c.data))), c.mac);
        auto once = hmac_sha256(c.key, as_bytes(c.data));
        ASSERT_TRUE(once);
        EXPECT_EQ(hex_encode(*once), c.mac);
    }
}

TEST(HmacSha256, RekeyReplacesTheKeyAndMovesKeepIt) {
    const auto k1 = pattern(32, 3);
    const auto k2 = pattern(32, 4);
    const auto msg = pattern(200, 5);
    auto h = HmacSha256::create(k1);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->compute(msg), evp_hmac(k1, msg));
    ASSERT_TRUE(h->rekey(k2));
    EXPECT_EQ(h->compute(msg), evp_hmac(k2, msg));
    EXPECT_EQ(h->compute(msg), evp_hmac(k2, msg));  // the pad states are not consumed by a MAC
    HmacSha256 moved = std::move(*h);
    EXPECT_EQ(moved.compute(msg), evp_hmac(k2, msg));
}

TEST(Sha256, KnownAnswersAndSplitInput) {
    auto sha = Sha256::create();
    ASSERT_TRUE(sha);
    EXPECT_EQ(hex_encode(sha->compute(as_bytes("abc"))),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex_encode(sha->compute(as_bytes("ab"), as_bytes("c"))),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex_encode(sha->compute(as_bytes(""))),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex_encode(sha->compute(as_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// hex_decode decodes eight digits at a time: every byte value at every position of a 64-digit
// MAC (and of lengths that leave a tail) is accepted exactly when it is a lowercase hex digit.
TEST(HexDecode, EveryByteAtEveryPosition) {
    auto ref_value = [](int c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (std::size_t bytes : {std::size_t{32}, std::size_t{4}, std::size_t{5}, std::size_t{7}, std::size_t{1}}) {
        const auto raw = pattern(bytes, 9);
        const std::string good = hex_encode(raw);
        std::vector<std::uint8_t> out(bytes);
        ASSERT_TRUE(hex_decode(good, out));
        EXPECT_EQ(out, raw);
        for (std::size_t pos = 0; pos < good.size(); ++pos) {
            for (int c = 0; c < 256; ++c) {
                std::string h = good;
                h[pos] = static_cast<char>(c);
                const int v = ref_value(c);
                const bool ok = hex_decode(h, out);
                ASSERT_EQ(ok, v >= 0) << "byte " << c << " at " << pos << " of " << good.size();
                if (ok) {
                    const int shift = pos % 2 == 0 ? 4 : 0;
                    EXPECT_EQ((out[pos / 2] >> shift) & 0xF, v);
                }
            }
        }
    }
    std::vector<std::uint8_t> out(32);
    EXPECT_FALSE(hex_decode(std::string(63, 'a'), out));  // length
    EXPECT_FALSE(hex_decode(std::string(64, 'A'), out));  // uppercase
}

}  // namespace
}  // namespace hsmaudit::mac
