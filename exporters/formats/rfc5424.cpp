// RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [BOM]MSG
#include <string>
#include <string_view>

#include "exporters/formats/detail/render.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::detail {
namespace {

// RFC 5424 section 6: field length limits.
constexpr std::size_t kHostnameMax = 255;
constexpr std::size_t kAppNameMax = 48;
constexpr std::size_t kProcidMax = 128;
constexpr std::size_t kMsgidMax = 32;
constexpr std::size_t kSdNameMax = 32;

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7F;
}

/// A header field: PRINTUSASCII only (others become '_'), at most `max`, "-" when empty.
void append_header_field(std::string_view v, std::size_t max, std::string& out) {
    if (v.empty()) {
        out += '-';
        return;
    }
    if (v.size() > max) v = v.substr(0, max);
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        out += c > 32 && c < 127 ? ch : '_';
    }
}

/// An SD-ID or PARAM-NAME: PRINTUSASCII except '=', space, ']' and '"' (others become '_'), 1..32.
void append_sd_name(std::string_view v, std::string& out) {
    if (v.empty()) {
        out += '_';
        return;
    }
    if (v.size() > kSdNameMax) v = v.substr(0, kSdNameMax);
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c > 32 && c < 127 && c != '=' && c != ']' && c != '"') ? ch : '_';
    }
}

/// Valid UTF-8 text; `escape_sd` adds the PARAM-VALUE escapes (" \ ] only, RFC 5424 6.3.3).
/// Control characters become spaces, except with `keep_controls` (a forwarded syslog message's own
/// text: its bytes go as they came, LF included; the transports' octet counting frames them).
void append_text(std::string_view clean_text, bool escape_sd, std::string& out, bool keep_controls = false) {
    for (char ch : clean_text) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_control(c) && !keep_controls) {
            out += ' ';
            continue;
        }
        if (escape_sd && (ch == '"' || ch == '\\' || ch == ']')) out += '\\';
        out += ch;
    }
}

class SdWriter {
public:
    SdWriter(const RenderLimits& limits, std::string& out, bool keep_controls)
        : limits_(limits), out_(out), keep_controls_(keep_controls) {}

    void open(std::string_view id) {
        out_ += '[';
        append_sd_name(id, out_);
    }
    void open_ours(std::string_view name, std::uint32_t pen) {
        out_ += '[';
        out_ += name;
        out_ += '@';
        out_ += std::to_string(pen);
    }
    /// `capped`: a free-text value the message's length limit may cut (identity fields are not).
    void param(std::string_view name, std::string_view value, bool capped = true) {
        param_capped(name, value, capped ? limits_.value_cap : SIZE_MAX);
    }
    /// A short identifier: cut only below RenderLimits::kShortFieldMin.
    void param_short(std::string_view name, std::string_view value) { param_capped(name, value, limits_.short_cap()); }
    void param(std::string_view name, std::uint64_t value) { param(name, std::to_string(value), false); }
    void close() { out_ += ']'; }

private:
    void param_capped(std::string_view name, std::string_view value, std::size_t cap) {
        out_ += ' ';
        append_sd_name(name, out_);
        out_ += "=\"";
        append_text(clean(value, cap, scratch_), true, out_, keep_controls_);
        out_ += '"';
    }

    const RenderLimits& limits_;
    std::string& out_;
    bool keep_controls_;
    std::string scratch_;
};

}  // namespace

