#include "agent/engine/store/audit_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>

#include "agent/api/errc.h"
#include "agent/engine/store/state_layout.h"
#include "base/files.h"
#include "base/unique_fd.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kSlotBytes = kPositionSlotBytes;
constexpr const char* kCurrentDir = kOpenSegmentDir;
constexpr const char* kReadyDir = kSealedSegmentDir;
constexpr const char* kPositionFile = kPositionFileName;

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

using base::fsync_dir;
using base::write_all;

std::string slot_text(const StorePosition& p) {
    std::string s = "hsmaudit-position/1 gen=" + std::to_string(p.generation) + " entry=" + std::to_string(p.entry_no) +
                    " next_seq=" + std::to_string(p.next_seq) + " has_end=" + (p.has_end ? "1" : "0") +
                    " end_epoch=" + std::to_string(p.end_epoch) + " end_next_seq=" + std::to_string(p.end_next_seq) +
                    " end_mac=" + mac::hex_encode(p.end_mac) + " current=" + (p.current.empty() ? "-" : p.current) +
                    " current_bytes=" + std::to_string(p.current_bytes);
    auto sha = mac::Sha256::create();
    const mac::Bytes32 sum = sha ? sha->compute(mac::as_bytes(s)) : mac::Bytes32{};
    s += " sum=" + mac::hex_encode(mac::ByteView(sum.data(), 8)) + "\n";
    return s;
}

std::string annex_sum(std::uint64_t gen, std::string_view text) {
    std::string summed = "gen=" + std::to_string(gen) + " ";
    summed += text;
    auto sha = mac::Sha256::create();
    const mac::Bytes32 sum = sha ? sha->compute(mac::as_bytes(summed)) : mac::Bytes32{};
    return mac::hex_encode(mac::ByteView(sum.data(), 8));
}

/// The annex of generation `gen` in `slot`, or nullopt (blank, torn, another generation).
std::optional<std::string> parse_annex(std::string_view slot, std::uint64_t gen) {
    const auto nl = slot.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view text = slot.substr(0, nl);
    const std::string head = "hsmaudit-annex/1 gen=" + std::to_string(gen) + " sum=";
    if (!text.starts_with(head) || text.size() < head.size() + 17 || text[head.size() + 16] != ' ') return std::nullopt;
    const std::string_view sum = text.substr(head.size(), 16);
    const std::string_view body = text.substr(head.size() + 17);
    if (sum != annex_sum(gen, body)) return std::nullopt;
    return std::string(body);
}

std::optional<StorePosition> parse_slot(std::string_view slot) {
    const auto nl = slot.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view text = slot.substr(0, nl);
    const auto sum_at = text.rfind(" sum=");
    if (sum_at == std::string_view::npos) return std::nullopt;
    auto sha = mac::Sha256::create();
    if (!sha) return std::nullopt;
    const mac::Bytes32 sum = sha->compute(mac::as_bytes(text.substr(0, sum_at)));
    if (text.substr(sum_at + 5) != mac::hex_encode(mac::ByteView(sum.data(), 8))) return std::nullopt;
    StorePosition p;
    std::string_view rest = text.substr(0, sum_at);
    if (!rest.starts_with("hsmaudit-position/1 ")) return std::nullopt;
    rest.remove_prefix(20);
    auto field = [&](std::string_view key) -> std::optional<std::string_view> {
        const auto sp = rest.find(' ');
        std::string_view tok = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        if (!tok.starts_with(key) || tok.size() <= key.size() || tok[key.size()] != '=') return std::nullopt;
        return tok.substr(key.size() + 1);
    };
    auto num = [&](std::string_view key, std::uint64_t& out) {
        auto v = field(key);
        return v && mac::parse_u64(*v, out);
    };
    std::uint64_t has_end = 0;
    if (!num("gen", p.generation) || !num("entry", p.entry_no) || !num("next_seq", p.next_seq) ||
        !num("has_end", has_end) || !num("end_epoch", p.end_epoch) || !num("end_next_seq", p.end_next_seq))
        return std::nullopt;
    p.has_end = has_end == 1;
    auto mac_hex = field("end_mac");
    if (!mac_hex || !mac::hex_decode(*mac_hex, p.end_mac)) return std::nullopt;
    auto cur = field("current");
    if (!cur) return std::nullopt;
    p.current = *cur == "-" ? "" : std::string(*cur);
    // Only a segment file name (never a path: a damaged or hostile slot must not point the store
    // at a file outside current/).
    if (!p.current.empty() && (p.current.find('/') != std::string::npos || !mac::segment_file_epoch(p.current)))
        return std::nullopt;
    if (!num("current_bytes", p.current_bytes)) return std::nullopt;
    return p;
}

}  // namespace

