// The encrypted-file framing's one owner (mac/encrypted_file.h): the header parser and the
// incremental ChunkDecoder every reader goes through, fed byte by byte, cut at every point and
// with every bit flipped; and EncryptedFileSource (which decodes through it) on torn files.
#include "mac/encrypted_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

Bytes32 key_of(std::uint8_t b) {
    Bytes32 k{};
    k.fill(b);
    return k;
}

struct Sealed {
    EncryptedHeader hdr{};
    std::string header;
    std::vector<std::string> chunks;  // each chunk's bytes as on disk
    std::vector<std::string> plain;
};

Sealed seal_chunks(const Bytes32& key, const std::vector<std::string>& plain) {
    Sealed s;
    auto sealer = ChunkSealer::create(key);
    EXPECT_TRUE(sealer.has_value());
    s.header = sealer->header();
    auto salt = parse_encrypted_header(s.header);
    EXPECT_TRUE(salt.has_value());
    s.hdr = *salt;
    for (const auto& p : plain) {
        std::string out;
        EXPECT_TRUE(sealer->seal(p, out).has_value());
        s.chunks.push_back(out);
    }
    s.plain = plain;
    return s;
}

TEST(EncryptedHeader, RoundTripsAndRejectsWhatIsNotOne) {
    auto sealer = ChunkSealer::create(key_of(1));
    ASSERT_TRUE(sealer.has_value());
    const std::string h = sealer->header();
    ASSERT_EQ(h.size(), kEncryptedHeaderBytes);
    EXPECT_TRUE(is_encrypted(h));
    auto salt = parse_encrypted_header(h);
    ASSERT_TRUE(salt.has_value());
    EXPECT_EQ(salt->version, 2U);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(salt->salt.data()), salt->salt.size()), h.substr(8));
    // Longer input (the header and what follows) is fine: only the first 24 bytes are the header.
    EXPECT_TRUE(parse_encrypted_header(h + "more").has_value());
    for (std::size_t n = 0; n < h.size(); ++n) EXPECT_FALSE(parse_encrypted_header(h.substr(0, n))) << n;
    std::string other = h;
    other[7] = '1';  // HSMAENC1: read (an older agent's files)
    ASSERT_TRUE(parse_encrypted_header(other).has_value());
    EXPECT_EQ(parse_encrypted_header(other)->version, 1U);
    other[7] = '3';  // HSMAENC3: no such version
    EXPECT_FALSE(parse_encrypted_header(other));
    EXPECT_FALSE(parse_encrypted_header("@open v=1 chain=0000000000000000 serial=1"));
}

TEST(ChunkDecoder, FedByteByByteYieldsEveryChunkOnce) {
    const auto key = key_of(2);
    const Sealed s = seal_chunks(key, {"first line\n", std::string(300, 'x') + "\n", "a\nb\nc\n"});
    std::string file;
    for (const auto& c : s.chunks) file += c;

    ChunkDecoder d(key, s.hdr);
    std::string buf;
    std::vector<std::string> got;
    std::size_t need_more = 0;
    for (char byte : file) {
        buf += byte;
        const ChunkStep step = d.decode(buf);
        ASSERT_NE(step.status, ChunkStatus::damaged) << step.why;
        if (step.status == ChunkStatus::need_more) {
            ++need_more;
            EXPECT_GT(step.bytes, buf.size());  // it asks for more than it has
            continue;
        }
        EXPECT_EQ(step.bytes, buf.size());
        got.push_back(step.plaintext);
        buf.erase(0, step.bytes);
    }
    EXPECT_TRUE(buf.empty());
    EXPECT_EQ(got, s.plain);
    EXPECT_EQ(d.next_index(), 3u);
    EXPECT_EQ(need_more, file.size() - 3);
}

