// ArcSight CEF: CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension
#include <string>
#include <string_view>

#include "exporters/formats/detail/render.h"

namespace hsmaudit::exporters::formats::detail {
namespace {

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7F;
}

/// A header field: '\' and '|' escaped with '\'; control characters become a space.
void append_header(std::string_view v, const RenderLimits& limits, bool capped, std::string& out) {
    std::string scratch;
    for (char ch : clean(v, capped ? limits.value_cap : SIZE_MAX, scratch)) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_control(c)) {
            out += ' ';
            continue;
        }
        if (ch == '\\' || ch == '|') out += '\\';
        out += ch;
    }
}

class Extension {
public:
    Extension(const RenderLimits& limits, std::string& out) : limits_(limits), out_(out) {}

    /// key=value: '\' and '=' escaped with '\', LF as \n, CR as \r, other control characters
    /// as a space. `capped`: a free-text value the length limit may cut.
    void add(std::string_view key, std::string_view value, bool capped = true) {
        add_capped(key, value, capped ? limits_.value_cap : SIZE_MAX);
    }
    /// A short identifier: cut only below RenderLimits::kShortFieldMin.
    void add_short(std::string_view key, std::string_view value) { add_capped(key, value, limits_.short_cap()); }
    void add_capped(std::string_view key, std::string_view value, std::size_t cap) {
        if (!first_) out_ += ' ';
        first_ = false;
        out_ += key;
        out_ += '=';
        for (char ch : clean(value, cap, scratch_)) {
            const auto c = static_cast<unsigned char>(ch);
            if (ch == '\n') {
                out_ += "\\n";
            } else if (ch == '\r') {
                out_ += "\\r";
            } else if (is_control(c)) {
                out_ += ' ';
            } else {
                if (ch == '\\' || ch == '=') out_ += '\\';
                out_ += ch;
            }
        }
    }
    void add(std::string_view key, std::uint64_t value) { add(key, std::to_string(value), false); }
    /// A custom field and its label: cs1 + cs1Label, cn1 + cn1Label...
    void custom(std::string_view key, std::string_view label, std::string_view value, bool capped = true) {
        add(key, value, capped);
        add(std::string(key) + "Label", label, false);
    }
    void custom_short(std::string_view key, std::string_view label, std::string_view value) {
        add_short(key, value);
        add(std::string(key) + "Label", label, false);
    }
    void custom(std::string_view key, std::string_view label, std::uint64_t value) {
        custom(key, label, std::to_string(value), false);
    }

private:
    const RenderLimits& limits_;
    std::string& out_;
    std::string scratch_;
    bool first_ = true;
};

}  // namespace

void render_cef(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out) {
    out += "CEF:0|hsmaudit|hsmaudit|";
    append_header(o.product_version, limits, false, out);
    out += '|';
    append_header(event_type(e), limits, false, out);
    out += '|';
    append_header(event_title(e), limits, true, out);
    out += '|';
    out += std::to_string(cef_severity(agent::syslog_severity(e)));
    out += '|';

    Extension x(limits, out);
    x.add("rt", std::to_string(event_time_ms(e)), false);
    if (!e.host.empty()) x.add("dvchost", e.host, false);
    x.add("deviceExternalId", event_serial(e), false);
    x.add("externalId", event_id(e), false);
    x.custom("cs5", "stream", agent::to_string(e.stream), false);
    switch (e.stream) {
        case agent::Stream::audit: {
            if (is_chain_entry(e)) {
                x.add("cat", "segment", false);
                x.custom("cs1", "entry", entry_name(e.entry), false);
                x.custom("cs3", "epoch", e.epoch);
                x.custom("cn1", "position", e.position);
                break;
            }
            const auto& r = e.record;
            x.add_short("cat", r.event_class);
            x.add("outcome", r.result == 0 ? "success" : "failure", false);
            if (r.result != 0) x.add("reason", result_hex(r.result), false);
            x.custom("cn1", "seq", r.seq);
            x.custom("cs1", "mac", e.mac_hex, false);
            x.custom_short("cs2", "role", r.role);
            x.custom("cs3", "boot", r.boot);
            x.custom("cn2", "partition", r.partition);
            x.custom("cn3", "session", r.session);
            x.custom("cs4", "result", result_hex(r.result), false);
            if (r.seq != 0) {
                // The record's leaf in the chain's Merkle tree and the first tree size holding it (FORMAT.md 10).
                x.custom("flexNumber1", "tlogIndex", r.seq - 1);
                x.custom("flexNumber2", "tlogSize", r.seq);
            }
            if (!r.details.empty() && !limits.minimal) x.custom("cs6", "details", details_text(r));
            break;
        }
        case agent::Stream::syslog: {
            const auto& s = e.syslog;
            x.add("cat", "syslog", false);
            if (!s.host.empty()) x.add_short("shost", s.host);
            if (!s.app.empty()) x.custom_short("cs1", "app", s.app);
            if (!s.procid.empty()) x.custom_short("cs2", "procid", s.procid);
            if (!s.msgid.empty()) x.custom_short("cs3", "msgid", s.msgid);
            if (s.facility >= 0) x.custom("cn1", "facility", static_cast<std::uint64_t>(s.facility));
            if (!s.sd.empty() && !limits.minimal) x.custom("cs4", "structuredData", syslog_sd_text(s));
            if (!s.peer.empty()) x.custom_short("cs6", "peer", s.transport + ":" + s.peer);
            if (!s.malformed.empty()) x.add("reason", s.malformed);
            break;
        }
        case agent::Stream::alerts:
            x.add("cat", "alert", false);
            x.custom_short("cs1", "alertKind", e.alert.kind);
            x.custom("cs2", "alertSeverity", agent::to_string(e.alert.severity), false);
            if (e.alert.seq != 0) x.custom("cn1", "seq", e.alert.seq);
            break;
        case agent::Stream::checkpoints: {
            const CheckpointFields f = checkpoint_fields(e.checkpoint);
            x.add("cat", "checkpoint", false);
            if (f.ok) {
                x.custom("cn1", "seq", f.seq);
                x.custom("cs1", "mac", f.mac, false);
                x.custom("cs2", "chain", f.chain, false);
                x.custom("cs3", "epoch", f.epoch);
            }
            break;
        }
    }
    if (limits.truncated()) x.custom("flexString1", "truncated", "true", false);
    x.add("msg", event_message(e));
}

}  // namespace hsmaudit::exporters::formats::detail
