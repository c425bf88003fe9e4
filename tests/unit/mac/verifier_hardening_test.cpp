// Issue 15, items 1 and 2: the offline verifier cannot be stalled (forged far epochs), crashed
// (symlink loops, dangling links, FIFOs, unreadable entries, odd names), fooled into verifying
// another chain or serial, made to call an unauthenticated tail verified, or made to accept
// validly MAC'd records that break the field syntax.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "base/files.h"
#include "mac/chain_verifier.h"
#include "mac/crypto.h"
#include "mac/record.h"
#include "mac/record_scan.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "tests/unit/mac/test_support.h"

namespace hsmaudit::mac {
namespace {

using namespace hsmaudit::mac::testing;

class VerifierHardening : public ::testing::Test {
protected:
    void SetUp() override { keys_ = std::make_unique<NewChainKeys>(make_keys()); }
    std::vector<std::string> trail(const TrailSpec& spec = {}) { return write_trail(*keys_, dir_.sub("t"), spec); }
    VerifyReport run(const VerifyOptions& opt) { return verify_ok({dir_.sub("t")}, opt); }

    TempDir dir_;
    std::unique_ptr<NewChainKeys> keys_;
};

/// A copy of `path` whose open line claims `epoch` (what an attacker who holds no key can write).
void write_with_epoch(const std::string& path, const std::string& out, std::uint64_t epoch) {
    auto lines = read_lines(path);
    const auto at = lines[0].find(" epoch=");
    const auto end = lines[0].find(' ', at + 1);
    lines[0].replace(at, end - at, " epoch=" + std::to_string(epoch));
    write_lines(out, lines);
}

// The stall: files claiming the real chain and a far epoch once made `verify --key` derive epoch
// keys up to it (2^64-1: never ending; 2^24 beyond the chain, the old bound: seconds per file).
// Now an epoch beyond what the segments read reach is refused before any key is derived.
TEST_F(VerifierHardening, ForgedFarEpochsAreFaultsInWellUnderASecond) {
    const auto paths = trail(TrailSpec{{3, 3, 3}, false});
    write_with_epoch(paths[1], dir_.sub("t") + "/far1.log", 2 + (std::uint64_t{1} << 24));  // within the old bound
    write_with_epoch(paths[1], dir_.sub("t") + "/far2.log", 2 + (std::uint64_t{1} << 24) - 7);
    write_with_epoch(paths[1], dir_.sub("t") + "/far3.log", ~std::uint64_t{0});
    for (const auto& opt : {key_options(*keys_), pub_options(*keys_)}) {
        const auto started = std::chrono::steady_clock::now();
        const VerifyReport r = run(opt);
        const auto took = std::chrono::steady_clock::now() - started;
        EXPECT_LT(took, std::chrono::milliseconds(500)) << "the old bound derived 2^24 keys per file here";
        EXPECT_EQ(count(r, FaultKind::epoch_out_of_range), 3u) << describe(r);
        EXPECT_EQ(r.faults_total, 3u) << describe(r);
        EXPECT_EQ(r.records, 9u);  // the real segments are verified all the same
    }
}

// Within the gap (missing segments, themselves a fault) epochs are still verified.
TEST_F(VerifierHardening, ASegmentAfterMissingOnesIsStillVerified) {
    const auto paths = trail(TrailSpec{{3, 3, 3}, true});
    fs::remove(paths[1]);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_EQ(count(r, FaultKind::segment_missing), 1u) << describe(r);
    EXPECT_EQ(count(r, FaultKind::epoch_out_of_range), 0u) << describe(r);
    EXPECT_EQ(r.records, 6u);
}

bool has_kind_for(const VerifyReport& r, FaultKind kind, const std::string& file) {
    return std::any_of(r.faults.begin(), r.faults.end(),
                       [&](const Fault& f) { return f.kind == kind && f.file == file; });
}

// The crash: a symlink loop made verify throw filesystem_error (exit 134); a dangling *.log link
// was skipped silently. Every path problem is now a fault naming the path; nothing is opened that
// could block (FIFOs) and no directory link is followed (no loop can be entered).
TEST_F(VerifierHardening, PathProblemsAreFaultsNeverACrashOrAHang) {
    trail();
    const std::string t = dir_.sub("t");
    fs::create_symlink("loop.log", t + "/loop.log");  // a link to itself
    fs::create_symlink("cycle_b", t + "/cycle_a");    // a loop of another name
    fs::create_symlink("cycle_a", t + "/cycle_b");
    fs::create_symlink("nowhere.log", t + "/dangling.log");
    fs::create_symlink("nowhere.txt", t + "/dangling.txt");  // not a trail name: ignored
    fs::create_directories(t + "/sub");
    fs::create_symlink("..", t + "/sub/up");  // a loop through a directory link: not followed
    ASSERT_EQ(::mkfifo((t + "/pipe.log").c_str(), 0600), 0);
    const auto started = std::chrono::steady_clock::now();
    auto r = verify_paths({t}, key_options(*keys_));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/loop.log")) << describe(*r);
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/dangling.log")) << describe(*r);
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/pipe.log")) << describe(*r);
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/cycle_a")) << describe(*r);
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/cycle_b")) << describe(*r);
    EXPECT_EQ(r->faults_total, 5u) << describe(*r);  // not dangling.txt, not sub/up
    EXPECT_EQ(r->records, 12u);                      // each segment once: sub/up was not followed

    // Named on the command line, a loop or a FIFO is a usage error (exit 2), not a crash or a hang.
    for (const std::string& p : {t + "/loop.log", t + "/pipe.log", t + "/dangling.log"}) {
        auto e = verify_paths({p}, key_options(*keys_));
        ASSERT_FALSE(e.has_value()) << p;
        EXPECT_NE(e.error().message.find(p), std::string::npos) << e.error().message;
    }
}

// Unreadable files and directories (permission denied). Root reads everything: skipped there.
TEST_F(VerifierHardening, PermissionDeniedIsAFault) {
    const auto paths = trail();
    const std::string t = dir_.sub("t");
    fs::create_directories(t + "/locked");
    write_all(t + "/locked/x.log", "x\n");
    ::chmod((t + "/locked").c_str(), 0);
    ::chmod(paths[2].c_str(), 0);
    if (::access(paths[2].c_str(), R_OK) == 0) {
        ::chmod((t + "/locked").c_str(), 0700);
        GTEST_SKIP() << "running with privileges that read mode 000 files";
    }
    auto r = verify_paths({t}, key_options(*keys_));
    ::chmod((t + "/locked").c_str(), 0700);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, t + "/locked")) << describe(*r);
    EXPECT_TRUE(has_kind_for(*r, FaultKind::unreadable_path, paths[2])) << describe(*r);
}

