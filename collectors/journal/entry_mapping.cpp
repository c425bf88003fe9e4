#include "collectors/journal/entry_mapping.h"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "collectors/syslog/parser.h"

namespace hsmaudit::collectors::journal {
namespace {

namespace sl = collectors::syslog;

constexpr std::array<std::string_view, 14> kFields = {
    "MESSAGE",
    "PRIORITY",
    "SYSLOG_FACILITY",
    "SYSLOG_IDENTIFIER",
    "_COMM",
    "_PID",
    "SYSLOG_PID",
    "_HOSTNAME",
    // Kept as structured data:
    "_SYSTEMD_UNIT",
    "MESSAGE_ID",
    "CODE_FILE",
    "CODE_LINE",
    "CODE_FUNC",
    "_TRANSPORT",
};
constexpr std::size_t kFirstSd = 8;

/// A decimal number in [0, max], nothing else (no sign, no spaces, at most 3 digits).
std::optional<int> small_number(std::string_view v, int max) noexcept {
    if (v.empty() || v.size() > 3) return std::nullopt;
    int n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size() || n < 0 || n > max) return std::nullopt;
    return n;
}

}  // namespace

std::span<const std::string_view> mapped_fields() {
    return kFields;
}

std::span<const std::string_view> sd_fields() {
    return std::span<const std::string_view>(kFields).subspan(kFirstSd);
}

const std::string* RawEntry::find(std::string_view name) const {
    for (const auto& [n, v] : fields)
        if (n == name) return &v;
    return nullptr;
}

std::optional<int> parse_priority(std::string_view value) noexcept {
    return small_number(value, 7);
}

std::string rfc3339_usec(std::uint64_t usec) {
    const auto secs = static_cast<std::time_t>(usec / 1'000'000);
    std::tm tm{};
    if (gmtime_r(&secs, &tm) == nullptr) return {};
    std::array<char, 40> buf{};
    const int n =
        std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(usec % 1'000'000));
    return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string{};
}

sl::SyslogMessage map_entry(const RawEntry& e, const MappingOptions& o, MappingNotes* notes) {
    sl::SyslogMessage m;
    m.transport = sl::Transport::journal;
    m.format = sl::SyslogFormat::journal;
    m.peer = o.peer;
    auto text = [](const std::string* v) { return v == nullptr ? std::string{} : sl::to_safe_text(*v); };

    if (const auto* p = e.find("PRIORITY")) m.severity = parse_priority(*p).value_or(-1);
    if (const auto* f = e.find("SYSLOG_FACILITY")) m.facility = small_number(*f, 23).value_or(-1);
    const std::string* app = e.find("SYSLOG_IDENTIFIER");
    if (app == nullptr || app->empty()) app = e.find("_COMM");
    m.app_name = text(app);
    const std::string* pid = e.find("_PID");
    if (pid == nullptr || pid->empty()) pid = e.find("SYSLOG_PID");
    m.procid = text(pid);
    m.hostname = text(e.find("_HOSTNAME"));
    if (e.realtime_usec) {
        m.timestamp = std::chrono::sys_time<std::chrono::microseconds>(
            std::chrono::microseconds(static_cast<std::int64_t>(*e.realtime_usec)));
        m.timestamp_text = rfc3339_usec(*e.realtime_usec);
        m.timestamp_has_zone = true;  // __REALTIME_TIMESTAMP is UTC: the event's own time
    }

    if (const auto* msg = e.find("MESSAGE")) {
        std::string_view bytes = *msg;
        if (bytes.size() > o.max_message_bytes) {
            bytes = bytes.substr(0, o.max_message_bytes);
            m.oversized = true;
        }
        // The bytes exactly (the spool keeps them, base64 where they are not UTF-8: docs/FORMAT.md
        // section 11); `escaped` still counts a MESSAGE with control characters or invalid UTF-8.
        m.msg.assign(bytes);
        m.raw = m.msg;
        if (notes != nullptr) {
            bool escaped = false;
            (void)sl::to_safe_text(bytes, &escaped);
            notes->escaped = escaped;
        }
    }
    if (notes != nullptr) notes->oversized = m.oversized;

    sl::SdElement sd;
    sd.id = std::string(kSdId);
    for (const auto name : sd_fields())
        if (const auto* v = e.find(name)) sd.params.push_back({std::string(name), *v});
    // A PRIORITY or SYSLOG_FACILITY that is not a number in range is not lost.
    if (const auto* p = e.find("PRIORITY"); p != nullptr && m.severity < 0) sd.params.push_back({"PRIORITY", *p});
    if (const auto* f = e.find("SYSLOG_FACILITY"); f != nullptr && m.facility < 0)
        sd.params.push_back({"SYSLOG_FACILITY", *f});
    if (!sd.params.empty()) m.structured_data.push_back(std::move(sd));
    return m;
}

}  // namespace hsmaudit::collectors::journal
