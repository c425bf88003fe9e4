// Key files (modes, refusal of group/world-readable secrets, parsing) and the wrapped secret
// (round trip, wrong passphrase, tampering, absurd KDF parameters).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "base/errc.h"
#include "base/files.h"
#include "mac/errc.h"
#include "mac/keys.h"
#include "mac/wrap.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

unsigned mode_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return static_cast<unsigned>(st.st_mode & 07777);
}

// Small scrypt cost for tests: the format and code path are the same as with the default.
constexpr WrapParams kFastParams{1ULL << 10, 8, 1};
constexpr std::string_view kPass = "correct horse battery staple";

TEST(KeyFiles, WrittenWithSecretModesAndLoadedBack) {
    const TempDir dir;
    const NewChainKeys keys = make_keys();
    const std::string d = dir.sub("keys");
    ASSERT_TRUE(write_key_dir(d, keys).has_value());
    EXPECT_EQ(mode_of(d + "/audit.key"), 0600u);
    EXPECT_EQ(mode_of(d + "/audit.sign"), 0600u);
    EXPECT_EQ(mode_of(d + "/audit.pub"), 0644u);

    auto key = load_audit_key(d + "/audit.key");
    ASSERT_TRUE(key.has_value()) << key.error().message;
    EXPECT_EQ(key->chain(), keys.key.chain());
    EXPECT_EQ(key->secret(), keys.key.secret());
    EXPECT_EQ(key->pubkey().raw(), keys.key.pubkey().raw());
    auto pub = load_audit_pub(d + "/audit.pub");
    ASSERT_TRUE(pub.has_value()) << pub.error().message;
    EXPECT_EQ(pub->chain, keys.key.chain());
    auto signer = load_signing_key(d + "/audit.sign");
    ASSERT_TRUE(signer.has_value()) << signer.error().message;
    EXPECT_EQ(signer->public_key().raw(), keys.key.pubkey().raw());
    // The public file holds no secret.
    EXPECT_EQ(read_all(d + "/audit.pub").find(hex_encode(keys.key.secret())), std::string::npos);

    // Never overwritten.
    auto again = write_key_dir(d, make_keys());
    ASSERT_FALSE(again.has_value());
    EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
    EXPECT_EQ(load_audit_key(d + "/audit.key")->secret(), keys.key.secret());
}

TEST(KeyFiles, GroupOrWorldAccessibleSecretsAreRefusedByName) {
    const TempDir dir;
    const NewChainKeys keys = make_keys();
    const std::string d = dir.sub("keys");
    ASSERT_TRUE(write_key_dir(d, keys).has_value());
    const std::string pass = dir.sub("pass");
    write_all(pass, std::string(kPass) + "\n");
    for (unsigned mode : {0640u, 0604u, 0660u, 0644u, 0610u}) {
        for (const std::string& path : {d + "/audit.key", d + "/audit.sign", pass}) {
            ASSERT_EQ(::chmod(path.c_str(), mode), 0);
            Error err;
            if (path == pass) {
                auto r = read_passphrase_file(path);
                ASSERT_FALSE(r.has_value()) << path << " mode " << std::oct << mode;
                err = r.error();
            } else if (path.ends_with("audit.key")) {
                auto r = load_audit_key(path);
                ASSERT_FALSE(r.has_value()) << path << " mode " << std::oct << mode;
                err = r.error();
            } else {
                auto r = load_signing_key(path);
                ASSERT_FALSE(r.has_value()) << path << " mode " << std::oct << mode;
                err = r.error();
            }
            EXPECT_EQ(err.code, base::errc::insecure_file);
            EXPECT_NE(err.message.find(path), std::string::npos) << err.message;
            ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
        }
    }
    EXPECT_TRUE(load_audit_key(d + "/audit.key").has_value());
    EXPECT_TRUE(read_passphrase_file(pass).has_value());
    // audit.pub is public: readable by all is fine.
    ASSERT_EQ(::chmod((d + "/audit.pub").c_str(), 0644), 0);
    EXPECT_TRUE(load_audit_pub(d + "/audit.pub").has_value());
}

