#include "agent/engine/store/syslog_payload.h"

#include <array>
#include <nlohmann/json.hpp>

#include "mac/crypto.h"
#include "mac/note.h"

namespace hsmaudit::agent {
namespace {

using Json = nlohmann::ordered_json;  // keys in the documented order

/// The length of `s` once JSON-escaped (nlohmann's dump: two-character escapes for " \ \b \f \n
/// \r \t, \u00XX for the other control characters).
std::size_t json_escaped_size(std::string_view s) {
    std::size_t n = s.size();
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            n += 1;
        else if (c < 0x20)
            n += 5;
    }
    return n;
}

/// A JSON string when the bytes are valid UTF-8 and escaping them costs no more than base64 would,
/// else {"b64": ...}: so any value is stored in at most about 4/3 of its size.
Json bytes_json(std::string_view s) {
    if (is_valid_utf8(s) && json_escaped_size(s) <= 4 * ((s.size() + 2) / 3)) return Json(std::string(s));
    return Json{{"b64", mac::base64_encode(mac::as_bytes(s))}};
}

/// The bytes bytes_json() wrote; false (out untouched) if `j` is neither form.
bool bytes_from(const Json& j, std::string& out) {
    if (j.is_string()) {
        out = j.get<std::string>();
        return true;
    }
    if (!j.is_object()) return false;
    const auto it = j.find("b64");
    if (it == j.end() || !it->is_string()) return false;
    auto decoded = mac::base64_decode(it->get<std::string>());
    if (!decoded) return false;
    out = std::move(*decoded);
    return true;
}

void put_bytes(Json& j, const char* key, std::string_view s) {
    if (!s.empty()) j[key] = bytes_json(s);
}

void get_bytes(const Json& j, const char* key, std::string& out) {
    const auto it = j.find(key);
    if (it != j.end()) (void)bytes_from(*it, out);
}

int get_int(const Json& j, const char* key, int fallback) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

/// Where msg lies in raw, if it is a slice of it: the parser's MSG runs to the end of raw, or to
/// just before one line end (LF, CR LF or NUL).
std::optional<std::size_t> msg_offset(std::string_view raw, std::string_view msg) {
    for (std::size_t trailer = 0; trailer <= 2; ++trailer) {
        if (raw.size() < msg.size() + trailer) break;
        const std::size_t at = raw.size() - trailer - msg.size();
        if (raw.substr(at, msg.size()) == msg) return at;
    }
    const auto at = raw.find(msg);
    if (at != std::string_view::npos) return at;
    return std::nullopt;
}

/// Version 1 (before issue 17): plain strings, SD as an object of objects.
SyslogFields decode_v1(const Json& j) {
    SyslogFields f;
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
    f.facility = get_int(j, "facility", -1);
    f.severity = get_int(j, "severity", -1);
    f.timestamp = str("timestamp");
    f.host = str("host");
    f.app = str("app");
    f.procid = str("procid");
    f.msgid = str("msgid");
    f.msg = str("msg");
    f.transport = str("transport");
    f.peer = str("peer");
    f.format = str("format");
    f.malformed = str("malformed");
    f.raw = str("raw");
    f.oversized = j.contains("oversized") && j["oversized"].is_boolean() && j["oversized"].get<bool>();
    if (j.contains("sd") && j["sd"].is_object()) {
        for (const auto& [id, params] : j["sd"].items()) {
            std::vector<std::pair<std::string, std::string>> ps;
            if (params.is_object())
                for (const auto& [name, value] : params.items())
                    ps.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
            f.sd.emplace_back(id, std::move(ps));
        }
    }
    return f;
}

SyslogFields decode_v2(const Json& j) {
    SyslogFields f;
    f.facility = get_int(j, "facility", -1);
    f.severity = get_int(j, "severity", -1);
    get_bytes(j, "timestamp", f.timestamp);
    if (const auto it = j.find("time_us"); it != j.end() && it->is_number_integer())
        f.time_us = it->get<std::int64_t>();
    get_bytes(j, "host", f.host);
    get_bytes(j, "app", f.app);
    get_bytes(j, "procid", f.procid);
    get_bytes(j, "msgid", f.msgid);
    get_bytes(j, "transport", f.transport);
    get_bytes(j, "peer", f.peer);
    get_bytes(j, "format", f.format);
    get_bytes(j, "malformed", f.malformed);
    get_bytes(j, "raw", f.raw);
    f.oversized = j.contains("oversized") && j["oversized"].is_boolean() && j["oversized"].get<bool>();
    if (const auto sd = j.find("sd"); sd != j.end() && sd->is_array()) {
        for (const auto& element : *sd) {
            if (!element.is_array() || element.size() != 2 || !element[1].is_array()) continue;
            std::pair<std::string, std::vector<std::pair<std::string, std::string>>> e;
            (void)bytes_from(element[0], e.first);
            for (const auto& param : element[1]) {
                if (!param.is_array() || param.size() != 2) continue;
                std::pair<std::string, std::string> p;
                (void)bytes_from(param[0], p.first);
                (void)bytes_from(param[1], p.second);
                e.second.push_back(std::move(p));
            }
            f.sd.push_back(std::move(e));
        }
    }
    if (const auto at = j.find("msg_at"); at != j.end()) {
        bool ok = at->is_array() && at->size() == 2 && (*at)[0].is_number_unsigned() && (*at)[1].is_number_unsigned();
        const std::uint64_t off = ok ? (*at)[0].get<std::uint64_t>() : 0;
        const std::uint64_t len = ok ? (*at)[1].get<std::uint64_t>() : 0;
        ok = ok && off <= f.raw.size() && len <= f.raw.size() - off;
        f.msg = ok ? f.raw.substr(off, len) : f.raw;  // damaged: the whole message rather than nothing
    } else {
        get_bytes(j, "msg", f.msg);
    }
    return f;
}

}  // namespace

