// QRadar LEEF 2.0: LEEF:2.0|Vendor|Product|Version|EventID|DelimiterChar|key=value<delim>key=value...
#include <string>
#include <string_view>

#include "exporters/formats/detail/render.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::detail {
namespace {

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7F;
}

/// LEEF has no escaping: a header field's '|' and control characters become a space.
void append_header(std::string_view v, std::string& out) {
    std::string scratch;
    for (char ch : clean(v, SIZE_MAX, scratch)) {
        const auto c = static_cast<unsigned char>(ch);
        out += (is_control(c) || ch == '|') ? ' ' : ch;
    }
}

class Attributes {
public:
    Attributes(char delimiter, const RenderLimits& limits, std::string& out)
        : delimiter_(delimiter), limits_(limits), out_(out) {}

    /// key=value; in the value the delimiter and control characters (tab, LF, CR...) become a
    /// space. `capped`: a free-text value the length limit may cut.
    void add(std::string_view key, std::string_view value, bool capped = true) {
        add_capped(key, value, capped ? limits_.value_cap : SIZE_MAX);
    }
    /// A short identifier: cut only below RenderLimits::kShortFieldMin.
    void add_short(std::string_view key, std::string_view value) { add_capped(key, value, limits_.short_cap()); }
    void add_capped(std::string_view key, std::string_view value, std::size_t cap) {
        if (!first_) out_ += delimiter_;
        first_ = false;
        out_ += key;
        out_ += '=';
        for (char ch : clean(value, cap, scratch_)) {
            const auto c = static_cast<unsigned char>(ch);
            out_ += (is_control(c) || ch == delimiter_) ? ' ' : ch;
        }
    }
    void add(std::string_view key, std::uint64_t value) { add(key, std::to_string(value), false); }

private:
    char delimiter_;
    const RenderLimits& limits_;
    std::string& out_;
    std::string scratch_;
    bool first_ = true;
};

/// "2026-11-24T06:15:17.123+0000" for devTimeFormat yyyy-MM-dd'T'HH:mm:ss.SSSZ.
std::string dev_time(std::int64_t time_ms) {
    std::string t = mac::format_time(time_ms);  // ...SS.mmmZ
    if (!t.empty() && t.back() == 'Z') t.replace(t.size() - 1, 1, "+0000");
    return t;
}

/// "d_<key>": a record's detail keys are [a-z][a-z0-9_]{0,31}; anything else becomes '_'.
std::string detail_key(std::string_view key) {
    std::string k = "d_";
    for (char ch : key) k += ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') ? ch : '_';
    return k;
}

}  // namespace

void render_leef(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out) {
    out += "LEEF:2.0|hsmaudit|hsmaudit|";
    append_header(o.product_version, out);
    out += '|';
    append_header(event_type(e), out);
    out += '|';
    if (o.leef_delimiter == '\t')
        out += "x09";  // LEEF 2.0 allows the hex form; a literal tab would not survive relays that escape it
    else
        out += o.leef_delimiter;
    out += '|';

    Attributes a(o.leef_delimiter, limits, out);
    a.add("devTime", dev_time(event_time_ms(e)), false);
    a.add("devTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSZ", false);
    a.add("sev", static_cast<std::uint64_t>(leef_severity(agent::syslog_severity(e))));
    a.add("eventId", event_id(e), false);
    a.add("serial", event_serial(e), false);
    if (!e.host.empty()) a.add("identHostName", e.host, false);
    a.add("stream", agent::to_string(e.stream), false);
    switch (e.stream) {
        case agent::Stream::audit: {
            if (is_chain_entry(e)) {
                a.add("cat", "segment", false);
                a.add("entry", entry_name(e.entry), false);
                a.add("epoch", e.epoch);
                a.add("position", e.position);
                break;
            }
            const auto& r = e.record;
            a.add_short("cat", r.event_class);
            a.add_short("usrName", r.role);
            a.add("seq", r.seq);
            if (r.seq != 0) {
                // The record's leaf in the chain's Merkle tree and the first tree size holding it (FORMAT.md 10).
                a.add("tlogIndex", r.seq - 1);
                a.add("tlogSize", r.seq);
            }
            a.add("mac", e.mac_hex, false);
            a.add("boot", r.boot);
            a.add("partition", r.partition);
            a.add("session", r.session);
            a.add("result", result_hex(r.result), false);
            a.add("outcome", r.result == 0 ? "success" : "failure", false);
            if (!limits.minimal)
                for (const auto& d : r.details) a.add(detail_key(d.key), d.value);
            break;
        }
        case agent::Stream::syslog: {
            const auto& s = e.syslog;
            a.add("cat", "syslog", false);
            if (s.facility >= 0) a.add("facility", static_cast<std::uint64_t>(s.facility));
            if (!s.host.empty()) a.add_short("host", s.host);
            if (!s.app.empty()) a.add_short("app", s.app);
            if (!s.procid.empty()) a.add_short("procid", s.procid);
            if (!s.msgid.empty()) a.add_short("msgid", s.msgid);
            if (!s.sd.empty() && !limits.minimal) a.add("sd", syslog_sd_text(s));
            if (!s.transport.empty()) a.add_short("transport", s.transport);
            if (!s.peer.empty()) a.add_short("peer", s.peer);
            if (!s.malformed.empty()) a.add("malformed", s.malformed);
            break;
        }
        case agent::Stream::alerts:
            a.add("cat", "alert", false);
            a.add_short("alertKind", e.alert.kind);
            a.add("alertSeverity", agent::to_string(e.alert.severity), false);
            if (e.alert.seq != 0) a.add("seq", e.alert.seq);
            break;
        case agent::Stream::checkpoints: {
            const CheckpointFields f = checkpoint_fields(e.checkpoint);
            a.add("cat", "checkpoint", false);
            if (f.ok) {
                a.add("seq", f.seq);
                a.add("epoch", f.epoch);
                a.add("mac", f.mac, false);
                a.add("chain", f.chain, false);
            }
            break;
        }
    }
    if (limits.truncated()) a.add("truncated", "true", false);
    a.add("msg", event_message(e));
}

}  // namespace hsmaudit::exporters::formats::detail
