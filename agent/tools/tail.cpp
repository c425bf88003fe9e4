#include "agent/tools/tail.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>

#include "agent/api/errc.h"
#include "agent/engine/store/audit_store.h"
#include "base/line_reader.h"
#include "mac/encrypted_file.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;

std::string escaped(std::string_view v) {
    std::string out;
    mac::append_escaped(v, out);
    return out;
}

std::string result_text(std::uint32_t result) {
    if (result == 0) return "ok";
    char buf[16];
    (void)std::snprintf(buf, sizeof buf, "0x%08x", result);
    return buf;
}

}  // namespace

std::string format_record_text(const TailRecord& r) {
    const mac::AuditRecord& a = r.record;
    std::string s = mac::format_time(a.time_ms);
    s += "  #" + std::to_string(a.seq);
    s += "  part " + std::to_string(a.partition);
    s += "  " + escaped(a.role);
    s += "  sess " + std::to_string(a.session);
    s += "  " + escaped(a.event);
    s += "  " + escaped(a.event_class);
    s += "  " + result_text(a.result);
    for (const auto& d : a.details) s += "  " + d.key + "=" + escaped(d.value);
    return s;
}

nlohmann::json format_record_json(const TailRecord& r) {
    const mac::AuditRecord& a = r.record;
    char result[16];
    (void)std::snprintf(result, sizeof result, "0x%08x", a.result);
    nlohmann::json details = nlohmann::json::object();
    for (const auto& d : a.details) details[d.key] = d.value;
    return {{"seq", a.seq},
            {"time", mac::format_time(a.time_ms)},
            {"serial", a.serial},
            {"boot", a.boot},
            {"partition", a.partition},
            {"role", a.role},
            {"session", a.session},
            {"event", a.event},
            {"class", a.event_class},
            {"result", result},
            {"ok", a.result == 0},
            {"details", std::move(details)},
            {"segment", r.segment},
            {"mac", r.mac_hex}};
}

StoreTail::StoreTail(std::string audit_dir, const mac::AuditKey* key) : audit_dir_(std::move(audit_dir)), key_(key) {}

void StoreTail::warn(std::string message) {
    if (std::find(warned_.begin(), warned_.end(), message) != warned_.end()) return;
    warned_.push_back(message);
    warnings_.push_back(std::move(message));
}

std::vector<std::string> StoreTail::take_warnings() {
    return std::exchange(warnings_, {});
}

Result<std::vector<StoreTail::Segment>> StoreTail::list_segments() const {
    std::error_code ec;
    if (!fs::is_directory(audit_dir_, ec))
        return make_error(errc::io_error, "no audit store in " + audit_dir_ + " (the directory does not exist)");
    std::vector<Segment> out;
    for (auto& s : list_store_segments(audit_dir_))
        out.push_back(Segment{s.epoch, std::move(s.path), std::move(s.name), s.sealed_dir});
    return out;
}

Result<StoreTail::ReadResult> StoreTail::read_segment(const Segment& seg, std::uint64_t skip_bytes,
                                                      std::uint64_t min_seq, std::vector<TailRecord>& out) {
    ReadResult rr;
    auto src = mac::open_segment_source(seg.path, key_);
    if (!src) {
        // Renamed between listing and opening (rotation): the next poll finds it in its new place.
        std::error_code ec;
        if (!fs::exists(seg.path, ec)) {
            rr.consumed = skip_bytes;
            rr.vanished = true;
            return rr;
        }
        return std::move(src).error();
    }
    base::ByteSource* raw = src->get();
    base::LineReader reader(std::move(*src), mac::kMaxLineBytes);
    base::Line line;
    std::uint64_t offset = 0;
    for (;;) {
        auto got = reader.next(line);
        if (!got) return std::move(got).error();
        if (!*got) break;
        if (!line.terminated) break;  // still being written (or torn): not consumed
        const std::uint64_t end = reader.bytes_consumed();
        const std::uint64_t line_start = offset;
        offset = end;
        rr.consumed = end;
        if (line_start < skip_bytes) continue;
        const std::string where = seg.path + ":" + std::to_string(line.number);
        if (line.too_long) {
            warn(where + ": a line longer than the format's limit (skipped)");
            continue;
        }
        switch (mac::classify_line(line.text)) {
            case mac::LineKind::open: break;
            case mac::LineKind::seal: rr.sealed = true; break;
            case mac::LineKind::unknown: warn(where + ": not a record, open or seal line (skipped)"); break;
            case mac::LineKind::record: {
                auto split = mac::split_record_line(line.text);
                if (!split) {
                    warn(where + ": malformed record line: " + split.error().message);
                    break;
                }
                rr.max_seq = std::max(rr.max_seq.value_or(0), split->seq);
                if (split->seq < min_seq) break;
                auto rec = mac::parse_record_body(split->body);
                if (!rec) {
                    warn(where + ": malformed record " + std::to_string(split->seq) + ": " + rec.error().message);
                    break;
                }
                out.push_back(TailRecord{std::move(*rec), mac::hex_encode(split->mac), seg.name, line.number});
                break;
            }
        }
    }
    rr.consumed = std::max(rr.consumed, skip_bytes);
    if (auto damage = raw->damage(); damage && damage->find("torn") == std::string::npos)
        warn(seg.path + ": " + *damage + "; records after it are not shown (run 'hsmaudit fsck')");
    return rr;
}