TEST(ChunkDecoder, EveryTruncationAsksForMoreAndNamesWhatItNeeds) {
    const auto key = key_of(3);
    const Sealed s = seal_chunks(key, {"0123456789\n"});
    const std::string& chunk = s.chunks[0];
    ASSERT_EQ(chunk.size(), kChunkOverheadBytes + 11);
    for (std::size_t n = 0; n < chunk.size(); ++n) {
        ChunkDecoder d(key, s.hdr);
        const ChunkStep step = d.decode(std::string_view(chunk).substr(0, n));
        EXPECT_EQ(step.status, ChunkStatus::need_more) << "cut at " << n;
        EXPECT_EQ(step.bytes, n < 4 ? 4u : chunk.size()) << "cut at " << n;
        EXPECT_EQ(d.next_index(), 0u);  // nothing consumed
    }
    ChunkDecoder d(key, s.hdr);
    const ChunkStep whole = d.decode(chunk + "trailing bytes of the next chunk");
    EXPECT_EQ(whole.status, ChunkStatus::chunk);
    EXPECT_EQ(whole.bytes, chunk.size());
    EXPECT_EQ(whole.plaintext, "0123456789\n");
}

TEST(ChunkDecoder, EveryFlippedBitIsDamageNeverAChunk) {
    const auto key = key_of(4);
    const Sealed s = seal_chunks(key, {"record 1\n", "record 2\n"});
    const std::string& chunk = s.chunks[0];
    for (std::size_t byte = 0; byte < chunk.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string bad = chunk;
            bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
            ChunkDecoder d(key, s.hdr);
            // The next chunk follows, as in a file: a longer length finds bytes to authenticate.
            const ChunkStep step = d.decode(bad + s.chunks[1]);
            ASSERT_NE(step.status, ChunkStatus::chunk) << "byte " << byte << " bit " << bit;
            EXPECT_EQ(d.next_index(), 0u);
            if (byte >= 4) {
                // The length is intact: the damaged chunk's extent is known, and the next one is
                // reached by skipping it.
                ASSERT_EQ(step.status, ChunkStatus::damaged);
                EXPECT_NE(step.why.find("chunk 0 fails authentication"), std::string::npos) << step.why;
                EXPECT_EQ(step.bytes, chunk.size());
                d.skip();
                const ChunkStep next = d.decode(s.chunks[1]);
                ASSERT_EQ(next.status, ChunkStatus::chunk) << next.why;
                EXPECT_EQ(next.plaintext, "record 2\n");
            } else if (step.status == ChunkStatus::damaged) {
                EXPECT_FALSE(step.why.empty());
            }
        }
    }
}

TEST(ChunkDecoder, RejectsImpossibleLengthsReorderedChunksAndAnotherKey) {
    const auto key = key_of(5);
    const Sealed s = seal_chunks(key, {"one\n", "two\n"});
    {
        ChunkDecoder d(key, s.hdr);
        const ChunkStep zero = d.decode(std::string("\0\0\0\0", 4) + s.chunks[0]);
        EXPECT_EQ(zero.status, ChunkStatus::damaged);
        EXPECT_EQ(zero.bytes, 0u);  // framing lost: no next chunk known
        EXPECT_NE(zero.why.find("impossible length (0 bytes)"), std::string::npos) << zero.why;
        const ChunkStep huge = d.decode(std::string("\x01\x00\x00\x01", 4));
        EXPECT_EQ(huge.status, ChunkStatus::damaged);
        EXPECT_NE(huge.why.find("impossible length"), std::string::npos) << huge.why;
    }
    {
        ChunkDecoder d(key, s.hdr);  // chunk 1 where chunk 0 belongs: its index is bound in
        EXPECT_EQ(d.decode(s.chunks[1]).status, ChunkStatus::damaged);
    }
    {
        ChunkDecoder d(key_of(6), s.hdr);
        EXPECT_EQ(d.decode(s.chunks[0]).status, ChunkStatus::damaged);
    }
    {
        ChunkDecoder d(key, s.hdr, 1);  // resumed at chunk 1 (an appender's view)
        const ChunkStep step = d.decode(s.chunks[1]);
        ASSERT_EQ(step.status, ChunkStatus::chunk);
        EXPECT_EQ(step.plaintext, "two\n");
        EXPECT_EQ(d.next_index(), 2u);
    }
}

