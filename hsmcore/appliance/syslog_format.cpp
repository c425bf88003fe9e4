#include "hsmcore/appliance/syslog_format.h"

#include <algorithm>
#include <cstdio>

namespace hsmaudit::appliance {
namespace {

// PRINTUSASCII without space, capped; "-" when empty (RFC 5424 NILVALUE).
std::string header_field(std::string_view in, std::size_t max_len) {
    std::string out;
    out.reserve(std::min(in.size(), max_len));
    for (char c : in) {
        if (out.size() == max_len) break;
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 33 && u <= 126 ? c : '_');
    }
    if (out.empty()) return "-";
    return out;
}

// SD-NAME: PRINTUSASCII except '=', SP, ']', '"'; 1..32 characters.
std::string sd_name(std::string_view in) {
    std::string out = header_field(in, 32);
    std::replace_if(
        out.begin(), out.end(), [](char c) { return c == '=' || c == ']' || c == '"'; }, '_');
    return out;
}

}  // namespace

Clock system_clock() {
    return [] { return std::chrono::system_clock::now(); };
}

int pri(Facility facility, Severity severity) noexcept {
    return static_cast<int>(facility) * 8 + static_cast<int>(severity);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto us = floor<microseconds>(t);
    const auto day = floor<days>(us);
    const year_month_day ymd{day};
    const hh_mm_ss hms{us - day};
    char buf[40];
    static_cast<void>(std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
                                    static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                    static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                                    static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                                    static_cast<long long>(hms.subseconds().count())));
    return buf;
}

std::string format_rfc5424(const SyslogRecord& r) {
    std::string out;
    out.reserve(128 + r.msg.size());
    out += '<';
    out += std::to_string(pri(r.facility, r.severity));
    out += ">1 ";
    out += format_rfc3339(r.timestamp);
    out += ' ';
    out += header_field(r.hostname, 255);
    out += ' ';
    out += header_field(r.app_name, 48);
    out += ' ';
    out += header_field(r.procid, 128);
    out += ' ';
    out += header_field(r.msgid, 32);
    out += ' ';
    if (r.structured_data.empty()) {
        out += '-';
    } else {
        for (const auto& e : r.structured_data) {
            out += '[';
            out += sd_name(e.id);
            for (const auto& p : e.params) {
                out += ' ';
                out += sd_name(p.name);
                out += "=\"";
                for (char c : p.value) {
                    if (c == '"' || c == '\\' || c == ']') out += '\\';
                    out += c;
                }
                out += '"';
            }
            out += ']';
        }
    }
    if (!r.msg.empty()) {
        out += ' ';
        out += r.msg;
    }
    return out;
}

std::string frame_octet_counting(std::string_view message) {
    std::string out = std::to_string(message.size());
    out += ' ';
    out += message;
    return out;
}

}  // namespace hsmaudit::appliance
