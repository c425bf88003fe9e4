// Signed notes and checkpoints: Go's own note test vectors (the PeterNeumann key), round trips,
// and the malformed and tampered notes Go's note.Open refuses.
#include "mac/note.h"

#include <gtest/gtest.h>

#include <string>

namespace hsmaudit::mac {
namespace {

// golang.org/x/mod/sumdb/note note_test.go: skey "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK..." as PKCS#8.
constexpr std::string_view kPeterPem =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n-----END PRIVATE "
    "KEY-----\n";
constexpr std::string_view kPeterVkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kText =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
constexpr std::string_view kSigned =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
    "\xe2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

TEST(Base64, RoundTripAndStrict) {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        auto d = base64_decode(base64_encode(as_bytes(s)));
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(*d, s);
    }
    EXPECT_EQ(base64_encode(as_bytes(std::string_view("foobar"))), "Zm9vYmFy");
    for (std::string_view bad : {"Zg", "Zh==", "Zm9v\n", "Zm 9v", "=Zm9", "Zm9v====", "Z===", "Zm9*"}) {
        EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
    }
}

TEST(Note, GoVectors) {
    auto key = Ed25519PrivateKey::from_pem(kPeterPem);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(note::key_hash("PeterNeumann", key->public_key()), 0xc74f20a3U);
    EXPECT_EQ(*note::verifier_key("PeterNeumann", key->public_key()), kPeterVkey);
    auto signed_note = note::sign(kText, "PeterNeumann", *key);
    ASSERT_TRUE(signed_note.has_value());
    EXPECT_EQ(*signed_note, kSigned);
    auto v = note::parse_verifier_key(kPeterVkey);
    ASSERT_TRUE(v.has_value()) << v.error().message;
    auto text = note::open(kSigned, *v);
    ASSERT_TRUE(text.has_value()) << text.error().message;
    EXPECT_EQ(*text, kText);
    // Go's badKey cases: a wrong-length key and an unknown algorithm, each with a matching hash.
    EXPECT_FALSE(note::parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
                     .has_value());
    EXPECT_FALSE(
        note::parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").has_value());
    std::string vk(kPeterVkey);
    for (std::size_t i = 0; i < vk.size(); ++i) {
        std::string b = vk;
        b[i] = static_cast<char>(b[i] ^ 1);
        EXPECT_FALSE(note::parse_verifier_key(b).has_value()) << b;
    }
}

TEST(Note, OpenRefusesWhatGoRefuses) {
    auto v = *note::parse_verifier_key(kPeterVkey);
    const std::string good(kSigned);
    // Every 1-bit change anywhere in the message is refused.
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string b = good;
            b[i] = static_cast<char>(static_cast<unsigned char>(b[i]) ^ (1U << bit));
            EXPECT_FALSE(note::open(b, v).has_value()) << i << ":" << bit;
        }
    }
    const std::string sig = good.substr(kText.size() + 1);
    for (const std::string& bad :
         {std::string(kText), std::string(kText) + "\n", std::string(kText) + "\n" + sig.substr(0, sig.size() - 1),
          std::string(kText) + "\n" + sig + "\n", "\t" + good, std::string(kText) + "\n- PeterNeumann x\n"}) {
        EXPECT_FALSE(note::open(bad, v).has_value()) << bad;
    }
    // Another key's signature is ignored; ours still counts; without ours the note is unverified.
    const std::string other = "\xe2\x80\x94 CarmenSandiego AAAAAAAAAAA=\n";
    EXPECT_TRUE(note::open(good + other, v).has_value());
    EXPECT_FALSE(note::open(std::string(kText) + "\n" + other, v).has_value());
    EXPECT_FALSE(note::valid_name("a b"));
    EXPECT_FALSE(note::valid_name("a+b"));
    EXPECT_FALSE(
        note::valid_name("a\xc2\xa0"
                         "b"));
    EXPECT_FALSE(note::valid_name(""));
    EXPECT_TRUE(note::valid_name("hsmaudit/0123abcd"));
}

TEST(Checkpoint, SignOpenAndTamper) {
    auto key = *Ed25519PrivateKey::generate();
    TreeHead h;
    h.origin = "hsmaudit/00112233445566778899aabbccddeeff";
    h.size = 1000000;
    h.root = tlog::leaf_hash("x");
    h.extensions = {"hsmaudit-head 3 0a0b 1700000000000"};
    auto msg = sign_checkpoint(h, key);
    ASSERT_TRUE(msg.has_value());
    auto v = *note::parse_verifier_key(*note::verifier_key(h.origin, key.public_key()));
    auto back = open_checkpoint(*msg, v);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(*back, h);
    EXPECT_EQ(msg->substr(0, h.origin.size() + 9), h.origin + "\n1000000\n");
    for (std::size_t i = 0; i < msg->size(); ++i) {
        std::string b = *msg;
        b[i] = static_cast<char>(b[i] ^ 0x02);
        EXPECT_FALSE(open_checkpoint(b, v).has_value()) << i;
    }
    for (std::string_view bad :
         {"o\n01\nAAAA\n", "o\n1\n", "o\n1\nAAAA\n", "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
          "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
          "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}) {
        EXPECT_FALSE(parse_checkpoint(bad).has_value()) << bad;
    }
    EXPECT_TRUE(parse_checkpoint("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").has_value());
    h.extensions = {""};
    EXPECT_FALSE(render_checkpoint(h).has_value());
    h.extensions.clear();
    h.origin = "has space";
    EXPECT_FALSE(render_checkpoint(h).has_value());
}

}  // namespace
}  // namespace hsmaudit::mac