std::optional<mac::ChainEnd> StorePosition::chain_end() const {
    if (!has_end) return std::nullopt;
    return mac::ChainEnd{end_epoch, end_next_seq, end_mac, "the last sealed segment"};
}

struct AuditStore::OpenFile {
    std::string name;
    UniqueFd fd;
    std::optional<mac::ChunkSealer> sealer;
    std::string pending;        // plaintext not yet written
    std::uint64_t written = 0;  // bytes in the file
    std::uint64_t pending_bytes_estimate = 0;
};

AuditStore::AuditStore(AuditStoreOptions options, const mac::Bytes32& store_key)
    : options_(std::move(options)),
      fs_(options_.fs != nullptr ? *options_.fs : base::posix_file_system()),
      store_key_(store_key) {}

AuditStore::~AuditStore() {
    mac::secure_zero(store_key_.data(), store_key_.size());
}

Result<std::unique_ptr<AuditStore>> AuditStore::open(const AuditStoreOptions& options, const mac::AuditKey& key) {
    auto store_key = mac::store_key(key);
    if (!store_key) return std::move(store_key).error();
    std::unique_ptr<AuditStore> s(new AuditStore(options, *store_key));
    mac::secure_zero(store_key->data(), store_key->size());
    HSMAUDIT_TRY(s->recover());
    return s;
}

std::string AuditStore::current_path() const {
    if (!cur_) return {};
    return (fs::path(options_.dir) / kCurrentDir / cur_->name).string();
}

std::uint64_t AuditStore::open_segment_bytes() const {
    return cur_ ? cur_->written + cur_->pending.size() : 0;
}

Status AuditStore::fail(Error e) {
    broken_ = true;
    return e;
}