// The flaw version 2 closes: recovery cuts an uncommitted chunk off and the next batch is
// sealed at the same index. With counter nonces (version 1) both chunks shared a nonce under one
// key, so C1 xor C2 = P1 xor P2. A resumed version 2 sealer draws a fresh nonce.
// seal_into() writes into a buffer the caller keeps sized (the store's, holding older ciphertext
// past the chunk): only the bytes it returns are the chunk, and they decode; a buffer too small is
// an error that leaves the chunk counter where it was.
TEST(ChunkSealer, SealIntoAReusedBufferWritesExactlyTheChunkAndRefusesATooSmallOne) {
    const auto key = key_of(7);
    auto sealer = ChunkSealer::create(key);
    ASSERT_TRUE(sealer.has_value());
    const auto hdr = parse_encrypted_header(sealer->header());
    ASSERT_TRUE(hdr.has_value());
    const std::vector<std::string> plain = {std::string(500, 'a') + "\n", "short\n", std::string(70, 'z') + "\n"};
    std::string buf(4096, '\xAB');  // older bytes, as the store's buffer holds
    ChunkDecoder d(key, *hdr);
    for (const auto& p : plain) {
        const std::size_t need = sealer->sealed_bytes(p.size());
        EXPECT_EQ(need, kChunkOverheadBytes + p.size());
        auto small = sealer->seal_into(p, std::span<char>(buf.data(), need - 1));
        EXPECT_FALSE(small.has_value());
        auto n = sealer->seal_into(p, std::span<char>(buf.data(), buf.size()));
        ASSERT_TRUE(n.has_value()) << n.error().message;
        EXPECT_EQ(*n, need);
        // The chunk alone, then the buffer's stale tail: the decoder takes exactly the chunk.
        const ChunkStep step = d.decode(std::string_view(buf.data(), buf.size()));
        ASSERT_EQ(step.status, ChunkStatus::chunk) << step.why;
        EXPECT_EQ(step.bytes, need);
        EXPECT_EQ(step.plaintext, p);
    }
    EXPECT_EQ(sealer->next_index(), plain.size());  // the refused calls did not advance it
    EXPECT_FALSE(sealer->seal_into("", std::span<char>(buf.data(), buf.size())).has_value());
}

TEST(ChunkSealer, AChunkSealedAgainAtTheSameIndexGetsANewNonce) {
    const auto key = key_of(8);
    auto first = ChunkSealer::create(key);
    ASSERT_TRUE(first.has_value());
    const auto header = parse_encrypted_header(first->header());
    ASSERT_TRUE(header.has_value());
    const std::string p1 = "17 2026-12-04T04:00:00.000Z event=A\n";
    const std::string p2 = "17 2026-12-04T04:00:00.000Z event=B\n";
    std::string c1;
    ASSERT_TRUE(first->seal(p1, c1).has_value());
    auto again = ChunkSealer::resume(key, *header, 0);  // as recovery resumes after the cut
    ASSERT_TRUE(again.has_value());
    std::string c2;
    ASSERT_TRUE(again->seal(p2, c2).has_value());
    ASSERT_EQ(c1.size(), c2.size());
    EXPECT_NE(c1.substr(4, kChunkNonceBytes), c2.substr(4, kChunkNonceBytes));
    std::string xc;
    std::string xp;
    const std::size_t at = 4 + kChunkNonceBytes;
    for (std::size_t i = 0; i < p1.size(); ++i) {
        xc += static_cast<char>(c1[at + i] ^ c2[at + i]);
        xp += static_cast<char>(p1[i] ^ p2[i]);
    }
    EXPECT_NE(xc, xp);  // no two-time pad
    for (const std::string* c : {&c1, &c2}) {
        ChunkDecoder d(key, *header);
        const ChunkStep step = d.decode(*c);
        ASSERT_EQ(step.status, ChunkStatus::chunk) << step.why;
        EXPECT_EQ(step.plaintext, c == &c1 ? p1 : p2);
    }
}

