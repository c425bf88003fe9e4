#include "hsmcore/ring/ring.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "hsmcore/errc.h"

namespace hsmaudit::hsmcore::ring {
namespace {

constexpr char kRingMagic[8] = {'H', 'S', 'M', 'R', 'I', 'N', 'G', '1'};
constexpr char kSlotMagic[8] = {'H', 'S', 'M', 'S', 'T', 'A', 'T', '1'};
constexpr std::size_t kStaticBytes = 64;   // magic, version, sizes, serial; crc32 at 64
constexpr std::size_t kLiveOffset = 128;   // live area: 64-bit atomics
constexpr std::size_t kSlotBytes = 512;    // crc32 in the last 4 bytes
constexpr std::size_t kSlotStride = 2048;  // slot i at i * kSlotStride of the state file
constexpr std::size_t kStateFileBytes = 4096;
constexpr std::size_t kMaxRingBytes = std::size_t{1} << 30;
constexpr std::uint32_t kFlagBlocked = 1;

// Live area word indices.
enum Live : std::size_t {
    kGen = 0,
    kEnd,
    kNextEntry,
    kNextSeq,
    kTail,
    kTailEntry,
    kAckedSeq,
    kBoot,
    kFlags,
    kEpoch,
    kPid,
    kCounters,  // 8 words
    kLiveWords = kCounters + 8,
};

Error corrupt(std::string what) {
    return make_error(errc::corrupt, std::move(what));
}

// Little-endian field packing for the static header and the state slots.
class Packer {
public:
    explicit Packer(std::uint8_t* p) : p_(p) {}
    void u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) p_[n_++] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    void u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) p_[n_++] = static_cast<std::uint8_t>(v >> (8 * i));
    }
    void raw(const void* d, std::size_t len) {
        std::memcpy(p_ + n_, d, len);
        n_ += len;
    }
    [[nodiscard]] std::size_t size() const { return n_; }

private:
    std::uint8_t* p_;
    std::size_t n_ = 0;
};

class Unpacker {
public:
    explicit Unpacker(const std::uint8_t* p) : p_(p) {}
    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= std::uint64_t{p_[n_++]} << (8 * i);
        return v;
    }
    std::uint32_t u32() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= std::uint32_t{p_[n_++]} << (8 * i);
        return v;
    }
    void raw(void* d, std::size_t len) {
        std::memcpy(d, p_ + n_, len);
        n_ += len;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_ = 0;
};

std::uint32_t get_u32(const std::uint8_t* p) {
    return Unpacker(p).u32();
}

void pack_counters(Packer& p, const Counters& c) {
    p.u64(c.op_requests);
    p.u64(c.op_errors);
    p.u64(c.crypto_requests);
    p.u64(c.crypto_errors);
    p.u64(c.critical_events);
    p.u64(c.noncritical_events);
    p.u64(c.refused_log_full);
    p.u64(c.unlogged_events);
}

Counters unpack_counters(Unpacker& u) {
    Counters c;
    c.op_requests = u.u64();
    c.op_errors = u.u64();
    c.crypto_requests = u.u64();
    c.crypto_errors = u.u64();
    c.critical_events = u.u64();
    c.noncritical_events = u.u64();
    c.refused_log_full = u.u64();
    c.unlogged_events = u.u64();
    return c;
}

std::array<std::uint64_t, 8> counters_words(const Counters& c) {
    return {c.op_requests,     c.op_errors,          c.crypto_requests,  c.crypto_errors,
            c.critical_events, c.noncritical_events, c.refused_log_full, c.unlogged_events};
}

void serialize_slot(const CommittedState& s, std::uint8_t* out) {
    std::memset(out, 0, kSlotBytes);
    Packer p(out);
    p.raw(kSlotMagic, 8);
    p.u64(s.gen);
    p.u64(s.end_pos);
    p.u64(s.next_entry);
    p.u64(s.tail_pos);
    p.u64(s.tail_entry);
    p.u64(s.acked_seq);
    p.u32(s.boot);
    p.u32(s.flags);
    pack_counters(p, s.counters);
    p.u64(s.head.epoch);
    p.u64(s.head.next_seq);
    p.raw(s.head.epoch_key.data(), 32);
    p.raw(s.head.last_mac.data(), 32);
    p.raw(s.head.digest.data(), 32);
    p.u64(s.head.segment_first_seq);
    p.u64(s.head.segment_records);
    const std::uint8_t open = s.head.segment_open ? 1 : 0;
    p.raw(&open, 1);
    Packer crc(out + kSlotBytes - 4);
    crc.u32(crc32_of({out, kSlotBytes - 4}));
}