TEST(KeyFiles, ParsingIsStrict) {
    const NewChainKeys keys = make_keys();
    const std::string good = keys.key.serialize();
    ASSERT_TRUE(AuditKey::parse(good).has_value());
    auto replace = [&](std::string text, const std::string& from, const std::string& to) {
        const auto pos = text.find(from);
        EXPECT_NE(pos, std::string::npos) << from;
        if (pos != std::string::npos) text.replace(pos, from.size(), to);
        return text;
    };
    const NewChainKeys other = make_keys();
    const std::vector<std::string> bad = {
        "",
        replace(good, "format: hsmaudit-audit-key/1", "format: hsmaudit-audit-key/2"),
        replace(good, "\nchain: ", "\nchain: 00"),
        // A chain id that does not belong to the public key.
        replace(good, hex_encode(keys.key.chain()), hex_encode(other.key.chain())),
        replace(good, "\nsecret: ", "\nsecret: x"),
        good + "extra: 1\n",
        good + "secret: " + std::string(64, '0') + "\n",
        replace(good, "\npubkey: ", "\npubkey:"),
    };
    for (const auto& text : bad) {
        auto r = AuditKey::parse(text);
        EXPECT_FALSE(r.has_value()) << text;
        if (!r) {
            EXPECT_EQ(r.error().code, errc::bad_key);
        }
    }
    const std::string pub = keys.key.pub().serialize();
    ASSERT_TRUE(AuditPub::parse(pub).has_value());
    EXPECT_FALSE(AuditPub::parse(good).has_value()) << "a key file is not a pub file";
    EXPECT_FALSE(AuditKey::parse(pub).has_value()) << "a pub file is not a key file";
    EXPECT_FALSE(AuditPub::parse(replace(pub, hex_encode(keys.key.chain()), hex_encode(other.key.chain()))));
}

TEST(Wrap, RoundTrip) {
    const NewChainKeys keys = make_keys();
    auto blob = wrap_audit_key(keys.key, kPass, kFastParams);
    ASSERT_TRUE(blob.has_value()) << blob.error().message;
    EXPECT_EQ(blob->find(hex_encode(keys.key.secret())), std::string::npos) << "the secret is in clear";
    EXPECT_NE(blob->find("n: 1024\n"), std::string::npos);
    auto key = unwrap_audit_key(*blob, kPass);
    ASSERT_TRUE(key.has_value()) << key.error().message;
    EXPECT_EQ(key->secret(), keys.key.secret());
    EXPECT_EQ(key->chain(), keys.key.chain());
    EXPECT_EQ(key->pubkey().raw(), keys.key.pubkey().raw());
    // Fresh salt and nonce each time.
    auto blob2 = wrap_audit_key(keys.key, kPass, kFastParams);
    ASSERT_TRUE(blob2.has_value());
    EXPECT_NE(*blob, *blob2);
}

TEST(Wrap, WrongPassphrase) {
    const NewChainKeys keys = make_keys();
    auto blob = wrap_audit_key(keys.key, kPass, kFastParams);
    ASSERT_TRUE(blob.has_value());
    for (std::string_view wrong : {"correct horse battery stapler", "Correct horse battery staple", "", "x"}) {
        auto r = unwrap_audit_key(*blob, wrong);
        ASSERT_FALSE(r.has_value()) << wrong;
        EXPECT_EQ(r.error().code, errc::bad_passphrase);
        EXPECT_NE(r.error().message.find("wrong passphrase"), std::string::npos) << r.error().message;
    }
}