Status AuditStore::recover() {
    // Everything in memory is dropped: only the position file and the files speak.
    cur_.reset();
    position_fd_.reset();
    dir_dirty_ = false;
    recovery_.clear();
    const fs::path root(options_.dir);
    const fs::path current = root / kCurrentDir;
    const fs::path ready = root / kReadyDir;
    std::error_code ec;
    for (const auto& d : {root, current, ready}) {
        fs::create_directories(d, ec);
        if (ec) return make_error(errc::io_error, "cannot create " + d.string() + ": " + ec.message());
        fs::permissions(d, fs::perms::owner_all, ec);
    }
    const std::string pos_path = (root / kPositionFile).string();
    position_fd_.reset(fs_.open(pos_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!position_fd_.valid()) return io("cannot open " + pos_path);
    std::string slots(2 * kSlotBytes, '\0');
    const ssize_t n = ::pread(position_fd_.get(), slots.data(), slots.size(), 0);
    if (n < 0) return io("cannot read " + pos_path);
    const PositionFileState state = parse_position_file(slots, static_cast<std::uint64_t>(n));
    const bool never_written = state.slot_empty[0] && state.slot_empty[1];
    if (state.current < 0 && !never_written)
        return make_error(errc::io_error, pos_path + " is damaged (no valid slot); run 'hsmaudit fsck'");
    StorePosition p = state.current >= 0 ? *state.slots[static_cast<std::size_t>(state.current)] : StorePosition{};
    if (never_written) {
        // A new store: generation 0 (empty) goes into slot 0 first, so a first commit torn in
        // slot 1 falls back to it instead of leaving a position file with no valid slot.
        HSMAUDIT_TRY(write_position(p));
    }

    auto note = [&](const std::string& what) { recovery_ += what + "\n"; };
    auto listing = list_store_files(options_.dir);
    if (!listing) return std::move(listing).error();
    const RecoveryPlan plan = plan_recovery(p, *listing);
    for (const auto& name : plan.uncommitted) {
        const fs::path path = current / name;
        if (fs_.unlink(path.c_str()) != 0 && errno != ENOENT) return io("cannot remove " + path.string());
        note("removed uncommitted " + path.string());
    }
    if (plan.open != RecoveryPlan::Open::none) {
        const fs::path cur = current / p.current;
        if (plan.open == RecoveryPlan::Open::sealed_after_commit) {
            // Sealed and moved after the last commit: the seal was never acknowledged; undo.
            if (fs_.rename((ready / p.current).c_str(), cur.c_str()) != 0) return io("cannot move back " + p.current);
            note("moved " + p.current + " back from " + kReadyDir + " (sealed after the last commit)");
            dir_dirty_ = true;
        }
        if (plan.open == RecoveryPlan::Open::missing)
            return make_error(errc::io_error, "store damaged: the open segment " + cur.string() +
                                                  " recorded in the position file is missing; run 'hsmaudit fsck'");
        if (plan.short_of_committed())
            return make_error(errc::io_error, "store damaged: " + cur.string() + " holds " +
                                                  std::to_string(plan.open_bytes) + " bytes, fewer than the " +
                                                  std::to_string(p.current_bytes) + " committed; run 'hsmaudit fsck'");
        if (const std::uint64_t cut = plan.uncommitted_bytes(); cut > 0) {
            if (fs_.truncate(cur.c_str(), static_cast<off_t>(p.current_bytes)) != 0)
                return io("cannot truncate " + cur.string());
            note("cut " + std::to_string(cut) + " uncommitted bytes off " + cur.string());
        }
        auto f = std::make_unique<OpenFile>();
        f->name = p.current;
        f->written = p.current_bytes;
        f->fd.reset(fs_.open(cur.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, 0));
        if (!f->fd.valid()) return io("cannot open " + cur.string());
        if (options_.encrypt) {
            auto src = mac::EncryptedFileSource::open(cur.string(), store_key_);
            if (!src) return std::move(src).error();
            char buf[65536];
            for (;;) {
                auto r = (*src)->read(buf);
                if (!r) return std::move(r).error();
                if (*r == 0) break;
            }
            if ((*src)->damage() || (*src)->valid_bytes() != p.current_bytes)
                return make_error(errc::io_error, "store damaged: " + cur.string() + ": " +
                                                      (*src)->damage().value_or("length mismatch") +
                                                      "; run 'hsmaudit fsck'");
            // A cut chunk's index is written again: version 2 draws a new nonce for it (never
            // the cut one's); a version 1 file left by an older agent keeps its format until sealed.
            auto sealer = mac::ChunkSealer::resume(store_key_, (*src)->header(), (*src)->chunks());
            if (!sealer) return std::move(sealer).error();
            f->sealer.emplace(std::move(*sealer));
        }
        cur_ = std::move(f);
    }
    pos_ = p;
    durable_ = p;
    {
        std::string annex(kAnnexSlotBytes, '\0');
        const auto off = static_cast<off_t>(2 * kSlotBytes + (p.generation % 2) * kAnnexSlotBytes);
        const ssize_t got = ::pread(position_fd_.get(), annex.data(), annex.size(), off);
        std::optional<std::string> text;
        if (got > 0) text = parse_annex(std::string_view(annex).substr(0, static_cast<std::size_t>(got)), p.generation);
        durable_annex_ = text.value_or(std::string{});
        annex_ = durable_annex_;
    }
    if (!recovery_.empty()) HSMAUDIT_TRY(fsync_dir(current.string(), fs_));
    if (dir_dirty_) {
        HSMAUDIT_TRY(fsync_dir(ready.string(), fs_));
        dir_dirty_ = false;
    }
    return {};
}

Status AuditStore::reopen() {
    broken_ = true;
    HSMAUDIT_TRY(recover());
    // Write the recovered position again, under a new generation and through the new descriptor:
    // the slot read back may be one whose fsync failed (in the page cache, not on disk), and
    // nothing may be acknowledged on the strength of that.
    StorePosition next = durable_;
    next.generation = durable_.generation + 1;
    HSMAUDIT_TRY(write_position(next));
    pos_ = next;
    durable_ = next;
    broken_ = false;
    recovery_ += "re-opened after a write failure at entry " + std::to_string(durable_.entry_no) + "\n";
    return {};
}

Status AuditStore::start_segment(std::string_view open_line) {
    auto open = mac::parse_open_line(open_line.substr(0, open_line.size() - 1));
    if (!open) return make_error(errc::internal, "the source sent a malformed open line: " + open.error().message);
    if (cur_) {
        // An open entry while a segment is open: the module never sealed it. Keep what we have
        // (the verifier reports the missing seal) and move on.
        HSMAUDIT_TRY(finish_sealed({}));
    }
    auto f = std::make_unique<OpenFile>();
    f->pending = std::move(spare_pending_);  // the last segment's buffer, its capacity kept
    f->pending.clear();
    f->name = mac::segment_file_name(open->serial, open->epoch);
    const std::string path = (fs::path(options_.dir) / kCurrentDir / f->name).string();
    f->fd.reset(fs_.open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!f->fd.valid()) return io("cannot create " + path);
    // The position names the file from the next commit on; recovery removes it until then.
    cur_ = std::move(f);
    pos_.current = cur_->name;
    pos_.current_bytes = 0;
    dir_dirty_ = true;
    if (options_.encrypt) {
        auto sealer = mac::ChunkSealer::create(store_key_);
        if (!sealer) return std::move(sealer).error();
        HSMAUDIT_TRY(write_all(cur_->fd.get(), sealer->header(), path, fs_));
        cur_->written = mac::kEncryptedHeaderBytes;
        cur_->sealer.emplace(std::move(*sealer));
    }
    pos_.current_bytes = cur_->written;
    return {};
}

Status AuditStore::flush(OpenFile& f, bool sync) {
    const std::string path = (fs::path(options_.dir) / kCurrentDir / f.name).string();
    if (!f.pending.empty()) {
        // On failure nothing here is undone: the store is broken and reopen() re-derives the
        // written length and the chunk counter from disk.
        if (f.sealer) {
            // The chunk buffer keeps its size between commits and only grows, so the bytes the
            // cipher is about to overwrite are not zero-filled first (it holds ciphertext only).
            std::size_t need = 0;
            for (std::size_t at = 0; at < f.pending.size(); at += mac::kMaxChunkBytes)
                need += f.sealer->sealed_bytes(std::min(f.pending.size() - at, mac::kMaxChunkBytes));
            if (chunk_.size() < need) chunk_.resize(need);
            std::size_t used = 0;
            std::string_view rest = f.pending;
            while (!rest.empty()) {
                const std::size_t n = std::min(rest.size(), mac::kMaxChunkBytes);
                auto sealed =
                    f.sealer->seal_into(rest.substr(0, n), std::span<char>(chunk_.data() + used, need - used));
                if (!sealed) return std::move(sealed).error();
                used += *sealed;
                rest.remove_prefix(n);
            }
            HSMAUDIT_TRY(write_all(f.fd.get(), std::string_view(chunk_.data(), used), path, fs_));
            f.written += used;
        } else {
            HSMAUDIT_TRY(write_all(f.fd.get(), f.pending, path, fs_));
            f.written += f.pending.size();
        }
        f.pending.clear();
    }
    if (sync && fs_.fdatasync(f.fd.get()) != 0) return io("cannot fsync " + path);
    return {};
}

Status AuditStore::finish_sealed(std::string_view seal_line) {
    if (!seal_line.empty()) cur_->pending += seal_line;
    HSMAUDIT_TRY(flush(*cur_, true));
    const fs::path from = fs::path(options_.dir) / kCurrentDir / cur_->name;
    const fs::path to = fs::path(options_.dir) / kReadyDir / cur_->name;
    if (fs_.rename(from.c_str(), to.c_str()) != 0) return io("cannot move " + from.string() + " to " + to.string());
    HSMAUDIT_TRY(fsync_dir((fs::path(options_.dir) / kReadyDir).string(), fs_));
    dir_dirty_ = true;
    spare_pending_ = std::move(cur_->pending);
    cur_.reset();
    pos_.current.clear();
    pos_.current_bytes = 0;
    return {};
}

Status AuditStore::append(const EntryBatch& batch) {
    if (broken_) return make_error(errc::io_error, "the store is broken by an earlier write failure; re-open it");
    // Consecutive records are consecutive bytes of batch.text: each run is appended with one copy.
    std::size_t run_begin = 0, run_end = 0;
    auto append_run = [&] {
        if (run_end > run_begin) cur_->pending.append(batch.text, run_begin, run_end - run_begin);
        run_begin = run_end = 0;
    };
    if (cur_) cur_->pending.reserve(cur_->pending.size() + batch.text.size());
    for (const EntryRef& e : batch.entries) {
        if (e.kind == EntryKind::record) {
            if (!cur_) return fail(make_error(errc::internal, "a record arrived while no segment is open"));
            if (run_end != e.offset) {
                append_run();
                run_begin = e.offset;
            }
            run_end = std::size_t{e.offset} + e.length;
            pos_.next_seq = e.seq + 1;
            pos_.entry_no = e.entry_no;
            continue;
        }
        append_run();
        const std::string_view line = batch.line(e);
        switch (e.kind) {
            case EntryKind::open: {
                if (auto st = start_segment(line); !st) return fail(std::move(st).error());
                cur_->pending.reserve(batch.text.size());
                cur_->pending += line;
                break;
            }
            case EntryKind::record: break;  // above
            case EntryKind::seal: {
                if (!cur_) return fail(make_error(errc::internal, "a seal arrived while no segment is open"));
                auto seal = mac::parse_seal_line(line.substr(0, line.size() - 1));
                if (!seal)
                    return fail(
                        make_error(errc::internal, "the source sent a malformed seal: " + seal.error().message));
                if (auto st = finish_sealed(line); !st) return fail(std::move(st).error());
                pos_.has_end = true;
                pos_.end_epoch = seal->seal.epoch;
                pos_.end_next_seq = seal->seal.last_seq + 1;
                pos_.end_mac = seal->seal.final_mac;
                break;
            }
        }
        pos_.entry_no = e.entry_no;
    }
    append_run();
    return {};
}

Status AuditStore::commit(const std::function<void()>& before_position) {
    if (broken_) return make_error(errc::io_error, "the store is broken by an earlier write failure; re-open it");
    if (pos_.entry_no == durable_.entry_no && !dir_dirty_) return {};
    if (cur_) {
        if (auto st = flush(*cur_, true); !st) return fail(std::move(st).error());
        pos_.current_bytes = cur_->written;
    }
    if (dir_dirty_) {
        if (auto st = fsync_dir((fs::path(options_.dir) / kCurrentDir).string(), fs_); !st)
            return fail(std::move(st).error());
        dir_dirty_ = false;
    }
    if (before_position) before_position();
    StorePosition next = pos_;
    next.generation = durable_.generation + 1;
    if (auto st = write_position(next); !st) return fail(std::move(st).error());
    pos_.generation = next.generation;
    durable_ = next;
    durable_annex_ = annex_;
    return {};
}

Status AuditStore::write_position(const StorePosition& p) {
    auto bytes = position_slot_bytes(p);
    if (!bytes) return std::move(bytes).error();
    const std::string& slot = *bytes;
    if (!annex_.empty()) {
        // The annex first: the position slot that names this generation is written after it, and
        // one fdatasync below makes both durable.
        std::string a = "hsmaudit-annex/1 gen=" + std::to_string(p.generation) +
                        " sum=" + annex_sum(p.generation, annex_) + " " + annex_ + "\n";
        if (a.size() > kAnnexSlotBytes) return make_error(errc::internal, "position annex overflow");
        a.resize(kAnnexSlotBytes, '\0');
        const auto at = static_cast<off_t>(2 * kSlotBytes + (p.generation % 2) * kAnnexSlotBytes);
        const ssize_t w = fs_.pwrite(position_fd_.get(), a.data(), a.size(), at);
        if (w != static_cast<ssize_t>(a.size())) {
            if (w >= 0) errno = ENOSPC;
            return io("cannot write the position file's annex");
        }
    }
    const auto offset = static_cast<off_t>((p.generation % 2) * kSlotBytes);
    const ssize_t n = fs_.pwrite(position_fd_.get(), slot.data(), slot.size(), offset);
    if (n != static_cast<ssize_t>(slot.size())) {
        if (n >= 0) errno = ENOSPC;  // a short write: the slot is torn (its checksum rejects it)
        return io("cannot write the position file");
    }
    if (fs_.fdatasync(position_fd_.get()) != 0) return io("cannot fsync the position file");
    return {};
}

Result<std::vector<std::string>> AuditStore::sealed_segments() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(fs::path(options_.dir) / kReadyDir, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().extension() == ".log") out.push_back(it->path().string());
    if (ec) return make_error(errc::io_error, "cannot list " + options_.dir + "/" + kReadyDir + ": " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
}

Result<PositionFileState> read_position_file(const std::string& audit_dir) {
    const std::string path = (fs::path(audit_dir) / kPositionFile).string();
    PositionFileState st;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) return io("cannot open " + path);
        st.slot_empty = {true, true};
        return st;
    }
    std::string slots(2 * kSlotBytes, '\0');
    const ssize_t n = ::pread(fd, slots.data(), slots.size(), 0);
    struct stat sb {};
    const bool stat_ok = ::fstat(fd, &sb) == 0;
    ::close(fd);
    if (n < 0 || !stat_ok) return io("cannot read " + path);
    return parse_position_file(slots, static_cast<std::uint64_t>(sb.st_size));
}