bool parse_slot(const std::uint8_t* in, CommittedState& s) {
    if (std::memcmp(in, kSlotMagic, 8) != 0) return false;
    if (crc32_of({in, kSlotBytes - 4}) != get_u32(in + kSlotBytes - 4)) return false;
    Unpacker u(in + 8);
    s.gen = u.u64();
    s.end_pos = u.u64();
    s.next_entry = u.u64();
    s.tail_pos = u.u64();
    s.tail_entry = u.u64();
    s.acked_seq = u.u64();
    s.boot = u.u32();
    s.flags = u.u32();
    s.counters = unpack_counters(u);
    s.head.epoch = u.u64();
    s.head.next_seq = u.u64();
    u.raw(s.head.epoch_key.data(), 32);
    u.raw(s.head.last_mac.data(), 32);
    u.raw(s.head.digest.data(), 32);
    s.head.segment_first_seq = u.u64();
    s.head.segment_records = u.u64();
    std::uint8_t open = 0;
    u.raw(&open, 1);
    s.head.segment_open = open != 0;
    return true;
}

struct StaticHeader {
    std::uint64_t data_bytes = 0;
    std::uint64_t reserve = 0;
    std::string serial;
};

Result<StaticHeader> read_static(const MappedFile& m) {
    if (m.size() < kHeaderBytes + kMinRingBytes / 2) return corrupt(m.path() + ": too small to be a ring");
    const std::uint8_t* p = m.data();
    if (std::memcmp(p, kRingMagic, 8) != 0) return corrupt(m.path() + ": not a ring file (bad magic)");
    if (crc32_of({p, kStaticBytes}) != get_u32(p + kStaticBytes))
        return corrupt(m.path() + ": ring header checksum mismatch");
    Unpacker u(p + 8);
    const std::uint32_t version = u.u32();
    const std::uint32_t header = u.u32();
    StaticHeader h;
    h.data_bytes = u.u64();
    h.reserve = u.u64();
    char serial[33] = {};
    u.raw(serial, 32);
    h.serial = serial;
    if (version != kRingVersion)
        return corrupt(m.path() + ": ring version " + std::to_string(version) + " unsupported");
    if (header != kHeaderBytes || h.data_bytes + kHeaderBytes != m.size())
        return corrupt(m.path() + ": ring size does not match its header (truncated or extended file?)");
    if (h.reserve + kSealFloorBytes >= h.data_bytes) return corrupt(m.path() + ": reserve larger than the ring");
    return h;
}

std::atomic_ref<std::uint64_t> live_word(std::uint8_t* base, std::size_t i) {
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(base + kLiveOffset + 8 * i));
}

/// Parses the entry at logical `pos` (< end), first skipping a pad; `pos` becomes the entry's position.
Result<RawEntry> entry_at(const std::uint8_t* data, std::uint64_t cap, std::uint64_t& pos, std::uint64_t end) {
    std::uint64_t phys = pos % cap;
    if (data[phys] == static_cast<std::uint8_t>(EntryKind::pad)) {
        pos += cap - phys;
        phys = 0;
        if (pos >= end) return corrupt("ring: padding at the end of the committed entries");
    }
    const std::uint64_t avail = std::min(cap - phys, end - pos);
    auto e = parse_entry({data + phys, static_cast<std::size_t>(avail)});
    if (!e) return corrupt("ring at position " + std::to_string(pos) + ": " + e.error().message);
    return e;
}

}  // namespace

std::string RecoveryReport::summary() const {
    std::string s = "ring recovered from state slot generation " + std::to_string(slot_gen) + ": " +
                    std::to_string(entries) + " unacknowledged entries (" + std::to_string(records) + " records, " +
                    std::to_string(opens) + " opens, " + std::to_string(seals) + " seals)";
    if (entries > 0) s += ", entries " + std::to_string(first_entry) + ".." + std::to_string(last_entry);
    s += ", all checksums valid";
    if (!other_slot_valid) s += "; the other state slot was blank or torn (ignored)";
    if (discarded_unpublished)
        s += "; discarded one complete but uncommitted entry (its operation was never reported done)";
    if (discarded_torn) s += "; discarded a partially written entry after the committed end";
    return s;
}

RingPaths RingPaths::in_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    return {(fs::path(dir) / kRingFile).string(), (fs::path(dir) / kStateFile).string()};
}

