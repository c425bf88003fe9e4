// libFuzzer target for the module's control-socket protocol (hsmcore/host/control_protocol.h):
// the reply lines the agent's host reads from `hsmcore serve` (parse_reply, ReplyFields) and the
// word splitting both sides use. Input: one or more lines; each is parsed as a reply.
// Properties checked besides "no crash": no word is empty or holds a space, and an OK reply's
// fields are exactly its words' key=value pairs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hsmcore/host/control_protocol.h"

using namespace hsmaudit::hsmcore::host;

namespace {

void one_line(std::string_view line) {
    for (auto w : split_words(line))
        if (w.empty() || w.find(' ') != std::string_view::npos) std::abort();
    auto r = parse_reply(line);
    if (!r) {
        (void)r.error().describe();
        return;
    }
    if (line.substr(0, 2) != "OK") std::abort();
    if (r->fields.size() != split_words(line.substr(2)).size()) std::abort();
    for (const auto& [k, v] : r->fields) {
        if (r->get(k).data() == nullptr && !v.empty()) std::abort();
        (void)r->get_u64(k);
    }
    (void)r->get_u64("seq");
    (void)r->get("");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (in.size() > kMaxRequestBytes) return 0;
    one_line(in);
    while (!in.empty()) {
        const auto nl = in.find('\n');
        one_line(in.substr(0, nl));
        if (nl == std::string_view::npos) break;
        in.remove_prefix(nl + 1);
    }
    return 0;
}