bool is_valid_utf8(std::string_view in) noexcept {
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
            if (i + k >= in.size()) return false;
            const auto b = static_cast<unsigned char>(in[i + k]);
            return b >= lo && b <= hi;
        };
        std::size_t n = 0;
        if (c >= 0xC2 && c <= 0xDF)
            n = cont(1) ? 2 : 0;
        else if (c == 0xE0)
            n = cont(1, 0xA0) && cont(2) ? 3 : 0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            n = cont(1) && cont(2) ? 3 : 0;
        else if (c == 0xED)
            n = cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
        else if (c == 0xF0)
            n = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
        else if (c >= 0xF1 && c <= 0xF3)
            n = cont(1) && cont(2) && cont(3) ? 4 : 0;
        else if (c == 0xF4)
            n = cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string encode_syslog_payload(const SyslogFields& f) {
    Json j = Json::object();
    j["v"] = kSyslogPayloadVersion;
    put_bytes(j, "transport", f.transport);
    put_bytes(j, "peer", f.peer);
    put_bytes(j, "format", f.format);
    if (f.facility >= 0) j["facility"] = f.facility;
    if (f.severity >= 0) j["severity"] = f.severity;
    put_bytes(j, "timestamp", f.timestamp);
    if (f.time_us) j["time_us"] = *f.time_us;
    put_bytes(j, "host", f.host);
    put_bytes(j, "app", f.app);
    put_bytes(j, "procid", f.procid);
    put_bytes(j, "msgid", f.msgid);
    if (!f.sd.empty()) {
        Json sd = Json::array();
        for (const auto& [id, params] : f.sd) {
            Json ps = Json::array();
            for (const auto& [name, value] : params) ps.push_back(Json::array({bytes_json(name), bytes_json(value)}));
            sd.push_back(Json::array({bytes_json(id), std::move(ps)}));
        }
        j["sd"] = std::move(sd);
    }
    put_bytes(j, "raw", f.raw);
    if (!f.msg.empty()) {
        if (const auto at = msg_offset(f.raw, f.msg))
            j["msg_at"] = Json::array({*at, f.msg.size()});
        else
            j["msg"] = bytes_json(f.msg);
    }
    put_bytes(j, "malformed", f.malformed);
    if (f.oversized) j["oversized"] = true;
    // Every string is valid UTF-8 (bytes_json): `replace` never applies.
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<SyslogFields> decode_syslog_payload(std::string_view payload) {
    const Json j = Json::parse(payload, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    const int version = get_int(j, "v", 1);
    return version >= 2 ? decode_v2(j) : decode_v1(j);
}

}  // namespace hsmaudit::agent