Status RingWriter::create(const RingPaths& paths, const RingGeometry& g, std::string_view serial,
                          const mac::ChainHead& head) {
    if (g.file_bytes < kMinRingBytes || g.file_bytes > kMaxRingBytes)
        return make_error(errc::invalid_argument, "ring size must be between " + std::to_string(kMinRingBytes) +
                                                      " and " + std::to_string(kMaxRingBytes) + " bytes");
    if (serial.empty() || serial.size() > 32) return make_error(errc::invalid_argument, "serial must be 1-32 bytes");
    const std::uint64_t data_bytes = g.file_bytes - kHeaderBytes;
    const std::uint64_t reserve =
        g.reserve_bytes != 0 ? g.reserve_bytes : std::max<std::uint64_t>(4096, data_bytes / 16);
    if (reserve + kSealFloorBytes + kMaxEntryBytes / 8 >= data_bytes)
        return make_error(errc::invalid_argument, "ring reserve leaves no room for records");
    auto ring = MappedFile::create(paths.ring, g.file_bytes, 0640);
    if (!ring) return std::move(ring).error();
    auto state = MappedFile::create(paths.state, kStateFileBytes, 0600);
    if (!state) return std::move(state).error();
    std::uint8_t* p = ring->data();
    Packer pk(p);
    pk.raw(kRingMagic, 8);
    pk.u32(kRingVersion);
    pk.u32(static_cast<std::uint32_t>(kHeaderBytes));
    pk.u64(data_bytes);
    pk.u64(reserve);
    char ser[32] = {};
    std::memcpy(ser, serial.data(), serial.size());
    pk.raw(ser, 32);
    Packer crc(p + kStaticBytes);
    crc.u32(crc32_of({p, kStaticBytes}));
    CommittedState s;
    s.gen = 1;
    s.head = head;
    serialize_slot(s, state->data());
    HSMAUDIT_TRY(state->sync(0, kStateFileBytes));
    HSMAUDIT_TRY(ring->sync(0, kHeaderBytes));
    return {};
}

Result<RingWriter> RingWriter::open(const RingPaths& paths, const RingOptions& options) {
    RingWriter w;
    w.options_ = options;
    auto state = MappedFile::open(paths.state, MappedFile::Mode::read_write, /*lock=*/true);
    if (!state) return std::move(state).error();
    if (state->size() != kStateFileBytes) return corrupt(paths.state + ": wrong size for a state file");
    auto ring = MappedFile::open(paths.ring, MappedFile::Mode::read_write);
    if (!ring) return std::move(ring).error();
    auto hdr = read_static(*ring);
    if (!hdr) return std::move(hdr).error();
    w.capacity_ = hdr->data_bytes;
    w.reserve_ = hdr->reserve;
    w.serial_ = hdr->serial;

    // The newest slot with a valid checksum is the committed state.
    CommittedState slots[2];
    const bool ok0 = parse_slot(state->data(), slots[0]);
    const bool ok1 = parse_slot(state->data() + kSlotStride, slots[1]);
    if (!ok0 && !ok1) return corrupt(paths.state + ": no valid state slot");
    const int pick = (ok0 && ok1) ? (slots[1].gen > slots[0].gen ? 1 : 0) : (ok0 ? 0 : 1);
    w.state_ = slots[pick];
    w.recovery_.slot_gen = w.state_.gen;
    w.recovery_.other_slot_valid = ok0 && ok1;

    CommittedState& s = w.state_;
    const std::uint64_t cap = w.capacity_;
    if (s.tail_pos > s.end_pos || s.end_pos - s.tail_pos > cap || s.tail_entry > s.next_entry || s.head.next_seq == 0 ||
        s.acked_seq >= s.head.next_seq)
        return corrupt(paths.state + ": inconsistent positions in the committed state");

    // Walk every committed, unacknowledged entry: checksums, entry numbers and sequence numbers.
    const std::uint8_t* data = ring->data() + kHeaderBytes;
    std::uint64_t pos = s.tail_pos;
    std::uint64_t expect_entry = s.tail_entry;
    std::uint64_t expect_seq = s.acked_seq + 1;
    RecoveryReport& r = w.recovery_;
    while (pos < s.end_pos) {
        auto e = entry_at(data, cap, pos, s.end_pos);
        if (!e) return corrupt(paths.ring + ": " + e.error().message);
        if (e->entry_no != expect_entry)
            return corrupt(paths.ring + ": entry number " + std::to_string(e->entry_no) + " where " +
                           std::to_string(expect_entry) + " was expected");
        if (e->kind == EntryKind::record) {
            if (e->seq != expect_seq)
                return corrupt(paths.ring + ": record sequence " + std::to_string(e->seq) + " where " +
                               std::to_string(expect_seq) + " was expected");
            ++expect_seq;
            ++r.records;
        } else if (e->kind == EntryKind::open) {
            ++r.opens;
        } else {
            ++r.seals;
        }
        if (r.entries++ == 0) r.first_entry = e->entry_no;
        r.last_entry = e->entry_no;
        ++expect_entry;
        pos += e->bytes.size();
    }
    if (pos != s.end_pos || expect_entry != s.next_entry || expect_seq != s.head.next_seq)
        return corrupt(paths.ring + ": committed state does not match the entries in the ring");

    // Look past the committed end: what a crash in the middle of an append left behind.
    const std::uint64_t free = cap - (s.end_pos - s.tail_pos);
    const std::uint64_t phys = s.end_pos % cap;
    const std::uint64_t avail = std::min(free, cap - phys);
    if (avail > 0 && data[phys] != static_cast<std::uint8_t>(EntryKind::pad)) {
        auto e = parse_entry({data + phys, static_cast<std::size_t>(avail)});
        const std::uint8_t k = data[phys];
        if (e && e->entry_no == s.next_entry) {
            r.discarded_unpublished = true;
        } else if (!e && (k == static_cast<std::uint8_t>(EntryKind::record) ||
                          k == static_cast<std::uint8_t>(EntryKind::open) ||
                          k == static_cast<std::uint8_t>(EntryKind::seal))) {
            // Either a torn new entry or an old, already acknowledged one partly overwritten: both harmless.
            r.discarded_torn = true;
        }
    }

    w.ring_ = std::make_shared<MappedFile>(std::move(*ring));
    w.state_file_ = std::move(*state);
    live_word(w.ring_->data(), kGen).store(0, std::memory_order_release);  // reset a seqlock a crash left odd
    w.publish();
    return w;
}

