// Writes the seed corpus of the fuzz targets with the fixed fuzz key (tests/fuzz/fuzz_keys.h):
//   make_seed_corpus <tests/fuzz/corpus>
// Seeds are small on purpose: a few real lines and short segments.
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "hsmcore/ring/entry_codec.h"
#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/segment_format.h"
#include "mac/wrap.h"
#include "tests/fuzz/fuzz_keys.h"

namespace {

using namespace hsmaudit;
namespace fs = std::filesystem;

void put(const fs::path& path, const std::string& data) {
    fs::create_directories(path.parent_path());
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::exit(1);
    std::fclose(f);
}

mac::AuditRecord record(int i) {
    static const char* const kEvents[] = {"LUNA_LOGIN", "LUNA_SIGN", "LUNA_GENERATE_KEY_PAIR", "LUNA_LOGOUT"};
    mac::AuditRecord r;
    r.time_ms = 1'795'500'000'000 + i * 17;
    r.partition = 1;
    r.role = i % 2 ? "CO" : "CU";
    r.session = 3;
    r.event = kEvents[i % 4];
    r.event_class = i == 2 ? "failure" : "usage";
    r.result = i == 2 ? 0xa0 : 0;
    r.details = {{"key", std::to_string(100 + i)}, {"label", "issuing CA 1"}};
    static constexpr char kHostile[] = "tab\there\\ \x01\xff";
    if (i == 3) r.details.push_back({"note", std::string(kHostile, sizeof kHostile - 1)});
    return r;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

/// A pax tar (gzip'd if `gzip`) of `members` (name, data), as the archiver writes them.
std::string tar_of(const std::vector<std::pair<std::string, std::string>>& members, bool gzip) {
    std::string out(64 * 1024, '\0');
    std::size_t used = 0;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    if (archive_write_open_memory(a, out.data(), out.size(), &used) != ARCHIVE_OK) std::exit(1);
    for (const auto& [name, data] : members) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, name.c_str());
        archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        if (archive_write_header(a, e) != ARCHIVE_OK) std::exit(1);
        archive_write_data(a, data.data(), data.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    out.resize(used);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seed_corpus <corpus dir>\n");
        return 2;
    }
    const fs::path root = argv[1];
    auto keys = fuzz::fixed_keys();
    auto w = mac::ChainWriter::create(keys.key.chain(), "150123", 1, keys.signer, mac::genesis_head(keys.key));
    if (!w) return 1;
    std::string seg[3];
    for (int s = 0; s < 3; ++s) {
        seg[s] = *w->open_segment(1'795'500'000'000 + s);
        for (int i = 0; i < (s == 1 ? 1 : 3); ++i) {
            mac::AuditRecord r = record(s * 3 + i);
            if (!w->append(r, seg[s])) return 1;
        }
        if (s < 2) seg[s] += *w->seal(1'795'500'000'100 + s);  // the last stays open
    }
    const fs::path sf = root / "segment_fuzz";
    put(sf / "sealed_segment", seg[0]);
    put(sf / "open_tail", seg[2]);
    put(sf / "three_segments", seg[0] + "%%\n" + seg[1] + "%%\n" + seg[2]);
    put(sf / "record_line",
        seg[0].substr(seg[0].find('\n') + 1, seg[0].find('\n', seg[0].find('\n') + 1) - seg[0].find('\n')));
    put(sf / "seal_line", seg[0].substr(seg[0].rfind("@seal")));
    put(sf / "torn", seg[2].substr(0, seg[2].size() - 10));

    const fs::path wf = root / "wrapped_key_fuzz";
    mac::WrapParams small;
    small.scrypt_n = 1024;
    small.scrypt_r = 8;
    small.scrypt_p = 1;
    auto blob = mac::wrap_audit_key(keys.key, fuzz::kPassphrase, small);
    if (!blob) return 1;
    put(wf / "wrapped", *blob);
    put(wf / "audit_key", keys.key.serialize());
    put(wf / "audit_pub", keys.key.pub().serialize());

    // Ring entries: a record, an open and a seal entry, and a run of all three as the ring holds them.
    const fs::path rf = root / "ring_entry_fuzz";
    const auto seg0 = lines_of(seg[0]);
    mac::Mac some_mac;
    some_mac.fill(0x11);
    std::string rec_entry;
    std::string run;
    hsmcore::ring::encode_line_entry(hsmcore::ring::EntryKind::open, 1, 1, seg0.front() + "\n", run);
    for (int i = 0; i < 3; ++i) {
        mac::AuditRecord r = record(i);
        r.seq = static_cast<std::uint64_t>(i) + 1;
        hsmcore::ring::encode_record_entry(static_cast<std::uint64_t>(i) + 2, r, some_mac, i == 2 ? rec_entry : run);
    }
    run += rec_entry;
    std::string seal_entry;
    hsmcore::ring::encode_line_entry(hsmcore::ring::EntryKind::seal, 5, 3, seg0.back() + "\n", seal_entry);
    run += seal_entry;
    put(rf / "record_entry", rec_entry);
    put(rf / "seal_entry", seal_entry);
    put(rf / "run", run);
    // Bodies for the harness's fitted-CRC mode: first byte picks the kind (0: record).
    put(rf / "record_body", std::string(1, '\0') + rec_entry.substr(2, rec_entry.size() - 6));

    // Kafka: committed metadata, then the messages of segments 0 and 1 and a checkpoint.
    const fs::path kf = root / "kafka_message_fuzz";
    std::string msgs;
    for (int s = 0; s < 2; ++s) {
        for (const auto& l : lines_of(seg[s])) {
            const char* entry = l.starts_with("@open") ? "open" : l.starts_with("@seal") ? "seal" : "record";
            msgs += std::string(entry) + " " + std::to_string(s) + " " + l + "\n";
        }
    }
    auto third = mac::split_record_line(seg0[3]);
    if (!third) return 1;
    auto cp = mac::make_checkpoint(keys.key.chain(), "150123", 0, 3, 1'795'500'000'200, third->mac, keys.signer);
    if (!cp) return 1;
    put(kf / "two_segments", "v1\n" + msgs + "checkpoint - " + cp->line() + "\n");
    std::string records_only;
    for (std::size_t i = 1; i < 4; ++i) records_only += "record - " + seg0[i] + "\n";
    put(kf / "resumed_records", "v1;150123:0:2:" + seg0[1].substr(seg0[1].rfind("mac=") + 4) + ":1:1795500000000\n" +
                                    records_only.substr(records_only.find('\n') + 1));
    put(kf / "states", "v1;150123:-:1:-:0:0;150124:7:100:" + std::string(64, 'a') + ":3:1795500000000");

    // The store's position file, as write_store_position writes it (mode byte 0: as is), and one
    // slot's text for the harness to checksum (mode byte 1).
    const fs::path pf = root / "position_file_fuzz";
    const fs::path tmp = fs::temp_directory_path() / ("hsmaudit-seeds-" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    agent::StorePosition pos;
    pos.generation = 7;
    pos.entry_no = 42;
    pos.next_seq = 40;
    pos.has_end = true;
    pos.end_epoch = 2;
    pos.end_next_seq = 31;
    pos.end_mac.fill(0xab);
    pos.current = "0000000000000003-0000000000000031.log";
    pos.current_bytes = 4711;
    if (!agent::write_store_position(tmp.string(), pos)) return 1;
    std::ifstream pin(tmp / "position", std::ios::binary);
    std::stringstream pss;
    pss << pin.rdbuf();
    fs::remove_all(tmp);
    put(pf / "written", std::string(1, '\0') + pss.str());
    const std::string slot = pss.str().substr(pss.str().find("hsmaudit-position/1"));
    put(pf / "slot_text", "\x01" + slot.substr(0, slot.find(" sum=")) + "\n");

    // Archives: a manifest (mode 0), the same as a tar's first member (mode 2, 6: gzip), a whole tar (mode 1).
    const fs::path af = root / "archive_manifest_fuzz";
    agent::ArchiveManifest m;
    m.serial = "150123";
    m.segments.push_back({"0000000000000000-0000000000000001.log", 0, 1, 3, seg[0].size(), true, false});
    m.segments.push_back({"0000000000000001-0000000000000004.log", 1, 4, 4, seg[1].size(), true, false});
    const std::string manifest = agent::render_manifest(m);
    put(af / "manifest", std::string(1, '\0') + manifest);
    put(af / "manifest_in_tar", std::string(1, '\2') + manifest);
    put(af / "manifest_in_tgz", std::string(1, '\6') + manifest);
    put(af / "tar", std::string(1, '\1') + tar_of({{agent::kArchiveManifestName, manifest},
                                                   {m.segments[0].name, seg[0]},
                                                   {m.segments[1].name, seg[1]}},
                                                  false));
    return 0;
}
