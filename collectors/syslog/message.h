// The parsed syslog message, and the sink interface the collector delivers messages to.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hsmaudit::collectors::syslog {

/// How a message reached us.
enum class Transport : std::uint8_t { none, unix_datagram, udp, tcp, file, journal };

/// Which grammar the message matched.
enum class SyslogFormat : std::uint8_t {
    unknown,     // nothing matched (the message is malformed; see raw)
    rfc5424,     // <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]
    rfc3164,     // <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG (also with an RFC 3339 timestamp)
    luna_file,   // 2012 Feb 29 12:05:01 myLuna local5 info NTLS [1234]: MSG (appliance log files)
    plain_file,  // Mmm dd hh:mm:ss HOST TAG[PID]: MSG or an RFC 3339 timestamp first, no PRI (log files)
    journal,     // an entry of the systemd journal, mapped field by field (collectors/journal)
};

const char* to_string(Transport t) noexcept;
const char* to_string(SyslogFormat f) noexcept;

struct SdParam {
    std::string name;
    std::string value;  // unescaped (\" \\ \] as " \ ]), otherwise the received bytes
};

struct SdElement {
    std::string id;
    std::vector<SdParam> params;
};

/// One received syslog message. Every field holds the bytes it was cut from, exactly (any byte: LF, CR,
/// NUL, backslashes, invalid UTF-8; nothing is escaped here: each output format escapes once, by its own
/// rules). `raw` is the message exactly as received (a datagram, an octet-counted or LF-framed frame
/// without its LF, a file line without its LF). The MSG excludes one trailing line end (LF, CR LF, NUL).
/// A value type; safe to move between threads.
struct SyslogMessage {
    Transport transport = Transport::none;
    std::string peer;  // "127.0.0.1:5514", a unix socket path, or the file followed
    SyslogFormat format = SyslogFormat::unknown;
    int facility = -1;  // 0..23, -1 when unknown
    int severity = -1;  // 0..7, -1 when unknown
    /// UTC, when the message carried a full date (RFC 3164 has no year: then only timestamp_text is set).
    std::optional<std::chrono::sys_time<std::chrono::microseconds>> timestamp;
    std::string timestamp_text;
    std::string hostname;
    std::string app_name;
    std::string procid;
    std::string msgid;
    std::vector<SdElement> structured_data;  // in received order, duplicates kept
    std::string msg;

    std::string raw;
    bool malformed = false;  // did not follow the grammar it started with, or no grammar at all
    /// `timestamp` named its UTC offset (RFC 3339: RFC 5424's, or in an RFC 3164 or file line); a
    /// "YYYY Mmm dd hh:mm:ss" one has none (timestamp then reads it as if UTC) and is not the event time.
    /// (Beside `malformed`: in its padding.)
    bool timestamp_has_zone = false;
    std::string malformed_reason;  // names what is wrong, e.g. "PRI 192 is out of range 0..191"
    bool oversized = false;        // longer than the configured maximum: raw holds the first max bytes
};

/// Where the collector delivers messages. Implementations must not block for long: on_message is called
/// from a listener's or follower's thread, and a slow sink stalls that source (datagram sources then
/// lose messages in the kernel, which the probe counts as dropped).
/// Thread-safety: each source calls on_message from its one thread; a sink shared by several sources
/// is called concurrently and must synchronize itself.
class SyslogSink {
public:
    virtual ~SyslogSink() = default;
    virtual void on_message(SyslogMessage&& message) = 0;
};

}  // namespace hsmaudit::collectors::syslog