RingWriter::RingWriter(RingWriter&&) noexcept = default;
RingWriter& RingWriter::operator=(RingWriter&&) noexcept = default;

RingWriter::~RingWriter() {
    if (ring_) live_word(ring_->data(), kPid).store(0, std::memory_order_release);
    mac::secure_zero(state_.head.epoch_key.data(), state_.head.epoch_key.size());
}

std::int64_t RingWriter::free_after(std::span<const std::size_t> sizes) const {
    std::uint64_t pos = state_.end_pos;
    for (std::size_t n : sizes) {
        const std::uint64_t room = capacity_ - pos % capacity_;
        if (n > room) pos += room;
        pos += n;
    }
    return static_cast<std::int64_t>(capacity_) - static_cast<std::int64_t>(pos - state_.tail_pos);
}

void RingWriter::set_blocked(bool blocked) {
    if (blocked)
        state_.flags |= kFlagBlocked;
    else
        state_.flags &= ~kFlagBlocked;
}

Status RingWriter::commit(std::span<const std::string_view> entries, const mac::ChainHead& head) {
    std::size_t sizes[8];
    if (entries.size() > std::size(sizes)) return make_error(errc::invalid_argument, "too many entries in one commit");
    for (std::size_t i = 0; i < entries.size(); ++i) {
        sizes[i] = entries[i].size();
        if (sizes[i] > kMaxEntryBytes || sizes[i] > capacity_ / 4)
            return make_error(errc::invalid_argument, "entry of " + std::to_string(sizes[i]) + " bytes is too large");
        // Check what the caller encoded: a wrong entry number would corrupt the ring for every reader.
        auto e = parse_entry(mac::as_bytes(entries[i]));
        if (!e || e->bytes.size() != sizes[i] || e->entry_no != state_.next_entry + i)
            return make_error(errc::invalid_argument, "commit: entry " + std::to_string(i) + " is malformed");
    }
    if (free_after({sizes, entries.size()}) < 0)
        return make_error(errc::log_full, "audit ring full: entries do not fit until the agent acknowledges");
    std::uint8_t* data = ring_->data() + kHeaderBytes;
    const std::uint64_t old_end = state_.end_pos;
    std::uint64_t pos = old_end;
    for (const auto& e : entries) {
        const std::uint64_t phys = pos % capacity_;
        const std::uint64_t room = capacity_ - phys;
        if (e.size() > room) {
            data[phys] = static_cast<std::uint8_t>(EntryKind::pad);
            pos += room;
        }
        std::memcpy(data + pos % capacity_, e.data(), e.size());
        pos += e.size();
    }
    state_.end_pos = pos;
    state_.next_entry += entries.size();
    state_.head = head;
    if (options_.sync_each_commit) HSMAUDIT_TRY(sync_range(old_end, pos));
    write_slot();
    publish();
    return {};
}

