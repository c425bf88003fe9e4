// Events and small independent checkers shared by the formats tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/api/event.h"
#include "exporters/formats/formatter.h"

namespace hsmaudit::exporters::formats::test {

/// Hostile text: every character some format must escape, strip or replace.
inline const std::string kHostile = std::string("a|b=c\\d\"e]f[g\nh\ri\tj^k Z\xC3\xBCrich \xE2\x9C\x93 ") +
                                    std::string("\xFF\xFE") + "l" + std::string(1, '\0') + "m\x7F" + "n";
/// kHostile as every text format but JSON renders it: invalid bytes as U+FFFD, control characters
/// (NUL, TAB, LF, CR, DEL) as a space. (CEF extension values keep LF and CR as \n and \r.)
inline const std::string kHostileSpaced =
    std::string("a|b=c\\d\"e]f[g h i j^k Z\xC3\xBCrich \xE2\x9C\x93 ") + "\xEF\xBF\xBD\xEF\xBF\xBD" + "l m n";
/// kHostile as JSON renders it: invalid bytes as U+FFFD, control characters kept.
inline const std::string kHostileJson = std::string("a|b=c\\d\"e]f[g\nh\ri\tj^k Z\xC3\xBCrich \xE2\x9C\x93 ") +
                                        "\xEF\xBF\xBD\xEF\xBF\xBD" + "l" + std::string(1, '\0') + "m\x7F" + "n";

inline agent::Event audit_event() {
    agent::Event e;
    e.stream = agent::Stream::audit;
    e.position = 42;
    e.time_ms = 1795500917123;  // 2026-11-24T06:15:17.123Z
    e.serial = "150123";
    e.host = "hsm-a750.example.net";
    e.record.seq = 42;
    e.record.time_ms = e.time_ms;
    e.record.serial = "150123";
    e.record.boot = 3;
    e.record.partition = 7;
    e.record.role = "CO";
    e.record.session = 118;
    e.record.event = "LUNA_SIGN";
    e.record.event_class = "usage";
    e.record.result = 0;
    e.record.details = {{"key", "100"}, {"mech", "CKM_ECDSA_SHA256"}};
    e.mac_hex = "35c805d769067ea79dab97ff765517e5d33977d7b0030a54f357d4af09a7a0c6";
    return e;
}

inline agent::Event failed_login_event() {
    agent::Event e = audit_event();
    e.position = e.record.seq = 43;
    e.time_ms = e.record.time_ms = 1795500918001;
    e.record.role = "-";
    e.record.session = 119;
    e.record.event = "LUNA_LOGIN";
    e.record.event_class = "access";
    e.record.result = 0xA0;  // CKR_PIN_INCORRECT
    e.record.details = {{"login_role", "CO"}};
    e.mac_hex = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    return e;
}

inline agent::Event syslog_event() {
    agent::Event e;
    e.stream = agent::Stream::syslog;
    e.position = 9001;
    e.time_ms = 1795500919250;
    e.serial = "150123";
    e.host = "hsm-a750.example.net";
    e.syslog.facility = 21;  // local5
    e.syslog.severity = 4;
    e.syslog.timestamp = "2026 Nov 24 06:15:19";
    e.syslog.host = "myLuna";
    e.syslog.app = "lunash";
    e.syslog.procid = "1234";
    e.syslog.msg = "HSM Admin Login: incorrect password or PED key";
    e.syslog.transport = "unix_datagram";
    e.syslog.peer = "/run/hsmaudit/syslog.sock";
    return e;
}

inline agent::Event alert_event() {
    agent::Event e;
    e.stream = agent::Stream::alerts;
    e.position = 17;
    e.time_ms = 1795500920000;
    e.serial = "150123";
    e.host = "hsm-a750.example.net";
    e.alert.kind = "ring.fill_warning";
    e.alert.severity = agent::Severity::warning;
    e.alert.message = "audit ring 81% full (warning at 80%); about 34 s to the reserve at 5200 records/s";
    e.alert.time_ms = e.time_ms;
    return e;
}

inline agent::Event checkpoint_event() {
    agent::Event e;
    e.stream = agent::Stream::checkpoints;
    e.position = 5;
    e.time_ms = 1795500921000;
    e.serial = "150123";
    e.host = "hsm-a750.example.net";
    e.checkpoint =
        "@checkpoint v=1 chain=00112233445566778899aabbccddeeff serial=150123 epoch=2 seq=42 "
        "time=2026-11-24T06:15:21.000Z "
        "mac=35c805d769067ea79dab97ff765517e5d33977d7b0030a54f357d4af09a7a0c6 sig=" +
        std::string(128, 'a');
    return e;
}

inline FormatOptions options(FormatKind kind) {
    FormatOptions o;
    o.kind = kind;
    return o;
}

inline std::string render(const FormatOptions& o, const agent::Event& e) {
    std::string out;
    make_formatter(o)->format(e, out);
    return out;
}

/// Independent UTF-8 check (RFC 3629), not the formats' own.
inline bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (std::size_t k = 1; k <= n; ++k) {
            if (i + k >= s.size()) return false;
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        const std::uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n + 1;
    }
    return true;
}

}  // namespace hsmaudit::exporters::formats::test
