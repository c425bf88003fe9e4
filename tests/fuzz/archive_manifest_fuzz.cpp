// libFuzzer target for the store's archives (agent/engine/store/archiver.h): the manifest parser and the
// archive readers (read_manifest, check_archive) that fsck, retention and the verifier run on
// archives found on disk.
//
// Input: first byte = mode, the rest = payload.
//   mode % 3 == 0: the payload is a manifest's text (parse_manifest; a parsed manifest must
//                  render to text that parses to the same manifest);
//   mode % 3 == 1: the payload is the archive file itself (tar or gzip'd tar bytes);
//   mode % 3 == 2: a well-formed pax tar (gzip'd if mode & 4) whose first member is the payload as
//                  the manifest and then one member per segment the manifest names, so the readers
//                  get past libarchive's own checks.
// Properties checked besides "no crash": check_archive accepts an archive only if read_manifest
// does, and the manifest's segments all had members.
#include <archive.h>
#include <archive_entry.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/engine/store/archiver.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace {

using namespace hsmaudit;
using agent::ArchiveManifest;

bool same(const ArchiveManifest& a, const ArchiveManifest& b) {
    if (a.serial != b.serial || a.segments.size() != b.segments.size()) return false;
    for (std::size_t i = 0; i < a.segments.size(); ++i) {
        const auto& x = a.segments[i];
        const auto& y = b.segments[i];
        if (x.name != y.name || x.epoch != y.epoch || x.first_seq != y.first_seq || x.last_seq != y.last_seq ||
            x.bytes != y.bytes || x.sealed != y.sealed || x.encrypted != y.encrypted)
            return false;
    }
    return true;
}

void add_member(archive* a, const std::string& name, std::string_view data) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    // ARCHIVE_WARN: a name that is not UTF-8 is written as its bytes (as the archiver would).
    const int rc = archive_write_header(a, e);
    if (rc == ARCHIVE_FATAL) std::abort();
    if (rc >= ARCHIVE_WARN && !data.empty() &&
        archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
        std::abort();
    archive_entry_free(e);
}

/// A tar of `manifest` and a small member for each segment it names (if it parses).
std::string build_tar(std::string_view manifest, bool gzip) {
    std::string out(64 * 1024 + 16 * manifest.size() + 4096, '\0');
    std::size_t used = 0;
    archive* a = archive_write_new();
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) std::abort();
    if (gzip && archive_write_add_filter_gzip(a) != ARCHIVE_OK) std::abort();
    if (archive_write_open_memory(a, out.data(), out.size(), &used) != ARCHIVE_OK) std::abort();
    add_member(a, agent::kArchiveManifestName, manifest);
    if (auto m = agent::parse_manifest(manifest)) {
        std::size_t n = 0;
        for (const auto& s : m->segments) {
            if (++n > 32) break;
            add_member(a, s.name, s.name);
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) std::abort();
    archive_write_free(a);
    out.resize(used);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 64 * 1024) return 0;
    const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
    const int mode = data[0] % 3;
    if (mode == 0) {
        auto m = agent::parse_manifest(payload);
        if (!m) return 0;
        (void)m->last_seq();
        (void)m->first_epoch();
        auto again = agent::parse_manifest(agent::render_manifest(*m));
        if (!again || !same(*m, *again)) std::abort();
        return 0;
    }
    const std::string tar = mode == 1 ? std::string(payload) : build_tar(payload, (data[0] & 4) != 0);
    const auto path = fuzz::temp_dir() / ((data[0] & 4) != 0 ? "a.tar.gz" : "a.tar");
    fuzz::write_file(path, tar);
    auto m = agent::read_manifest(path.string());
    auto st = agent::check_archive(path.string(), {});
    if (st && !m) std::abort();
    (void)agent::is_archive_name(path.string());
    return 0;
}