Status RingWriter::commit_state() {
    write_slot();
    publish();
    return {};
}

Status RingWriter::ack_through(std::uint64_t entry_no) {
    if (entry_no >= state_.next_entry)
        return make_error(errc::invalid_argument, "cannot acknowledge entry " + std::to_string(entry_no) +
                                                      ": the newest entry is " + std::to_string(state_.next_entry - 1));
    if (entry_no < state_.tail_entry) return {};  // already acknowledged: idempotent
    const std::uint8_t* data = ring_->data() + kHeaderBytes;
    std::uint64_t pos = state_.tail_pos;
    std::uint64_t tail_entry = state_.tail_entry;
    std::uint64_t acked_seq = state_.acked_seq;
    while (pos < state_.end_pos && tail_entry <= entry_no) {
        auto e = entry_at(data, capacity_, pos, state_.end_pos);
        if (!e) return std::move(e).error();
        if (e->kind == EntryKind::record) acked_seq = e->seq;
        pos += e->bytes.size();
        tail_entry = e->entry_no + 1;
    }
    state_.tail_pos = pos;
    state_.tail_entry = tail_entry;
    state_.acked_seq = acked_seq;
    write_slot();
    publish();
    return {};
}

Status RingWriter::sync_range(std::uint64_t from_pos, std::uint64_t to_pos) {
    if (to_pos <= from_pos) return {};
    const std::uint64_t a = from_pos % capacity_;
    const std::uint64_t len = to_pos - from_pos;
    if (a + len <= capacity_) return ring_->sync(kHeaderBytes + a, len);
    HSMAUDIT_TRY(ring_->sync(kHeaderBytes + a, capacity_ - a));
    return ring_->sync(kHeaderBytes, a + len - capacity_);
}

void RingWriter::write_slot() {
    // The slot not holding the newest state is overwritten; a crash in the middle leaves it with a bad
    // checksum and the other slot (the previous commit) wins on recovery.
    ++state_.gen;
    std::uint8_t buf[kSlotBytes];
    serialize_slot(state_, buf);
    std::memcpy(state_file_.data() + (state_.gen % 2) * kSlotStride, buf, kSlotBytes);
    mac::secure_zero(buf, sizeof buf);
    if (options_.sync_each_commit) (void)state_file_.sync((state_.gen % 2) * kSlotStride, kSlotBytes);
}

void RingWriter::publish() {
    std::uint8_t* base = ring_->data();
    auto gen = live_word(base, kGen);
    const std::uint64_t g = gen.load(std::memory_order_relaxed);
    gen.store(g + 1, std::memory_order_release);
    // Release stores everywhere: no data store may become visible before the odd generation.
    const auto put = [&](std::size_t i, std::uint64_t v) { live_word(base, i).store(v, std::memory_order_release); };
    put(kEnd, state_.end_pos);
    put(kNextEntry, state_.next_entry);
    put(kNextSeq, state_.head.next_seq);
    put(kTail, state_.tail_pos);
    put(kTailEntry, state_.tail_entry);
    put(kAckedSeq, state_.acked_seq);
    put(kBoot, state_.boot);
    put(kFlags, state_.flags);
    put(kEpoch, state_.head.epoch);
    put(kPid, static_cast<std::uint64_t>(::getpid()));
    const auto words = counters_words(state_.counters);
    for (std::size_t i = 0; i < words.size(); ++i) put(kCounters + i, words[i]);
    gen.store(g + 2, std::memory_order_release);
}

RingReader RingWriter::reader() const {
    return RingReader(ring_, serial_, capacity_, reserve_);
}

void RingWriter::write_uncommitted_for_test(std::span<const std::uint8_t> bytes) {
    std::uint8_t* data = ring_->data() + kHeaderBytes;
    const std::uint64_t phys = state_.end_pos % capacity_;
    std::memcpy(data + phys, bytes.data(), std::min<std::size_t>(bytes.size(), capacity_ - phys));
}

