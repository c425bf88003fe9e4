// Writes the seed corpus of the fuzz targets with the fixed fuzz key (tests/fuzz/fuzz_keys.h):
//   make_seed_corpus <tests/fuzz/corpus>
// Seeds are small on purpose: a few real lines and short segments.
#include <cstdio>
#include <filesystem>
#include <string>

#include "mac/chain_writer.h"
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
    return 0;
}
