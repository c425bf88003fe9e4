// libFuzzer target for the module's ring entry codec (hsmcore/ring/entry_codec.h): the agent
// decodes every entry it drains from the ring, whose bytes a damaged or hostile NVRAM image controls.
//
// Each input is decoded twice: as it is (a run of entries, as the drain walks them; the CRC keeps
// most mutations out), and with a header and CRC made to fit (first byte: the kind; the rest: the
// body), so the body decoders see every mutation. Properties checked besides "no crash": an entry
// never claims more bytes than it was given, and a decoded record encodes to an entry that decodes
// to the same record and MAC.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "hsmcore/ring/entry_codec.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::hsmcore::ring;

constexpr std::string_view kSerial = "150123";

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void check_record(const RawEntry& e) {
    mac::AuditRecord rec;
    mac::Mac m{};
    if (!decode_record(e, kSerial, rec, m)) return;
    std::string again;
    encode_record_entry(e.entry_no, rec, m, again);
    auto e2 = parse_entry(bytes_of(again));
    if (!e2 || e2->bytes.size() != again.size() || e2->entry_no != e.entry_no || e2->seq != e.seq) std::abort();
    mac::AuditRecord rec2;
    mac::Mac m2{};
    if (!decode_record(*e2, kSerial, rec2, m2) || !(rec2 == rec) || m2 != m) std::abort();
}

void walk(std::span<const std::uint8_t> data) {
    std::size_t off = 0;
    while (off < data.size()) {
        auto e = parse_entry(data.subspan(off));
        if (!e) return;
        if (e->bytes.empty() || e->bytes.size() > data.size() - off) std::abort();
        std::string line;
        (void)render_entry_line(*e, kSerial, line);
        if (e->kind == EntryKind::record)
            check_record(*e);
        else
            (void)entry_line(*e);
        off += e->bytes.size();
    }
}

void put_varint(std::uint64_t v, std::string& out) {
    while (v >= 0x80) {
        out += static_cast<char>((v & 0x7F) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    walk({data, size});
    if (size == 0) return 0;
    static constexpr std::uint8_t kKinds[] = {0xA1, 0xA2, 0xA3};
    std::string entry;
    entry += static_cast<char>(kKinds[data[0] % 3]);
    put_varint(size - 1, entry);
    entry.append(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::uint32_t crc = crc32_of(bytes_of(entry));
    for (int i = 0; i < 4; ++i) entry += static_cast<char>((crc >> (8 * i)) & 0xFF);
    walk(bytes_of(entry));
    return 0;
}
