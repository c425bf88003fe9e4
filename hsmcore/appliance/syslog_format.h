// RFC 5424 formatting of the appliance's host syslog stream, and RFC 6587 octet-counting framing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hsmaudit::appliance {

/// The injected time source of the appliance: every timestamp and every sensor tick uses it.
using Clock = std::function<std::chrono::system_clock::time_point()>;

/// The system clock as a Clock (the production default).
Clock system_clock();

/// RFC 5424 facilities (numerical codes of section 6.2.1).
enum class Facility : std::uint8_t {
    kern = 0,
    user = 1,
    daemon = 3,
    auth = 4,
    syslog = 5,
    authpriv = 10,
    local0 = 16,
    local3 = 19,
    local5 = 21,
};

/// RFC 5424 severities (section 6.2.1).
enum class Severity : std::uint8_t {
    emergency = 0,
    alert = 1,
    critical = 2,
    error = 3,
    warning = 4,
    notice = 5,
    informational = 6,
    debug = 7,
};

/// One SD-PARAM of a structured-data element.
struct SdParam {
    std::string name;
    std::string value;
};

/// One SD-ELEMENT: `[id name="value" ...]`.
struct SdElement {
    std::string id;
    std::vector<SdParam> params;
};

/// One syslog message before formatting. A value type; safe to copy between threads.
struct SyslogRecord {
    Facility facility = Facility::local5;
    Severity severity = Severity::informational;
    std::chrono::system_clock::time_point timestamp;
    std::string hostname;
    std::string app_name;
    std::string procid;
    std::string msgid;
    std::vector<SdElement> structured_data;
    std::string msg;
};

/// PRI value: facility * 8 + severity.
int pri(Facility facility, Severity severity) noexcept;

/// RFC 3339 UTC timestamp with microseconds, e.g. "2026-11-24T06:29:00.123456Z".
std::string format_rfc3339(std::chrono::system_clock::time_point t);

/// The full RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`.
/// Header fields are made conformant (non-printable or space characters become '_', lengths are capped,
/// empty fields become "-"); SD-PARAM values are escaped as section 6.3.3 requires.
std::string format_rfc5424(const SyslogRecord& record);

/// RFC 6587 octet-counting frame: "LEN SP MSG".
std::string frame_octet_counting(std::string_view message);

}  // namespace hsmaudit::appliance