Result<std::vector<TailRecord>> StoreTail::last(std::size_t n) {
    auto segs = list_segments();
    if (!segs) return std::move(segs).error();
    std::deque<TailRecord> kept;
    bool positioned = false;
    for (auto it = segs->rbegin(); it != segs->rend(); ++it) {
        std::vector<TailRecord> recs;
        auto rr = read_segment(*it, 0, 0, recs);
        if (!rr) return std::move(rr).error();
        if (!positioned) {
            positioned = true;
            epoch_ = it->epoch;
            consumed_ = rr->consumed;
            sealed_ = rr->sealed;
            std::error_code ec;
            last_size_ = static_cast<std::int64_t>(fs::file_size(it->path, ec));
            if (ec) last_size_ = -1;
        }
        if (rr->max_seq) last_seq_ = std::max(last_seq_, *rr->max_seq);
        for (auto r = recs.rbegin(); r != recs.rend() && kept.size() < n; ++r) kept.push_front(std::move(*r));
        if (kept.size() >= n && last_seq_ != 0) break;
    }
    std::vector<TailRecord> out(std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
    std::sort(out.begin(), out.end(),
              [](const TailRecord& a, const TailRecord& b) { return a.record.seq < b.record.seq; });
    return out;
}

Result<std::vector<TailRecord>> StoreTail::poll() {
    std::vector<TailRecord> out;
    for (int hops = 0; hops < 1024; ++hops) {  // bounded: one hop per segment rotated since the last poll
        auto segs = list_segments();
        if (!segs) return std::move(segs).error();
        if (segs->empty()) break;
        auto next_after = [&](std::uint64_t epoch) -> const Segment* {
            for (const auto& s : *segs)
                if (s.epoch > epoch) return &s;
            return nullptr;
        };
        const Segment* seg = nullptr;
        if (!epoch_) {
            seg = &segs->front();
            epoch_ = seg->epoch;
            consumed_ = 0;
            last_size_ = -1;
            sealed_ = false;
        } else {
            for (const auto& s : *segs)
                if (s.epoch == *epoch_) seg = &s;
        }
        if (seg == nullptr) {
            // The followed file is gone (removed by the agent's recovery, or archived): go on
            // with the next segment if there is one.
            const Segment* next = next_after(*epoch_);
            if (next == nullptr) break;
            epoch_ = next->epoch;
            consumed_ = 0;
            last_size_ = -1;
            sealed_ = false;
            continue;
        }
        std::error_code ec;
        const auto size = static_cast<std::int64_t>(fs::file_size(seg->path, ec));
        if (!ec && size != last_size_) {
            if (size < last_size_) consumed_ = 0;  // cut back by recovery: re-read, the seq filter skips repeats
            std::vector<TailRecord> recs;
            auto rr = read_segment(*seg, consumed_, last_seq_ + 1, recs);
            if (!rr) return std::move(rr).error();
            consumed_ = rr->consumed;
            sealed_ = sealed_ || rr->sealed;
            last_size_ = rr->vanished ? -1 : size;
            for (auto& r : recs) {
                if (r.record.seq <= last_seq_) continue;
                last_seq_ = r.record.seq;
                out.push_back(std::move(r));
            }
        }
        const Segment* next = next_after(seg->epoch);
        // A sealed segment is complete; so is one in ready_for_archive/ that a later one follows
        // (the module never sealed it).
        if (next == nullptr || !(sealed_ || seg->sealed_dir)) break;
        epoch_ = next->epoch;
        consumed_ = 0;
        last_size_ = -1;
        sealed_ = false;
    }
    return out;
}

}  // namespace hsmaudit::agent::tools
