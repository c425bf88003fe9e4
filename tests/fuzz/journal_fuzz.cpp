// libFuzzer target for the journal collector's parsers of outside input: a journal entry's fields (any
// local process writes them; sd-journal hands them over as bytes) mapped to a syslog message, and the
// cursor file read back at start. The input is the cursor file's text, then, after the first NUL, the
// entry's fields "FIELD=value" separated by NUL. Properties besides "no crash": the header fields (app,
// procid, host) are safe text, MESSAGE's bytes are msg and raw exactly (cut at the maximum, flagged),
// the structured data's values are the fields' bytes, a severity is 0..7, and a cursor file that parses
// writes back to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collectors/journal/cursor_file.h"
#include "collectors/journal/entry_mapping.h"
#include "collectors/syslog/parser.h"

using namespace hsmaudit::collectors;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto nul = in.find('\0');
    const std::string_view cursor_text = in.substr(0, nul);
    if (auto c = journal::parse_cursor_file(cursor_text)) {
        if (journal::cursor_file_text(*c) != cursor_text) std::abort();
    }
    if (nul == std::string_view::npos) return 0;
    in.remove_prefix(nul + 1);

    journal::RawEntry e;
    e.realtime_usec = size * 1'000'003ULL;
    while (!in.empty()) {
        const auto end = in.find('\0');
        const std::string_view field = in.substr(0, end);
        const auto eq = field.find('=');
        if (eq != std::string_view::npos) e.fields.emplace_back(field.substr(0, eq), field.substr(eq + 1));
        if (end == std::string_view::npos) break;
        in.remove_prefix(end + 1);
    }
    journal::MappingOptions o;
    o.max_message_bytes = 64;
    const auto m = journal::map_entry(e, o);
    for (const std::string* t : {&m.app_name, &m.procid, &m.hostname})
        if (syslog::to_safe_text(*t) != *t) std::abort();
    for (const auto& sd : m.structured_data)
        for (const auto& p : sd.params) {
            const std::string* v = e.find(p.name);
            if (v == nullptr || *v != p.value) std::abort();
        }
    if (m.severity < -1 || m.severity > 7 || m.facility < -1 || m.facility > 23) std::abort();
    if (const auto* msg = e.find("MESSAGE")) {
        const std::string_view kept = std::string_view(*msg).substr(0, o.max_message_bytes);
        if (kept != m.msg || m.raw != m.msg || m.oversized != (msg->size() > o.max_message_bytes)) std::abort();
    }
    return 0;
}
