// Helpers shared by the mac unit tests: a temporary directory per test, trails written through
// the real ChainWriter, and line-level file surgery to tamper with honest segments.
//
// Thread-safety: test-only; each test owns its objects.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mac/chain_writer.h"
#include "mac/keys.h"
#include "mac/verifier.h"

namespace hsmaudit::mac::testing {

namespace fs = std::filesystem;

/// A fresh directory under the test temp dir, removed with everything in it at destruction.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::path(::testing::TempDir()) / "hsmaudit_test_XXXXXX").string();
        const char* p = ::mkdtemp(tmpl.data());
        if (p == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string sub(const std::string& name) const { return (fs::path(path_) / name).string(); }

private:
    std::string path_;
};

inline NewChainKeys make_keys() {
    auto keys = generate_chain_keys();
    EXPECT_TRUE(keys.has_value()) << (keys ? "" : keys.error().message);
    return std::move(keys).value();
}

inline std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_all(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

/// Lines of a file, each with its LF (the last one may lack it).
inline std::vector<std::string> read_lines(const std::string& path) {
    const std::string data = read_all(path);
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const auto nl = data.find('\n', pos);
        const std::size_t end = nl == std::string::npos ? data.size() : nl + 1;
        lines.push_back(data.substr(pos, end - pos));
        pos = end;
    }
    return lines;
}

inline void write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::string data;
    for (const auto& l : lines) data += l;
    write_all(path, data);
}

/// Deterministic records of typical size (150-250 bytes), independent of the agent library.
class TestWorkload {
public:
    TestWorkload(std::uint64_t seed, std::int64_t start_time_ms) : state_(seed), time_ms_(start_time_ms) {}
    void next(AuditRecord& rec) {
        static const char* const kEvents[] = {"LUNA_SIGN", "LUNA_LOGIN", "LUNA_GENERATE_KEY_PAIR", "LUNA_DECRYPT"};
        static const char* const kRoles[] = {"CO", "CU", "SO", "-"};
        const std::uint64_t r = step();
        time_ms_ += static_cast<std::int64_t>(r % 37);
        rec.time_ms = time_ms_;
        rec.partition = static_cast<std::uint32_t>(1 + r % 3);
        rec.role = kRoles[(r >> 8) % 4];
        rec.session = 1 + (r >> 16) % 50;
        rec.event = kEvents[(r >> 24) % 4];
        rec.event_class = (r >> 32) % 20 == 0 ? "failure" : "usage";
        rec.result = rec.event_class == "failure" ? 0xa0u : 0u;
        rec.details = {{"key", std::to_string(100 + (r >> 40) % 900)},
                       {"mech", "CKM_ECDSA_SHA256"},
                       {"label", "issuing CA " + std::to_string((r >> 50) % 10)}};
    }
    [[nodiscard]] std::int64_t now_ms() const { return time_ms_; }

private:
    std::uint64_t step() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    std::uint64_t state_;
    std::int64_t time_ms_;
};

/// How a test trail is laid out: records per segment; the last segment sealed or left open.
struct TrailSpec {
    std::vector<std::uint64_t> segment_records = {4, 4, 4};
    bool seal_last = true;
    std::string serial = "150123";
    std::uint64_t seed = 7;
};

/// Writes a trail through the real ChainWriter; returns the segment paths in chain order.
inline std::vector<std::string> write_trail(const NewChainKeys& keys, const std::string& dir, const TrailSpec& spec) {
    std::vector<std::string> paths;
    fs::create_directories(dir);
    auto writer = ChainWriter::create(keys.key.chain(), spec.serial, 1, keys.signer, genesis_head(keys.key));
    EXPECT_TRUE(writer.has_value());
    if (!writer) return paths;
    TestWorkload workload(spec.seed, 1'795'500'000'000);
    AuditRecord rec;
    for (std::size_t s = 0; s < spec.segment_records.size(); ++s) {
        const std::string path = (fs::path(dir) / segment_file_name(spec.serial, writer->head().epoch)).string();
        auto open = writer->open_segment(workload.now_ms());
        EXPECT_TRUE(open.has_value());
        std::string data = *open;
        for (std::uint64_t i = 0; i < spec.segment_records[s]; ++i) {
            workload.next(rec);
            EXPECT_TRUE(writer->append(rec, data).has_value());
        }
        if (s + 1 < spec.segment_records.size() || spec.seal_last) {
            auto seal = writer->seal(workload.now_ms());
            EXPECT_TRUE(seal.has_value());
            data += *seal;
        }
        write_all(path, data);
        paths.push_back(path);
    }
    return paths;
}

inline VerifyOptions key_options(const NewChainKeys& keys) {
    VerifyOptions o;
    o.key.emplace(keys.key);
    return o;
}

inline VerifyOptions pub_options(const NewChainKeys& keys) {
    VerifyOptions o;
    o.pub.emplace(keys.key.pub());
    return o;
}

inline VerifyOptions both_options(const NewChainKeys& keys) {
    VerifyOptions o;
    o.key.emplace(keys.key);
    o.pub.emplace(keys.key.pub());
    return o;
}

inline VerifyReport verify_ok(const std::vector<std::string>& paths, const VerifyOptions& opt) {
    auto r = verify_paths(paths, opt);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    if (!r) return {};
    return std::move(r).value();
}

inline std::string describe(const VerifyReport& r) {
    std::string s;
    for (const auto& f : r.faults)
        s += std::string(to_string(f.kind)) + " " + f.file + ":" + std::to_string(f.line) + " seq " +
             std::to_string(f.seq) + ": " + f.message + "\n";
    return s;
}

inline std::size_t count(const VerifyReport& r, FaultKind k) {
    return static_cast<std::size_t>(r.fault_counts[static_cast<std::size_t>(k)]);
}

/// True if the report holds a fault of `kind` at file/line/seq.
inline bool has_fault(const VerifyReport& r, FaultKind kind, const std::string& file, std::uint64_t line,
                      std::uint64_t seq) {
    return std::any_of(r.faults.begin(), r.faults.end(), [&](const Fault& f) {
        return f.kind == kind && f.file == file && f.line == line && f.seq == seq;
    });
}

/// The first sequence number of a record line ("17 2026-..." -> 17).
inline std::uint64_t seq_of(const std::string& line) {
    return std::stoull(line.substr(0, line.find(' ')));
}

}  // namespace hsmaudit::mac::testing