Result<std::string> position_slot_bytes(const StorePosition& p) {
    std::string slot = slot_text(p);
    if (slot.size() > kSlotBytes) return make_error(errc::internal, "position slot overflow");
    slot.resize(kSlotBytes, '\0');
    return slot;
}

PositionFileState parse_position_file(std::string_view bytes, std::uint64_t file_bytes) {
    std::string slots(bytes.substr(0, 2 * kSlotBytes));
    slots.resize(2 * kSlotBytes, '\0');
    PositionFileState st;
    st.file_bytes = file_bytes;
    for (std::size_t i = 0; i < 2; ++i) {
        const std::string_view slot = std::string_view(slots).substr(i * kSlotBytes, kSlotBytes);
        st.slot_empty[i] = std::all_of(slot.begin(), slot.end(), [](char c) { return c == '\0'; });
        if (!st.slot_empty[i]) st.slots[i] = parse_slot(slot);
        if (st.slots[i] && (st.current < 0 || st.slots[i]->generation > st.slots[st.current]->generation))
            st.current = static_cast<int>(i);
    }
    return st;
}

Result<StoreListing> list_store_files(const std::string& audit_dir) {
    StoreListing out;
    for (const char* sub : {kCurrentDir, kReadyDir}) {
        const fs::path dir = fs::path(audit_dir) / sub;
        auto& into = std::string_view(sub) == kCurrentDir ? out.current : out.ready;
        std::error_code ec;
        fs::directory_iterator it(dir, ec);
        if (ec == std::errc::no_such_file_or_directory) continue;
        for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
            std::error_code size_ec;
            const std::uintmax_t bytes = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
            into.push_back(StoreFileEntry{it->path().filename().string(), size_ec ? 0 : bytes});
        }
        if (ec) return make_error(errc::io_error, "cannot list " + dir.string() + ": " + ec.message());
    }
    return out;
}

