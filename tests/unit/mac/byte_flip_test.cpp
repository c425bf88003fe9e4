// Issue 2: "any single byte changed anywhere in a sealed segment is detected". For every byte
// of every file of a small sealed set, two changes (XOR 0x01, and a same-class printable
// substitution that keeps the line well-formed where it can) must make verification fail, with
// the audit key, with only the public key, and with both.
#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

enum class Mode { key, pub, both };

std::string mode_name(Mode m) {
    switch (m) {
        case Mode::key: return "key";
        case Mode::pub: return "pub";
        case Mode::both: return "both";
    }
    return "?";
}

void PrintTo(Mode m, std::ostream* os) {
    *os << mode_name(m);
}

/// A different character of the same kind (digit, hex letter, letter), so the line keeps its
/// shape and only the cryptography can notice; anything else becomes 'x'.
char substitute(char c) {
    if (c >= '0' && c <= '9') return c == '9' ? '0' : static_cast<char>(c + 1);
    if (c >= 'a' && c <= 'f') return c == 'f' ? 'a' : static_cast<char>(c + 1);
    if (c >= 'g' && c <= 'z') return c == 'z' ? 'g' : static_cast<char>(c + 1);
    if (c >= 'A' && c <= 'Z') return c == 'Z' ? 'A' : static_cast<char>(c + 1);
    return c == 'x' ? 'y' : 'x';
}

/// Overwrites one byte in place (cheaper than rewriting the file thousands of times).
void put_byte(const std::string& path, std::size_t offset, char value) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(value);
    f.flush();
    ASSERT_TRUE(f.good()) << "cannot write " << path;
}

class ByteFlip : public ::testing::TestWithParam<Mode> {};

TEST_P(ByteFlip, EveryByteOfASealedSetIsCovered) {
    const TempDir dir;
    const NewChainKeys keys = make_keys();
    const auto files = write_trail(keys, dir.sub("t"), {.segment_records = {3, 2, 3}, .seal_last = true});
    ASSERT_EQ(files.size(), 3u);
    VerifyOptions opt;
    switch (GetParam()) {
        case Mode::key: opt = key_options(keys); break;
        case Mode::pub: opt = pub_options(keys); break;
        case Mode::both: opt = both_options(keys); break;
    }
    ASSERT_TRUE(verify_ok(files, opt).verified()) << "the honest set must verify";

    std::size_t flips = 0;
    std::size_t undetected = 0;
    for (const auto& file : files) {
        const std::string original = read_all(file);
        ASSERT_FALSE(original.empty());
        for (std::size_t off = 0; off < original.size(); ++off) {
            const char c = original[off];
            for (const char changed : {static_cast<char>(c ^ 0x01), substitute(c)}) {
                put_byte(file, off, changed);
                auto r = verify_paths(files, opt);
                ++flips;
                // An I/O or usage error would also be a failure to verify, but a flipped byte
                // must be reported as an integrity fault.
                ASSERT_TRUE(r.has_value()) << r.error().message;
                if (r->verified()) {
                    ++undetected;
                    if (undetected <= 10)
                        ADD_FAILURE() << mode_name(GetParam()) << ": byte " << off << " of " << file << " ('" << c
                                      << "' -> 0x" << std::hex << (static_cast<unsigned>(changed) & 0xFF) << std::dec
                                      << ") went undetected";
                }
            }
            put_byte(file, off, c);
        }
        ASSERT_EQ(read_all(file), original);
    }
    EXPECT_EQ(undetected, 0u) << "of " << flips << " flips";
    EXPECT_GT(flips, 2000u) << "the set is smaller than intended";
    ASSERT_TRUE(verify_ok(files, opt).verified()) << "restored set must verify again";
}

INSTANTIATE_TEST_SUITE_P(Modes, ByteFlip, ::testing::Values(Mode::key, Mode::pub, Mode::both),
                         [](const ::testing::TestParamInfo<Mode>& p) { return mode_name(p.param); });

}  // namespace
}  // namespace hsmaudit::mac
