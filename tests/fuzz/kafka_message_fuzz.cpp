// libFuzzer target for fleet verification's inputs from Kafka (exporters/kafka/fleet_verify.h):
// the verification state committed as offset metadata (decode_states) and the audit topic's
// messages (their entry/kind/epoch headers and `line` header) fed to an ApplianceStream holding the
// fixed fuzz key, then the report rendered as `hsmaudit verify --kafka --json` prints it.
//
// Input: the first line is the committed metadata; every further line is one message's headers,
// read through stream_message() as the consumer reads them:
//   "<entry> <epoch> <line>"   entry: record, open, seal, checkpoint (kind=checkpoints) or else;
//                              "-" leaves a header out.
// Epoch key derivation walks one HMAC per epoch, so (as wrapped_key_fuzz bounds scrypt) inputs
// naming an epoch above kMaxEpoch are skipped: their cost is the design's, not a defect. Without
// a committed state in the first line, the chain resumes at epoch 0 (see below).
// Properties checked besides "no crash": decoded state re-encodes to text that decodes the same;
// the JSON report renders without an exception whatever bytes the messages held.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/json_text.h"
#include "exporters/kafka/fleet_verify.h"
#include "mac/record.h"
#include "tests/fuzz/fuzz_keys.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::exporters::kafka;

constexpr std::uint64_t kMaxEpoch = 4096;
constexpr std::string_view kSerial = "150123";  // the seed corpus's module

bool same(const ChainState& a, const ChainState& b) {
    return a.epoch == b.epoch && a.epoch_known == b.epoch_known && a.next_seq == b.next_seq &&
           a.last_mac == b.last_mac && a.mac_known == b.mac_known && a.boot == b.boot &&
           a.last_time_ms == b.last_time_ms;
}

/// True if some "epoch=<digits>" in `text` is above kMaxEpoch.
bool names_far_epoch(std::string_view text) {
    for (auto at = text.find("epoch="); at != std::string_view::npos; at = text.find("epoch=", at + 1)) {
        std::size_t end = at + 6;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        std::uint64_t v = 0;
        if (end - (at + 6) > 6 || (mac::parse_u64(text.substr(at + 6, end - at - 6), v) && v > kMaxEpoch)) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fuzz::FixedKeys keys = fuzz::fixed_keys();
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (names_far_epoch(in)) return 0;
    const auto nl = in.find('\n');
    const std::string_view meta = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);

    std::optional<ChainState> resume;
    if (auto states = decode_states(meta)) {
        auto again = decode_states(encode_states(*states));
        if (!again || again->size() != states->size()) std::abort();
        for (const auto& [serial, s] : *states) {
            const auto it = again->find(serial);
            if (it == again->end() || !same(s, it->second)) std::abort();
            if (s.epoch > kMaxEpoch) return 0;
        }
        if (auto it = states->find(kSerial); it != states->end()) resume = it->second;
    }

    ApplianceStream chain(std::string(kSerial), keys.key, std::nullopt, 16);
    if (!resume) {
        // Without committed state the verifier searches 4096 epochs per record, which under ASan
        // takes most of a second: start from epoch 0 known instead (a metadata line with epoch "-"
        // still reaches the search).
        resume.emplace();
        resume->epoch_known = true;
    }
    chain.resume(*resume);
    std::uint64_t offset = 0;
    while (!in.empty()) {
        const auto end = in.find('\n');
        std::string_view msg = in.substr(0, end);
        in = end == std::string_view::npos ? std::string_view{} : in.substr(end + 1);
        const auto sp1 = msg.find(' ');
        const std::string_view entry = msg.substr(0, sp1);
        msg = sp1 == std::string_view::npos ? std::string_view{} : msg.substr(sp1 + 1);
        const auto sp2 = msg.find(' ');
        const std::string_view epoch = msg.substr(0, sp2);
        const std::string_view line = sp2 == std::string_view::npos ? std::string_view{} : msg.substr(sp2 + 1);
        std::uint64_t e = 0;
        if (mac::parse_u64(epoch, e) && e > kMaxEpoch) return 0;
        // The headers as the exporter sets them; "-" leaves one out.
        const StreamMessage m =
            stream_message("audit[0]", offset++, [&](const char* name) -> std::optional<std::string_view> {
                const std::string_view n(name);
                if (n == "kind")
                    return entry == "checkpoint" ? std::optional<std::string_view>("checkpoints") : std::nullopt;
                if (n == "entry") return entry == "-" ? std::nullopt : std::optional<std::string_view>(entry);
                if (n == "epoch") return epoch == "-" ? std::nullopt : std::optional<std::string_view>(epoch);
                if (n == "line") return line == "-" ? std::nullopt : std::optional<std::string_view>(line);
                return std::nullopt;
            });
        if (m.epoch && *m.epoch != e) std::abort();
        chain.feed(m);
    }
    chain.finish(std::int64_t{60'000}, 1'795'500'000'000);
    (void)encode_states({{std::string(kSerial), chain.state()}});
    FleetReport report;
    report.topic = "audit";
    report.serials.push_back(chain.report());
    (void)base::json_text(render_fleet_json(report));
    (void)render_fleet_text(report);
    return 0;
}
