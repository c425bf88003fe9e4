#include "agent/engine/store/first_retained.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "agent/engine/store/archiver.h"
#include "agent/engine/store/audit_store.h"
#include "base/line_reader.h"
#include "mac/encrypted_file.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

std::optional<std::uint64_t> segment_first_seq(const std::string& path, const mac::AuditKey& key) {
    auto src = mac::open_segment_source(path, &key);
    if (!src) return std::nullopt;
    base::LineReader reader(std::move(*src), mac::kMaxLineBytes, 8192);
    base::Line line;
    auto got = reader.next(line);
    if (!got || !*got || line.too_long || !line.terminated) return std::nullopt;
    auto open = mac::parse_open_line(line.text);
    if (!open) return std::nullopt;
    return open->first_seq;
}

std::optional<std::uint64_t> oldest_archive_first_seq(const std::string& audit_dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(fs::path(audit_dir) / kArchiveDir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (is_finished_archive(name)) names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());  // chain order
    for (const auto& name : names) {
        auto m = read_manifest((fs::path(audit_dir) / kArchiveDir / name).string());
        if (m && !m->segments.empty()) return m->segments.front().first_seq;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> first_retained_seq(const std::string& audit_dir, const mac::AuditKey& key) {
    std::optional<std::uint64_t> first;
    for (const auto& s : list_store_segments(audit_dir))
        if ((first = segment_first_seq(s.path, key))) break;
    if (auto a = oldest_archive_first_seq(audit_dir)) first = first ? std::min(*first, *a) : *a;
    return first;
}

}  // namespace hsmaudit::agent