TEST(Wrap, TamperedHeaderOrCiphertextIsRefused) {
    const NewChainKeys keys = make_keys();
    auto made = wrap_audit_key(keys.key, kPass, kFastParams);
    ASSERT_TRUE(made.has_value());
    const std::string blob = *made;
    // Every hex digit of salt, nonce, ciphertext and tag, changed one at a time.
    std::size_t tried = 0;
    for (const std::string field : {"salt: ", "nonce: ", "ciphertext: ", "tag: "}) {
        const std::size_t start = blob.find("\n" + field) + 1 + field.size();
        const std::size_t end = blob.find('\n', start);
        for (std::size_t i = start; i < end; i += (field == "ciphertext: " ? 7 : 1)) {
            std::string t = blob;
            t[i] = t[i] == '0' ? '1' : '0';
            auto r = unwrap_audit_key(t, kPass);
            ASSERT_FALSE(r.has_value()) << field << " offset " << i - start;
            EXPECT_EQ(r.error().code, errc::bad_passphrase);
            ++tried;
        }
    }
    EXPECT_GT(tried, 100u);
    // Authenticated KDF parameters: a different (valid) r changes the header.
    std::string r_changed = blob;
    r_changed.replace(r_changed.find("\nr: 8\n"), 6, "\nr: 9\n");
    auto r = unwrap_audit_key(r_changed, kPass);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::bad_passphrase);
    // Structure: reordered, missing, duplicated, unknown fields.
    std::string reordered = blob;
    const auto kdf = reordered.find("kdf: scrypt\n");
    reordered.erase(kdf, 12);
    reordered.insert(reordered.find("cipher: "), "kdf: scrypt\n");
    const std::vector<std::string> malformed = {
        reordered,
        std::string(blob).erase(blob.find("tag: ")),
        blob + "tag: " + std::string(32, '0') + "\n",
        blob + "extra: 1\n",
        std::string(blob).replace(blob.find("hsmaudit-wrapped-key/1"), 22, "hsmaudit-wrapped-key/2"),
        std::string(blob).replace(blob.find("aes-256-gcm"), 11, "aes-128-gcm"),
        "",
        "garbage",
    };
    for (const auto& m : malformed) {
        auto res = unwrap_audit_key(m, kPass);
        ASSERT_FALSE(res.has_value()) << m;
        EXPECT_EQ(res.error().code, errc::bad_format) << res.error().message;
    }
}

TEST(Wrap, AbsurdKdfParametersAreRefusedBeforeAnyWork) {
    const NewChainKeys keys = make_keys();
    auto made = wrap_audit_key(keys.key, kPass, kFastParams);
    ASSERT_TRUE(made.has_value());
    const std::string blob = *made;
    auto with = [&](const std::string& from, const std::string& to) {
        std::string t = blob;
        t.replace(t.find(from), from.size(), to);
        return t;
    };
    // Each of these would take minutes or gigabytes if scrypt ran; the parser refuses them with
    // bad_format (a scrypt run would have ended in crypto_error or bad_passphrase).
    for (const auto& t : {with("\nn: 1024\n", "\nn: 1099511627776\n"), with("\nn: 1024\n", "\nn: 8388608\n"),
                          with("\nn: 1024\n", "\nn: 1000\n"), with("\nn: 1024\n", "\nn: 1\n"),
                          with("\nn: 1024\n", "\nn: 0\n"), with("\nn: 1024\n", "\nn: 18446744073709551616\n"),
                          with("\nr: 8\n", "\nr: 0\n"), with("\nr: 8\n", "\nr: 4096\n"), with("\np: 1\n", "\np: 0\n"),
                          with("\np: 1\n", "\np: 1000000\n"), with("\np: 1\n", "\np: -1\n")}) {
        auto r = unwrap_audit_key(t, kPass);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, errc::bad_format) << r.error().message;
    }
    // The writer refuses them too, and short passphrases.
    EXPECT_FALSE(wrap_audit_key(keys.key, kPass, WrapParams{1ULL << 23, 8, 1}).has_value());
    EXPECT_FALSE(wrap_audit_key(keys.key, kPass, WrapParams{1000, 8, 1}).has_value());
    auto short_pass = wrap_audit_key(keys.key, "1234567", kFastParams);
    ASSERT_FALSE(short_pass.has_value());
    EXPECT_EQ(short_pass.error().code, errc::invalid_argument);
}

TEST(Wrap, PassphraseFile) {
    const TempDir dir;
    const std::string p = dir.sub("pass");
    write_all(p, "secret passphrase\r\nsecond line ignored\n");
    ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
    auto pass = read_passphrase_file(p);
    ASSERT_TRUE(pass.has_value()) << pass.error().message;
    EXPECT_EQ(*pass, "secret passphrase");
    write_all(p, "\n");
    auto empty = read_passphrase_file(p);
    ASSERT_FALSE(empty.has_value());
    EXPECT_NE(empty.error().message.find(p), std::string::npos);
    auto missing = read_passphrase_file(dir.sub("nope"));
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().code, base::errc::io_error);
}

}  // namespace
}  // namespace hsmaudit::mac