/// Lists every path it is asked about as a container with no members (the walk's choice is the test).
class RecordingExpander : public ContainerExpander {
public:
    [[nodiscard]] bool handles(const std::string& path) const override { return path.ends_with(".tar"); }
    Result<ContainerContents> expand(const std::string& path) const override {
        expanded.push_back(path);
        return ContainerContents{};
    }
    mutable std::vector<std::string> expanded;
};

// An archive being written (".tmp-" name, FORMAT.md 9.1) is not read from a directory.
TEST_F(VerifierHardening, ArchivesBeingWrittenAreNotRead) {
    trail();
    write_all(dir_.sub("t") + "/.tmp-audit-150123-1-4.tar", "partial");
    write_all(dir_.sub("t") + "/audit-150123-1-4.tar", "whole");
    RecordingExpander expander;
    VerifyOptions opt = key_options(*keys_);
    opt.containers = &expander;
    const VerifyReport r = run(opt);
    ASSERT_EQ(expander.expanded.size(), 1u);
    EXPECT_EQ(expander.expanded[0], dir_.sub("t") + "/audit-150123-1-4.tar");
    EXPECT_TRUE(r.verified()) << describe(r);
}

/// An "archive" (any *.tar path) holding one member whose bytes are those of `source`.
class OneMemberExpander : public ContainerExpander {
public:
    explicit OneMemberExpander(std::string source) : source_(std::move(source)) {}
    [[nodiscard]] bool handles(const std::string& path) const override { return path.ends_with(".tar"); }
    Result<ContainerContents> expand(const std::string& /*path*/) const override {
        ContainerContents c;
        const std::string src = source_;
        c.members.push_back(
            ContainerMember{"seg.log", fs::file_size(src), [src]() -> Result<std::unique_ptr<base::ByteSource>> {
                                auto f = base::FileSource::open(src);
                                if (!f) return std::move(f).error();
                                return std::unique_ptr<base::ByteSource>(std::move(*f));
                            }});
        return c;
    }

private:
    std::string source_;
};

