// libFuzzer target for the syslog collector's parsers of outside input: parse_message (RFC 5424,
// RFC 3164, the appliance's file lines) and the TCP StreamFramer (octet counting / LF, per connection).
// Properties checked besides "no crash": text fields are safe text (to_safe_text is the identity on
// them), raw is the input when nothing was escaped, and no frame exceeds the maximum.
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
    if (to_safe_text(m.msg) != m.msg || to_safe_text(m.hostname) != m.hostname) std::abort();
    if (!m.raw_escaped && in.substr(0, m.raw.size()) != m.raw) std::abort();

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