// A file cut inside its header is damage, not "not an encrypted file" (which would end a verify
// with a usage error instead of a fault).
TEST(EncryptedFileSource, ATornHeaderIsDamage) {
    testing::TempDir dir;
    auto sealer = ChunkSealer::create(key_of(10));
    ASSERT_TRUE(sealer.has_value());
    for (std::size_t n : {std::size_t{8}, std::size_t{10}, kEncryptedHeaderBytes - 1}) {
        const std::string path = dir.sub("torn" + std::to_string(n));
        std::ofstream(path, std::ios::binary) << sealer->header().substr(0, n);
        auto src = EncryptedFileSource::open(path, key_of(10));
        ASSERT_TRUE(src.has_value()) << n << ": " << src.error().message;
        char buf[8];
        auto r = (*src)->read(buf);
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(*r, 0U);
        ASSERT_TRUE((*src)->damage().has_value()) << n;
        EXPECT_NE((*src)->damage()->find("torn header"), std::string::npos) << *(*src)->damage();
    }
}

// Files an older agent wrote (version 1, counter nonces) still read: this file was made from
// docs/FORMAT.md section 8 by Python's cryptography package (store key 32 x 0x09, salt 00..0f).
TEST(EncryptedFileSource, ReadsVersionOneFiles) {
    testing::TempDir dir;
    const std::string hex =
        "48534d41454e4331000102030405060708090a0b0c0d0e0f00000004f038113b9d340db2650c52156958f4afa27e105f"
        "0000000415bddaa3cfc0d77ecafceead678775ca7593f3c3";
    std::string file;
    for (std::size_t i = 0; i < hex.size(); i += 2) file += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    const std::string path = dir.sub("v1.log");
    std::ofstream(path, std::ios::binary) << file;
    auto src = EncryptedFileSource::open(path, key_of(9));
    ASSERT_TRUE(src.has_value());
    EXPECT_EQ((*src)->header().version, 1U);
    std::string plain;
    char buf[64];
    for (;;) {
        auto r = (*src)->read(buf);
        ASSERT_TRUE(r.has_value());
        if (*r == 0) break;
        plain.append(buf, *r);
    }
    EXPECT_FALSE((*src)->damage().has_value()) << *(*src)->damage();
    EXPECT_EQ(plain, "one\ntwo\n");
    // An appender resuming it keeps version 1, so the file stays one format.
    auto sealer = ChunkSealer::resume(key_of(9), (*src)->header(), (*src)->chunks());
    ASSERT_TRUE(sealer.has_value());
    EXPECT_EQ(sealer->version(), 1U);
    std::string c3;
    ASSERT_TRUE(sealer->seal("three\n", c3).has_value());
    EXPECT_EQ(c3.size(), kChunkOverheadBytesV1 + 6);
}

TEST(EncryptedFileSource, ReadsTheGoodChunksOfAFileCutAnywhere) {
    testing::TempDir dir;
    const auto key = key_of(7);
    const Sealed s = seal_chunks(key, {"a\n", "bb\n"});
    const std::string file = s.header + s.chunks[0] + s.chunks[1];
    const std::size_t boundary = s.header.size() + s.chunks[0].size();
    for (std::size_t n = s.header.size(); n <= file.size(); ++n) {
        const std::string path = dir.sub("seg" + std::to_string(n));
        std::ofstream(path, std::ios::binary) << file.substr(0, n);
        auto src = EncryptedFileSource::open(path, key);
        ASSERT_TRUE(src.has_value()) << n;
        std::string plain;
        char buf[7];
        for (;;) {
            auto r = (*src)->read(buf);
            ASSERT_TRUE(r.has_value());
            if (*r == 0) break;
            plain.append(buf, *r);
        }
        const bool clean = n == s.header.size() || n == boundary || n == file.size();
        EXPECT_EQ((*src)->damage().has_value(), !clean) << n;
        if (!clean) {
            EXPECT_NE((*src)->damage()->find("torn"), std::string::npos) << *(*src)->damage();
        }
        const std::size_t expect_valid = n == file.size() ? n : n >= boundary ? boundary : s.header.size();
        EXPECT_EQ((*src)->valid_bytes(), expect_valid) << n;
        EXPECT_EQ(plain, n == file.size() ? "a\nbb\n" : n >= boundary ? "a\n" : "") << n;
    }
}

}  // namespace
}  // namespace hsmaudit::mac