// A crash between an archive's rename and the removal of its segments leaves a segment both in
// the archive and as a file: an identical copy is counted once and listed, not a fault. A copy
// that differs, or two plain files of one epoch (a replay), stay segment_duplicate.
TEST_F(VerifierHardening, AnArchivedSegmentStillOnDiskIsCountedOnceButADifferentOneIsADuplicate) {
    const auto paths = trail();
    const std::string member = dir_.sub("side") + "/seg.log";
    fs::create_directories(dir_.sub("side"));
    fs::copy_file(paths[1], member);
    write_all(dir_.sub("t") + "/archive.tar", "(read through the expander)");
    OneMemberExpander expander(member);
    VerifyOptions opt = key_options(*keys_);
    opt.containers = &expander;
    VerifyReport r = run(opt);
    EXPECT_TRUE(r.verified()) << describe(r);
    ASSERT_EQ(r.identical_copies.size(), 1u);
    EXPECT_EQ(r.segments.size(), 3u);
    EXPECT_EQ(r.records, 12u);
    const std::string one = r.identical_copies[0].file + " " + r.identical_copies[0].same_as;
    EXPECT_NE(one.find("archive.tar(seg.log)"), std::string::npos) << one;
    EXPECT_NE(one.find(paths[1]), std::string::npos) << one;

    // The member with another time in one record: the two copies of one epoch differ.
    auto text = base::read_file(member, 1 << 20);
    ASSERT_TRUE(text.has_value());
    const auto at = text->find("T0");
    ASSERT_NE(at, std::string::npos);
    (*text)[at + 1] = '1';
    write_all(member, *text);
    r = run(opt);
    EXPECT_FALSE(r.verified());
    EXPECT_TRUE(r.identical_copies.empty());
    EXPECT_EQ(r.fault_counts[static_cast<std::size_t>(FaultKind::segment_duplicate)], 1u) << describe(r);

    // Two plain files of one epoch, identical: a replay, not the archiver's window.
    fs::remove(dir_.sub("t") + "/archive.tar");
    fs::copy_file(paths[1], dir_.sub("t") + "/again.log");
    r = run(key_options(*keys_));
    EXPECT_TRUE(r.identical_copies.empty());
    EXPECT_EQ(r.fault_counts[static_cast<std::size_t>(FaultKind::segment_duplicate)], 1u) << describe(r);
}

// File names are bytes: a name that is not UTF-8 is read, reported and listed like any other.
TEST_F(VerifierHardening, NonUtf8FileNamesAreRead) {
    const auto paths = trail();
    const std::string odd = dir_.sub("t") + "/seg\xff\xfe\x1b[2J.log";
    fs::rename(paths[1], odd);
    const VerifyReport r = run(key_options(*keys_));
    EXPECT_TRUE(r.verified()) << describe(r);
    ASSERT_EQ(r.segments.size(), 3u);
    EXPECT_EQ(r.segments[1].file, odd);
}

TEST_F(VerifierHardening, ChainAndSerialArePinned) {
    trail();
    // The trail's own chain and serial: verified, and named.
    VerifyOptions ok = key_options(*keys_);
    ok.expect_chain = keys_->key.chain();
    ok.expect_serial = "150123";
    const VerifyReport good = run(ok);
    EXPECT_TRUE(good.verified()) << describe(good);
    EXPECT_EQ(good.serial, "150123");
    EXPECT_EQ(good.chain_hex, hex_encode(keys_->key.chain()));

    // Another serial expected: every segment is a fault.
    VerifyOptions serial = pub_options(*keys_);
    serial.expect_serial = "999999";
    const VerifyReport s = run(serial);
    EXPECT_EQ(count(s, FaultKind::foreign_module), 3u) << describe(s);
    EXPECT_EQ(s.serial, "999999");

    // Another chain expected: the trail (and key) of this chain is not reported as verified.
    const auto other = make_keys();
    VerifyOptions chain = pub_options(*keys_);
    chain.expect_chain = other.key.chain();
    const VerifyReport c = run(chain);
    EXPECT_FALSE(c.verified());
    EXPECT_EQ(count(c, FaultKind::wrong_key), 1u) << describe(c);
    EXPECT_EQ(c.records, 0u);
    EXPECT_EQ(c.chain_hex, hex_encode(other.key.chain()));
}

