// libFuzzer target for the syslog collector's parsers of outside input: parse_message (RFC 5424,
// RFC 3164, the appliance's file lines) and the TCP StreamFramer (octet counting / LF, per connection).
// Properties checked besides "no crash": raw is the input exactly (any bytes), the MSG is the input's
// tail (less one line end), every SD value and header field is a slice of it or an unescaping of one
// (never longer than the input), and no frame exceeds the maximum. The spool round trip of what this
// parser produces is syslog_spool_fuzz.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/syslog/framing.h"
#include "collectors/syslog/parser.h"

using namespace hsmaudit::collectors::syslog;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const SyslogMessage m = parse_message(in);
    if (m.raw != in) std::abort();
    if (!without_line_end(in).ends_with(m.msg)) std::abort();
    if (in.find(m.hostname) == std::string_view::npos || in.find(m.timestamp_text) == std::string_view::npos)
        std::abort();
    std::size_t sd_bytes = 0;
    for (const auto& e : m.structured_data) {
        sd_bytes += e.id.size();
        for (const auto& p : e.params) sd_bytes += p.name.size() + p.value.size();
    }
    if (sd_bytes > in.size()) std::abort();
    if (m.timestamp_has_zone && !m.timestamp) std::abort();

    constexpr std::size_t kMax = 256;
    StreamFramer framer(kMax);
    std::vector<Frame> frames;
    // Uneven pieces, so that split points inside counts and frames are exercised.
    std::size_t pos = 0;
    std::size_t step = 1;
    while (pos < size) {
        const std::size_t n = std::min(step, size - pos);
        framer.feed(in.substr(pos, n), frames);
        pos += n;
        step = step * 3 % 17 + 1;
    }
    framer.finish(frames);
    for (const auto& f : frames) {
        if (f.bytes.size() > kMax) std::abort();
        (void)parse_message(f.bytes);
    }
    return 0;
}