void render_rfc5424(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out) {
    const int severity = agent::syslog_severity(e);
    int facility = o.facility;
    if (e.stream == agent::Stream::syslog && e.syslog.facility >= 0 && e.syslog.facility <= 23)
        facility = e.syslog.facility;
    out += '<';
    out += std::to_string(facility * 8 + severity);
    out += ">1 ";
    const std::int64_t t = event_time_ms(e);
    if (t == 0)
        out += '-';
    else
        mac::append_time(t, out);
    out += ' ';

    const bool syslog = e.stream == agent::Stream::syslog;
    append_header_field(syslog && !e.syslog.host.empty() ? e.syslog.host : e.host, kHostnameMax, out);
    out += ' ';
    append_header_field(syslog ? e.syslog.app : o.app_name, kAppNameMax, out);
    out += ' ';
    append_header_field(syslog ? e.syslog.procid : "", kProcidMax, out);
    out += ' ';
    std::string msgid;
    if (e.stream == agent::Stream::syslog)
        msgid = e.syslog.msgid;
    else if (e.stream == agent::Stream::checkpoints)
        msgid = "checkpoint";
    else
        msgid = event_type(e);
    append_header_field(msgid, kMsgidMax, out);
    out += ' ';

    const std::string id = event_id(e);
    const std::string_view serial = event_serial(e);
    SdWriter sd(limits, out, syslog);
    switch (e.stream) {
        case agent::Stream::audit: {
            if (is_chain_entry(e)) {
                sd.open_ours("hsmauditChain", o.pen);
                sd.param("eventId", id, false);
                sd.param("serial", serial, false);
                sd.param("entry", entry_name(e.entry), false);
                sd.param("epoch", e.epoch);
                sd.param("position", e.position);
                if (limits.truncated()) sd.param("truncated", "true", false);
                sd.close();
                break;
            }
            const auto& r = e.record;
            sd.open_ours("hsmaudit", o.pen);
            sd.param("eventId", id, false);
            sd.param("seq", r.seq);
            if (r.seq != 0) {
                // The record's leaf in the chain's Merkle tree and the first tree size holding it (FORMAT.md 10).
                sd.param("tlogIndex", r.seq - 1);
                sd.param("tlogSize", r.seq);
            }
            sd.param("mac", e.mac_hex, false);
            sd.param("serial", serial, false);
            sd.param("boot", r.boot);
            sd.param("partition", r.partition);
            sd.param_short("role", r.role);
            sd.param("session", r.session);
            sd.param_short("event", r.event);
            sd.param_short("class", r.event_class);
            sd.param("result", result_hex(r.result), false);
            if (limits.truncated()) sd.param("truncated", "true", false);
            sd.close();
            if (!r.details.empty() && !limits.minimal) {
                sd.open_ours("hsmauditDetails", o.pen);
                for (const auto& d : r.details) sd.param(d.key, d.value);
                sd.close();
            }
            break;
        }
        case agent::Stream::syslog: {
            const auto& s = e.syslog;
            sd.open_ours("hsmauditSyslog", o.pen);
            sd.param("eventId", id, false);
            sd.param("serial", serial, false);
            if (!s.timestamp.empty()) sd.param_short("timestamp", s.timestamp);
            if (!s.transport.empty()) sd.param_short("transport", s.transport);
            if (!s.peer.empty()) sd.param_short("peer", s.peer);
            if (!s.malformed.empty()) sd.param("malformed", s.malformed);
            if (limits.truncated()) sd.param("truncated", "true", false);
            sd.close();
            if (!limits.minimal) {
                for (const auto& [sd_id, params] : s.sd) {
                    sd.open(sd_id);
                    for (const auto& [name, value] : params) sd.param(name, value);
                    sd.close();
                }
            }
            break;
        }
        case agent::Stream::alerts: {
            sd.open_ours("hsmauditAlert", o.pen);
            sd.param("eventId", id, false);
            sd.param("serial", serial, false);
            sd.param_short("kind", e.alert.kind);
            sd.param("severity", agent::to_string(e.alert.severity), false);
            if (e.alert.seq != 0) sd.param("seq", e.alert.seq);
            if (limits.truncated()) sd.param("truncated", "true", false);
            sd.close();
            break;
        }
        case agent::Stream::checkpoints: {
            const CheckpointFields f = checkpoint_fields(e.checkpoint);
            sd.open_ours("hsmauditCheckpoint", o.pen);
            sd.param("eventId", id, false);
            sd.param("serial", serial, false);
            if (f.ok) {
                sd.param("epoch", f.epoch);
                sd.param("seq", f.seq);
                sd.param("mac", f.mac, false);
                sd.param("chain", f.chain, false);
            }
            if (limits.truncated()) sd.param("truncated", "true", false);
            sd.close();
            break;
        }
    }

    const std::string msg = event_message(e);
    if (msg.empty()) return;
    out += ' ';
    if (o.bom) out += "\xEF\xBB\xBF";
    std::string scratch;
    append_text(clean(msg, limits, scratch), false, out, syslog);
}

}  // namespace hsmaudit::exporters::formats::detail
