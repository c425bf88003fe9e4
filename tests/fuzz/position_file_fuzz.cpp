// libFuzzer target for the audit store's position file (<state>/audit/position: two 512-byte
// slots, each a text line with a checksum) through its public readers read_position_file() and
// read_store_position(). The file is on disk, so damage controls its bytes.
//
// Input: first byte = mode; the rest is the file. Mode bit 0 set: each slot's first line gets a
// valid " sum=" (the checksum over the text before it) so the field parser sees every mutation.
// Properties checked besides "no crash": a readable file is never an I/O error; `current` names a
// valid slot with the higher generation; read_store_position agrees with it.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/engine/store/audit_store.h"
#include "mac/crypto.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace {

using namespace hsmaudit;

constexpr std::size_t kSlotBytes = agent::kPositionSlotBytes;  // the format's owner: audit_store.h

std::string with_sum(std::string_view slot) {
    std::string_view text = slot.substr(0, slot.find('\n'));
    if (const auto at = text.rfind(" sum="); at != std::string_view::npos) text = text.substr(0, at);
    if (text.size() > kSlotBytes - 24) text = text.substr(0, kSlotBytes - 24);
    auto sha = mac::Sha256::create();
    if (!sha) std::abort();
    const mac::Bytes32 sum = sha->compute(mac::as_bytes(text));
    std::string out(text);
    out += " sum=" + mac::hex_encode(mac::ByteView(sum.data(), 8)) + "\n";
    out.resize(kSlotBytes, '\0');
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 4 * kSlotBytes) return 0;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string file;
    if (data[0] & 1) {
        file = with_sum(in.substr(0, std::min(in.size(), kSlotBytes)));
        if (in.size() > kSlotBytes) file += with_sum(in.substr(kSlotBytes, kSlotBytes));
    } else {
        file.assign(in);
    }
    const auto dir = fuzz::temp_dir() / "audit";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    fuzz::write_file(dir / "position", file);

    auto st = agent::read_position_file(dir.string());
    if (!st) std::abort();
    if (st->file_bytes != file.size()) std::abort();
    for (int i = 0; i < 2; ++i)
        if (st->slots[i] && st->slot_empty[i]) std::abort();
    if (st->current >= 0) {
        if (st->current > 1 || !st->slots[st->current]) std::abort();
        const auto& other = st->slots[1 - st->current];
        if (other && other->generation > st->slots[st->current]->generation) std::abort();
    }
    auto pos = agent::read_store_position(dir.string());
    if (st->current >= 0 && (!pos || pos->generation != st->slots[st->current]->generation)) std::abort();
    if (pos) (void)pos->chain_end();
    return 0;
}