Result<RingReader> RingReader::open(const std::string& ring_path) {
    auto ring = MappedFile::open(ring_path, MappedFile::Mode::read_only);
    if (!ring) return std::move(ring).error();
    auto hdr = read_static(*ring);
    if (!hdr) return std::move(hdr).error();
    return RingReader(std::make_shared<const MappedFile>(std::move(*ring)), hdr->serial, hdr->data_bytes, hdr->reserve);
}

RingStatus RingReader::status() const {
    auto* base = map_->data();
    RingStatus s;
    std::uint64_t w[kLiveWords];
    for (int attempt = 0;; ++attempt) {
        const std::uint64_t g1 = live_word(base, kGen).load(std::memory_order_acquire);
        if ((g1 & 1) != 0 && attempt < 100000) {
            if (attempt > 64) ::sched_yield();
            continue;
        }
        for (std::size_t i = 1; i < kLiveWords; ++i) w[i] = live_word(base, i).load(std::memory_order_acquire);
        const std::uint64_t g2 = live_word(base, kGen).load(std::memory_order_acquire);
        if (g1 == g2 || attempt >= 100000) break;  // a writer that died mid-publish: best effort
    }
    s.serial = serial_;
    s.capacity = capacity_;
    s.reserve = reserve_;
    s.end_pos = w[kEnd];
    s.next_entry = w[kNextEntry];
    s.next_seq = w[kNextSeq];
    s.tail_pos = w[kTail];
    s.oldest_entry = w[kTailEntry];
    s.oldest_seq = w[kAckedSeq] + 1;
    s.used_bytes = s.end_pos - s.tail_pos;
    s.boot = static_cast<std::uint32_t>(w[kBoot]);
    s.blocked = (w[kFlags] & kFlagBlocked) != 0;
    s.epoch = w[kEpoch];
    s.writer_pid = w[kPid];
    Counters& c = s.counters;
    c.op_requests = w[kCounters + 0];
    c.op_errors = w[kCounters + 1];
    c.crypto_requests = w[kCounters + 2];
    c.crypto_errors = w[kCounters + 3];
    c.critical_events = w[kCounters + 4];
    c.noncritical_events = w[kCounters + 5];
    c.refused_log_full = w[kCounters + 6];
    c.unlogged_events = w[kCounters + 7];
    return s;
}

Result<std::size_t> RingReader::read_after(std::uint64_t after, std::size_t max, std::vector<EntryView>& out) {
    const RingStatus s = status();
    const std::uint64_t want = after + 1;
    if (want < s.oldest_entry)
        return make_error(errc::overrun, "entries " + std::to_string(want) + ".." + std::to_string(s.oldest_entry - 1) +
                                             " were acknowledged and are gone");
    if (want >= s.next_entry || max == 0) return std::size_t{0};
    const std::uint8_t* data = map_->data() + kHeaderBytes;
    std::uint64_t pos = s.tail_pos;
    std::uint64_t eno = s.oldest_entry;
    if (cursor_entry_ != 0 && cursor_entry_ <= want && cursor_entry_ >= s.oldest_entry && cursor_pos_ >= s.tail_pos) {
        pos = cursor_pos_;
        eno = cursor_entry_;
    }
    const std::uint64_t start_pos = pos;
    std::size_t n = 0;
    while (pos < s.end_pos && n < max) {
        auto e = entry_at(data, capacity_, pos, s.end_pos);
        if (!e || e->entry_no != eno) {
            // Garbage is only possible where the writer reused acknowledged space under a slow reader.
            out.resize(out.size() - n);
            cursor_entry_ = 0;
            if (status().tail_pos > start_pos)
                return make_error(errc::overrun, "entries were acknowledged and reused while being read");
            if (!e) return std::move(e).error();
            return corrupt("ring: entry number " + std::to_string(e->entry_no) + " where " + std::to_string(eno) +
                           " was expected");
        }
        if (eno >= want) {
            out.push_back(EntryView{*e, pos});
            ++n;
        }
        pos += e->bytes.size();
        ++eno;
    }
    // A reader that is not the one acknowledging may have raced with an ack and the writer reusing the
    // bytes it just read: if the tail moved past where we started, what we read cannot be trusted.
    if (status().tail_pos > start_pos) {
        out.resize(out.size() - n);
        cursor_entry_ = 0;
        return make_error(errc::overrun, "entries were acknowledged and reused while being read");
    }
    cursor_pos_ = pos;
    cursor_entry_ = eno;
    return n;
}

}  // namespace hsmaudit::hsmcore::ring
