#include "exporters/formats/detail/text.h"

#include <charconv>

#include "mac/checkpoint.h"
#include "mac/crypto.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::detail {

std::size_t utf8_sequence_length(std::string_view in, std::size_t i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) return 1;
    auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        if (i + k >= in.size()) return false;
        const auto b = static_cast<unsigned char>(in[i + k]);
        return b >= lo && b <= hi;
    };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no surrogates
    if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

bool is_valid_utf8(std::string_view in) {
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = utf8_sequence_length(in, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string_view clean(std::string_view in, std::size_t cap, std::string& scratch) {
    // Fast path: valid and short enough.
    std::size_t i = 0;
    while (i < in.size()) {
        const std::size_t n = utf8_sequence_length(in, i);
        if (n == 0) break;
        i += n;
    }
    if (i == in.size() && in.size() <= cap) return in;

    // Slow path: write the cleaned text, remembering where each code point ends, and cut.
    scratch.clear();
    std::size_t last_fit = 0;  // scratch length at the last boundary that leaves room for U+2026
    bool cut = false;
    for (i = 0; i < in.size();) {
        const std::size_t n = utf8_sequence_length(in, i);
        const std::string_view cp = n == 0 ? kReplacement : in.substr(i, n);
        i += n == 0 ? 1 : n;
        if (scratch.size() + cp.size() + kEllipsis.size() <= cap) last_fit = scratch.size() + cp.size();
        if (scratch.size() + cp.size() > cap) {
            cut = true;
            break;
        }
        scratch += cp;
    }
    if (cut) {
        // The ellipsis must fit too: go back to the last boundary that leaves room for it.
        if (cap < kEllipsis.size()) {
            scratch.clear();
        } else {
            scratch.resize(last_fit);
            scratch += kEllipsis;
        }
    }
    return scratch;
}

const std::string& syslog_text(const agent::SyslogFields& s) {
    // Every message now carries raw; it stands in for the MSG only when nothing parsed.
    return s.msg.empty() && !s.malformed.empty() ? s.raw : s.msg;
}

std::string_view entry_name(agent::EntryKind k) {
    switch (k) {
        case agent::EntryKind::record: return "record";
        case agent::EntryKind::open: return "open";
        case agent::EntryKind::seal: return "seal";
    }
    return "record";
}

std::string event_id(const agent::Event& e) {
    return e.event_id.empty() ? agent::make_event_id(e) : e.event_id;
}

std::int64_t event_time_ms(const agent::Event& e) {
    if (e.time_ms != 0) return e.time_ms;
    if (e.stream == agent::Stream::audit && !is_chain_entry(e)) return e.record.time_ms;
    if (e.stream == agent::Stream::alerts) return e.alert.time_ms;
    return 0;
}

std::string_view event_serial(const agent::Event& e) {
    if (e.serial.empty() && e.stream == agent::Stream::audit && !is_chain_entry(e)) return e.record.serial;
    return e.serial;
}

void append_event_type(const agent::Event& e, std::string& out) {
    if (is_chain_entry(e)) {
        out += "segment.";
        out += entry_name(e.entry);
        return;
    }
    switch (e.stream) {
        case agent::Stream::audit:
            out += e.record.event.empty() ? std::string_view("audit") : std::string_view(e.record.event);
            return;
        case agent::Stream::syslog:
            if (e.syslog.app.empty()) {
                out += "syslog";
            } else {
                out += "syslog:";
                out += e.syslog.app;
            }
            return;
        case agent::Stream::alerts:
            out += e.alert.kind.empty() ? std::string_view("alert") : std::string_view(e.alert.kind);
            return;
        case agent::Stream::checkpoints: out += "checkpoint"; return;
    }
    out += "event";
}

std::string event_type(const agent::Event& e) {
    std::string out;
    append_event_type(e, out);
    return out;
}

void append_result_hex(std::uint32_t result, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    char buf[10] = {'0', 'x'};
    for (int i = 0; i < 8; ++i) buf[2 + i] = kHex[(result >> (28 - 4 * i)) & 0xF];
    out.append(buf, sizeof buf);
}

std::string result_hex(std::uint32_t result) {
    std::string out;
    append_result_hex(result, out);
    return out;
}

std::string event_title(const agent::Event& e) {
    if (is_chain_entry(e)) return e.entry == agent::EntryKind::open ? "Segment open" : "Segment seal";
    switch (e.stream) {
        case agent::Stream::audit: return event_type(e) + (e.record.result == 0 ? " succeeded" : " failed");
        case agent::Stream::syslog: {
            const std::string& m = syslog_text(e.syslog);
            std::string scratch;
            return std::string(clean(m, 128, scratch));
        }
        case agent::Stream::alerts: return "Alert " + event_type(e);
        case agent::Stream::checkpoints: return "Chain-head checkpoint";
    }
    return "Event";
}

void append_event_message(const agent::Event& e, std::string& out) {
    if (is_chain_entry(e)) {
        out += e.line;
        return;
    }
    auto number = [&out](std::uint64_t v) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
    };
    switch (e.stream) {
        case agent::Stream::audit: {
            const auto& r = e.record;
            append_event_type(e, out);
            if (r.result == 0) {
                out += " succeeded";
            } else {
                out += " failed with result ";
                append_result_hex(r.result, out);
            }
            out += ": role ";
            out += r.role;
            out += ", partition ";
            number(r.partition);
            out += ", session ";
            number(r.session);
            out += ", class ";
            out += r.event_class;
            out += ", seq ";
            number(r.seq);
            if (!r.details.empty()) {
                out += ", ";
                append_details_text(r, out);
            }
            return;
        }
        case agent::Stream::syslog: out += syslog_text(e.syslog); return;
        case agent::Stream::alerts:
            out += agent::to_string(e.alert.severity);
            out += ' ';
            out += e.alert.kind;
            out += ": ";
            out += e.alert.message;
            return;
        case agent::Stream::checkpoints: out += e.checkpoint; return;
    }
}

std::string event_message(const agent::Event& e) {
    std::string out;
    append_event_message(e, out);
    return out;
}

void append_details_text(const mac::AuditRecord& r, std::string& out) {
    bool first = true;
    for (const auto& d : r.details) {
        if (!first) out += ' ';
        first = false;
        mac::append_escaped(d.key, out);
        out += '=';
        mac::append_escaped(d.value, out);
    }
}

std::string details_text(const mac::AuditRecord& r) {
    std::string out;
    append_details_text(r, out);
    return out;
}

std::string syslog_sd_text(const agent::SyslogFields& s) {
    std::string out;
    for (const auto& [id, params] : s.sd) {
        out += '[';
        out += id;
        for (const auto& [name, value] : params) {
            out += ' ';
            out += name;
            out += "=\"";
            for (char c : value) {
                if (c == '"' || c == '\\' || c == ']') out += '\\';
                out += c;
            }
            out += '"';
        }
        out += ']';
    }
    return out;
}

CheckpointFields checkpoint_fields(std::string_view line) {
    CheckpointFields f;
    auto cp = mac::parse_checkpoint_line(line);
    if (!cp) return f;
    f.ok = true;
    f.chain = mac::hex_encode(cp->chain);
    f.serial = cp->serial;
    f.mac = mac::hex_encode(cp->mac);
    f.epoch = cp->epoch;
    f.seq = cp->seq;
    return f;
}

}  // namespace hsmaudit::exporters::formats::detail