std::vector<StoredSegment> list_store_segments(const std::string& audit_dir) {
    std::vector<StoredSegment> out;
    // current/ first, then ready_for_archive/: segments only move that way (a rename), so one that
    // moves while the two are listed is seen in one or the other. Listed the other way round, a
    // segment renamed between the two listings was in neither, and a store reader skipped it whole
    // (seen as a gap of one 4 KiB segment in tests/integration/agent/reload_destinations_test.cpp).
    // Seen in both (a crash window): the ready_for_archive/ copy, as the store's recovery does.
    for (const char* sub : {kCurrentDir, kReadyDir}) {
        const bool ready = std::string_view(sub) == kReadyDir;
        std::error_code ec;
        for (fs::directory_iterator it(fs::path(audit_dir) / sub, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const auto epoch = mac::segment_file_epoch(name);
            std::error_code type_ec;
            if (!epoch || !it->is_regular_file(type_ec)) continue;
            StoredSegment seg{*epoch, name, it->path().string(), ready};
            const auto same =
                std::find_if(out.begin(), out.end(), [&](const StoredSegment& s) { return s.epoch == *epoch; });
            if (same == out.end())
                out.push_back(std::move(seg));
            else if (ready)
                *same = std::move(seg);
        }
    }
    std::sort(out.begin(), out.end(), [](const StoredSegment& a, const StoredSegment& b) { return a.epoch < b.epoch; });
    return out;
}

RecoveryPlan plan_recovery(const StorePosition& p, const StoreListing& files) {
    RecoveryPlan plan;
    plan.open_name = p.current;
    plan.committed_bytes = p.current_bytes;
    for (const auto& f : files.current)
        if (f.name != p.current) plan.uncommitted.push_back(f.name);
    if (p.current.empty()) return plan;
    auto find = [&](const std::vector<StoreFileEntry>& in) -> const StoreFileEntry* {
        for (const auto& f : in)
            if (f.name == p.current) return &f;
        return nullptr;
    };
    if (const auto* f = find(files.current)) {
        plan.open = RecoveryPlan::Open::in_current;
        plan.open_bytes = f->bytes;
    } else if (const auto* r = find(files.ready)) {
        plan.open = RecoveryPlan::Open::sealed_after_commit;
        plan.open_bytes = r->bytes;
    } else {
        plan.open = RecoveryPlan::Open::missing;
    }
    return plan;
}

Result<StorePosition> read_store_position(const std::string& audit_dir) {
    auto st = read_position_file(audit_dir);
    if (!st) return std::move(st).error();
    if (st->current >= 0) return *st->slots[st->current];
    if (st->slot_empty[0] && st->slot_empty[1]) return StorePosition{};
    return make_error(errc::io_error, (fs::path(audit_dir) / kPositionFile).string() +
                                          " is damaged (no valid slot); run 'hsmaudit fsck'");
}

Status write_store_position(const std::string& audit_dir, const StorePosition& p) {
    auto slot = position_slot_bytes(p);
    if (!slot) return std::move(slot).error();
    std::string file(2 * kSlotBytes, '\0');
    file.replace((p.generation % 2) * kSlotBytes, kSlotBytes, *slot);
    return base::write_file_atomic((fs::path(audit_dir) / kPositionFile).string(), file, 0600, false);
}

Result<std::uint64_t> AuditStore::bytes_on_disk() const {
    std::uint64_t total = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code size_ec;  // a file removed meanwhile (archived) is not an error
        if (it->is_regular_file(size_ec)) {
            const std::uintmax_t n = it->file_size(size_ec);
            if (!size_ec) total += n;
        }
    }
    if (ec) return make_error(errc::io_error, "cannot size " + options_.dir + ": " + ec.message());
    return total;
}

}  // namespace hsmaudit::agent