/// A trail forged from audit.pub alone: the chain id is public, every MAC is invented, and the
/// segment is left unsealed (a seal would need the signing key).
void forge_from_pub(const AuditPub& pub, const std::string& dir, std::uint64_t records) {
    fs::create_directories(dir);
    const std::string chain = hex_encode(pub.chain);
    const std::string junk(64, 'a');
    std::string data = "@open v=1 chain=" + chain +
                       " serial=150123 epoch=0 boot=1 first=1 time=" + format_time(1'795'500'000'000) +
                       " prev=" + std::string(64, '0') + " mac=" + junk + "\n";
    for (std::uint64_t i = 1; i <= records; ++i) {
        AuditRecord rec;
        rec.seq = i;
        rec.time_ms = 1'795'500'000'000 + static_cast<std::int64_t>(i);
        rec.serial = "150123";
        rec.boot = 1;
        rec.partition = 1;
        rec.role = "SO";
        rec.event = "LUNA_DELETE_OBJECT";
        rec.event_class = "keymanage";
        rec.details = {{"key", "42"}};
        encode_record_body(rec, data);
        data += " mac=" + junk + "\n";
    }
    write_all((fs::path(dir) / segment_file_name("150123", 0)).string(), data);
}

// Public-key mode once said VERIFIED for a trail forged from audit.pub alone: nothing
// authenticates an open tail without the secret. The report now counts those records unproven.
TEST_F(VerifierHardening, ATrailForgedFromThePublicKeyIsUnprovenNotVerified) {
    forge_from_pub(keys_->key.pub(), dir_.sub("t"), 5);
    const VerifyReport pub = run(pub_options(*keys_));
    EXPECT_TRUE(pub.verified()) << describe(pub);  // no fault can be shown...
    EXPECT_FALSE(pub.proven());                    // ...but nothing was proven
    EXPECT_EQ(pub.unproven_records, 5u);
    ASSERT_EQ(pub.segments.size(), 1u);
    EXPECT_FALSE(pub.segments[0].authenticated);
    const VerifyReport key = run(key_options(*keys_));
    EXPECT_FALSE(key.verified());  // the secret shows the forgery
    EXPECT_EQ(count(key, FaultKind::wrong_key), 1u) << describe(key);
}

TEST_F(VerifierHardening, AnHonestOpenTailIsUnprovenOnlyWithoutTheSecret) {
    trail(TrailSpec{{4, 4, 3}, false});
    const VerifyReport pub = run(pub_options(*keys_));
    EXPECT_TRUE(pub.verified()) << describe(pub);
    EXPECT_EQ(pub.unproven_records, 3u);
    EXPECT_TRUE(pub.segments[0].authenticated);
    EXPECT_FALSE(pub.segments[2].authenticated);
    const VerifyReport key = run(key_options(*keys_));
    EXPECT_TRUE(key.proven()) << describe(key);
    // Sealed, everything is proven by the digest chain and signatures.
    TempDir sealed;
    write_trail(*keys_, sealed.sub("t"), TrailSpec{{4, 4, 3}, true});
    EXPECT_TRUE(verify_ok({sealed.sub("t")}, pub_options(*keys_)).proven());
}

/// Re-MACs the records of an unsealed epoch-0 segment (lines without LF) with the real key: what
/// a faulty or hostile module holding K_0 writes.
void remac(const AuditKey& key, std::vector<std::string>& lines) {
    EpochKeyDeriver deriver(key);
    auto hmac = HmacSha256::create(deriver.key_for(0));
    ASSERT_TRUE(hmac.has_value());
    auto open = parse_open_line(lines[0]);
    ASSERT_TRUE(open.has_value());
    Mac prev = open->prev;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto sp = lines[i].rfind(" mac=");
        ASSERT_NE(sp, std::string::npos);
        const std::string body = lines[i].substr(0, sp);
        prev = hmac->compute(as_bytes(body), prev);
        lines[i] = body + " mac=" + hex_encode(prev);
    }
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from << " in " << s;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

