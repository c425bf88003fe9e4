// libFuzzer target for the HEC exporter's parsers of what a (possibly hostile) HEC endpoint
// answers: parse_event_reply ({"text","code","ackId"}), parse_ack_reply ({"acks":{"id":bool}}),
// and classify() on the result. Properties checked besides "no crash": text is printable ASCII and
// bounded; the ack pairs feed an AckTracker whose prefix never exceeds what was added and never
// decreases.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "exporters/hec/protocol.h"

using namespace hsmaudit::exporters::hec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto reply = parse_event_reply(in);
    if (reply) {
        if (reply->text.size() > 210) std::abort();
        for (char c : reply->text)
            if (c < 0x20 || c > 0x7e) std::abort();
        const long status = size > 0 ? 100 + static_cast<long>(data[0]) * 2 : 200;
        (void)classify(status, std::optional<EventReply>(*reply), "fuzz");
    }
    (void)classify(503, std::nullopt, "fuzz");

    auto acks = parse_ack_reply(in);
    if (acks) {
        AckTracker t;
        const auto now = AckTracker::Clock::now();
        for (std::uint64_t id = 0; id < 64; ++id)
            if (!t.add_pending(id % 7 + 1, id, now)) std::abort();
        std::uint64_t last = 0;
        for (const auto& [id, indexed] : *acks) {
            if (indexed) t.acknowledge(id);
            if (t.prefix() < last || t.prefix() > t.added()) std::abort();
            last = t.prefix();
        }
    }
    return 0;
}
