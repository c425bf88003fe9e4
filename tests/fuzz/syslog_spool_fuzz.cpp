// libFuzzer target for the syslog spool's payload (agent/engine/store/syslog_payload.h), the round
// trip every received message takes: parse (collectors/syslog) -> the agent's fields
// (SyslogIntake's syslog_fields_of) -> spool payload -> spool line "<n> <time> <payload> h=<hex>"
// -> parse_spool_line -> decode -> the same fields, byte for byte. Also: the payload is one line of
// valid JSON (no raw LF or CR, which would split the spool line), within the bound the reader
// accepts; and decoding the raw input as if it were a payload (a damaged or hostile spool line)
// never crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/daemon/syslog_intake.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/syslog_payload.h"
#include "collectors/syslog/parser.h"

using namespace hsmaudit;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    (void)agent::decode_syslog_payload(in);  // hostile payloads

    collectors::syslog::SyslogMessage m = collectors::syslog::parse_message(in);
    m.transport = collectors::syslog::Transport::tcp;
    m.peer = std::string(in.substr(0, 16));  // any bytes, as a unix path may be
    const agent::SyslogFields fields = agent::syslog_fields_of(m);
    const std::string payload = agent::syslog_spool_payload(m, 1 << 20);
    if (payload.find('\n') != std::string::npos || payload.find('\r') != std::string::npos) std::abort();
    if (payload.size() > agent::max_syslog_payload_bytes(size)) std::abort();
    if (!agent::is_valid_utf8(payload)) std::abort();

    const std::string line = "42 2026-11-24T06:29:00.000Z " + payload + " h=" + std::string(64, 'a');
    const auto view = agent::parse_spool_line(line);
    if (!view || view->number != 42 || !view->h || view->payload != payload) std::abort();
    const auto back = agent::decode_syslog_payload(view->payload);
    if (!back || !(*back == fields)) std::abort();
    if (back->raw != in) std::abort();
    return 0;
}