// Records MAC'd by the real key (ChainWriter, then re-MAC'd with K_0 where the writer's escaping
// cannot produce the bytes) but breaking FORMAT.md 2.1, 2.2, 2.5: each is malformed_record.
TEST_F(VerifierHardening, ValidlyMacdButMalformedRecordsAreFaults) {
    struct Case {
        const char* what;
        std::string (*mutate)(const std::string&);
    };
    const Case cases[] = {
        {"raw CR", [](const std::string& l) { return replace_once(l, "serial=150123", "serial=150\r123"); }},
        {"raw 0xFF", [](const std::string& l) { return replace_once(l, "mech=", "mech=\xff"); }},
        {"unknown role", [](const std::string& l) { return replace_once(l, " role=", " role=ROOT"); }},
        {"unknown class", [](const std::string& l) { return replace_once(l, " class=", " class=x"); }},
        {"month 13",
         [](const std::string& l) { return l.substr(0, l.find(' ') + 6) + "13" + l.substr(l.find(' ') + 8); }},
        {"Feb 30",
         [](const std::string& l) { return l.substr(0, l.find(' ') + 6) + "02-30" + l.substr(l.find(' ') + 11); }},
        {"bad detail key", [](const std::string& l) { return replace_once(l, " mech=", " Mech="); }},
        {"result not hex", [](const std::string& l) { return replace_once(l, " result=0x", " result=0xg"); }},
        {"result short", [](const std::string& l) { return replace_once(l, " result=0x0", " result=0x"); }},
        {"bad escape", [](const std::string& l) { return replace_once(l, "mech=", "mech=\\q"); }},
    };
    for (const auto& c : cases) {
        TempDir dir;
        const auto paths = write_trail(*keys_, dir.sub("t"), TrailSpec{{4}, false});
        auto lines = read_lines(paths[0]);
        for (auto& l : lines) l.pop_back();
        lines[2] = c.mutate(lines[2]);  // record 2
        remac(keys_->key, lines);
        for (auto& l : lines) l += '\n';
        write_lines(paths[0], lines);
        const VerifyReport r = verify_ok({dir.sub("t")}, key_options(*keys_));
        EXPECT_EQ(count(r, FaultKind::malformed_record), 1u) << c.what << "\n" << describe(r);
        EXPECT_EQ(r.faults_total, 1u) << c.what << "\n" << describe(r);
        EXPECT_TRUE(has_fault(r, FaultKind::malformed_record, paths[0], 3, 2)) << c.what << "\n" << describe(r);
    }
    // The honest records of the writer and an unknown role written through it.
    AuditRecord rec;
    rec.seq = 1;
    rec.time_ms = 1'795'500'000'000;
    rec.serial = "150123";
    rec.role = "CU";
    rec.event = "LUNA_SIGN";
    rec.event_class = "usage";
    // The verifier's field-syntax check (its one-pass scan) of the record's line, any MAC.
    auto syntax_ok = [](const AuditRecord& r) {
        std::string line;
        encode_record_body(r, line);
        line += " mac=" + std::string(64, '0');
        RecordScan scan;
        scan_record_line(line, scan);
        return scan.syntax_ok();
    };
    EXPECT_TRUE(syntax_ok(rec));
    rec.role = "ROOT";
    EXPECT_FALSE(syntax_ok(rec));
}

// The drain and the stream verifier apply ChainVerifier's rules: the malformed record is reported
// through the fault sink (the drain raises a critical alert from it) and the chain goes on.
TEST_F(VerifierHardening, ChainVerifierReportsMalformedRecordsAndContinues) {
    const auto paths = write_trail(*keys_, dir_.sub("t"), TrailSpec{{4}, false});
    auto lines = read_lines(paths[0]);
    for (auto& l : lines) l.pop_back();
    lines[1] = replace_once(lines[1], " class=", " class=bogus");
    remac(keys_->key, lines);
    std::vector<Fault> faults;
    ChainVerifier cv(&keys_->key, nullptr, [&](Fault&& f) { faults.push_back(std::move(f)); });
    auto open = parse_open_line(lines[0]);
    ASSERT_TRUE(open.has_value());
    ASSERT_TRUE(cv.begin_segment(*open, lines[0], "drain"));
    for (std::size_t i = 1; i < lines.size(); ++i) cv.line(lines[i], i + 1);
    const SegmentTotals t = cv.end_segment(true);
    ASSERT_EQ(faults.size(), 1u);
    EXPECT_EQ(faults[0].kind, FaultKind::malformed_record);
    EXPECT_EQ(faults[0].seq, 1u);
    EXPECT_EQ(t.records, 4u);
    EXPECT_EQ(cv.expected_seq(), 5u);
}

}  // namespace
}  // namespace hsmaudit::mac
