// The JSON and HEC renderers as they were before the streaming writer (fd06bb8 exporters/formats/json.cpp,
// an nlohmann::ordered_json DOM per event), frozen here as the reference the differential test
// (json_writer_test.cpp) compares the streaming writer's bytes with. The text helpers they call
// that the writer replaced (event_type, event_message, details_text) are frozen too, so the
// reference does not share code with what it checks; clean(), event_id() and the rest of
// detail/text.h are shared, unchanged. Test only: nothing in the product includes this.
#include "tests/unit/exporters/formats/json_oracle.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mac/crypto.h"
#include "mac/note.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::test::oracle {
namespace {

using namespace detail;  // NOLINT(google-build-using-namespace): the frozen code's own namespace

// ---- frozen copies of detail/text.cpp (fd06bb8)

std::string frozen_event_type(const agent::Event& e) {
    if (is_chain_entry(e)) return "segment." + std::string(entry_name(e.entry));
    switch (e.stream) {
        case agent::Stream::audit: return e.record.event.empty() ? "audit" : e.record.event;
        case agent::Stream::syslog: return e.syslog.app.empty() ? "syslog" : "syslog:" + e.syslog.app;
        case agent::Stream::alerts: return e.alert.kind.empty() ? "alert" : e.alert.kind;
        case agent::Stream::checkpoints: return "checkpoint";
    }
    return "event";
}

std::string frozen_result_hex(std::uint32_t result) {
    char buf[16];
    (void)std::snprintf(buf, sizeof buf, "0x%08x", result);
    return buf;
}

std::string frozen_details_text(const mac::AuditRecord& r) {
    std::string out;
    for (const auto& d : r.details) {
        if (!out.empty()) out += ' ';
        mac::append_escaped(d.key, out);
        out += '=';
        mac::append_escaped(d.value, out);
    }
    return out;
}

std::string frozen_event_message(const agent::Event& e) {
    if (is_chain_entry(e)) return e.line;
    switch (e.stream) {
        case agent::Stream::audit: {
            const auto& r = e.record;
            std::string m = frozen_event_type(e);
            if (r.result == 0)
                m += " succeeded";
            else
                m += " failed with result " + frozen_result_hex(r.result);
            m += ": role " + r.role + ", partition " + std::to_string(r.partition) + ", session " +
                 std::to_string(r.session) + ", class " + r.event_class + ", seq " + std::to_string(r.seq);
            if (!r.details.empty()) m += ", " + frozen_details_text(r);
            return m;
        }
        case agent::Stream::syslog: return syslog_text(e.syslog);
        case agent::Stream::alerts:
            return std::string(agent::to_string(e.alert.severity)) + " " + e.alert.kind + ": " + e.alert.message;
        case agent::Stream::checkpoints: return e.checkpoint;
    }
    return {};
}

// ---- frozen copy of exporters/formats/json.cpp (fd06bb8)

using Json = nlohmann::ordered_json;

class Builder {
public:
    explicit Builder(const RenderLimits& limits) : limits_(limits) {}

    /// A string value as valid UTF-8; `capped`: free text the length limit may cut.
    std::string text(std::string_view v, bool capped = true) {
        return std::string(clean(v, capped ? limits_.value_cap : SIZE_MAX, scratch_));
    }
    /// A short identifier: cut only below RenderLimits::kShortFieldMin.
    std::string short_text(std::string_view v) { return std::string(clean(v, limits_.short_cap(), scratch_)); }
    /// Sets obj[key] = value; a key already present gets "#2", "#3"... (duplicate detail keys or
    /// SD param names are kept, not overwritten).
    void put_unique(Json& obj, const std::string& key, Json value) {
        std::string k = key;
        for (int n = 2; obj.contains(k); ++n) k = key + "#" + std::to_string(n);
        obj[k] = std::move(value);
    }

private:
    const RenderLimits& limits_;
    std::string scratch_;
};

Json event_object(const agent::Event& e, const RenderLimits& limits) {
    Builder b(limits);
    Json j = Json::object();
    const int severity = agent::syslog_severity(e);
    const std::int64_t t = event_time_ms(e);
    j["event_id"] = b.text(event_id(e), false);
    j["stream"] = std::string(agent::to_string(e.stream));
    j["time"] = mac::format_time(t);
    j["time_ms"] = t;
    j["severity"] = severity;
    j["severity_name"] = std::string(severity_name(severity));
    j["host"] = b.text(e.host, false);
    j["serial"] = b.text(event_serial(e), false);
    j["type"] = b.text(frozen_event_type(e), false);
    switch (e.stream) {
        case agent::Stream::audit: {
            if (is_chain_entry(e)) {
                Json c = Json::object();
                c["entry"] = std::string(entry_name(e.entry));
                c["epoch"] = e.epoch;
                c["position"] = e.position;
                c["line"] = b.text(e.line);
                j["segment"] = std::move(c);
                break;
            }
            const auto& r = e.record;
            Json a = Json::object();
            a["seq"] = r.seq;
            if (r.seq != 0) {
                // The record's leaf in the chain's Merkle tree and the first tree size holding it (FORMAT.md 10).
                a["tlog_index"] = r.seq - 1;
                a["tlog_size"] = r.seq;
            }
            a["mac"] = b.text(e.mac_hex, false);
            a["boot"] = r.boot;
            a["partition"] = r.partition;
            a["role"] = b.short_text(r.role);
            a["session"] = r.session;
            a["event"] = b.short_text(r.event);
            a["class"] = b.short_text(r.event_class);
            a["result"] = r.result;
            a["outcome"] = r.result == 0 ? "success" : "failure";
            if (!limits.minimal) {
                Json details = Json::object();
                for (const auto& d : r.details) b.put_unique(details, b.text(d.key, false), b.text(d.value));
                a["details"] = std::move(details);
                // The exact line of the segment file: with the audit secret a SIEM can check its MAC.
                std::string line = e.line;
                if (line.empty()) {
                    mac::encode_record_body(r, line);
                    if (!e.mac_hex.empty()) line += " mac=" + e.mac_hex;
                }
                a["record_line"] = b.text(line);
            }
            j["audit"] = std::move(a);
            break;
        }
        case agent::Stream::syslog: {
            const auto& s = e.syslog;
            Json o = Json::object();
            o["facility"] = s.facility;
            o["severity"] = s.severity;
            o["timestamp"] = b.short_text(s.timestamp);
            o["host"] = b.short_text(s.host);
            o["app"] = b.short_text(s.app);
            o["procid"] = b.short_text(s.procid);
            o["msgid"] = b.short_text(s.msgid);
            if (!limits.minimal) {
                Json sd = Json::object();
                for (const auto& [id, params] : s.sd) {
                    Json p = Json::object();
                    for (const auto& [name, value] : params) b.put_unique(p, b.text(name, false), b.text(value));
                    b.put_unique(sd, b.text(id, false), std::move(p));
                }
                o["sd"] = std::move(sd);
            }
            // The exact bytes: JSON escapes every control character (LF, CR, NUL...) losslessly;
            // text that is not valid UTF-8 is written with U+FFFD and its bytes again in base64
            // (not when the event is cut: a cut base64 value would decode to nothing useful).
            o["msg"] = b.text(s.msg);
            if (!limits.truncated() && !is_valid_utf8(s.msg))
                o["msg_base64"] = mac::base64_encode(mac::as_bytes(s.msg));
            o["transport"] = b.short_text(s.transport);
            o["peer"] = b.short_text(s.peer);
            if (e.received_ms != 0) o["received"] = mac::format_time(e.received_ms);
            if (!s.malformed.empty()) o["malformed"] = b.text(s.malformed);
            if (s.oversized) o["oversized"] = true;
            // The message exactly as received (header, structured data and MSG): dropped with the
            // structured data when the event does not fit.
            if (!s.raw.empty() && !limits.minimal) {
                o["raw"] = b.text(s.raw);
                if (!limits.truncated() && !is_valid_utf8(s.raw))
                    o["raw_base64"] = mac::base64_encode(mac::as_bytes(s.raw));
            }
            j["syslog"] = std::move(o);
            break;
        }
        case agent::Stream::alerts: {
            Json a = Json::object();
            a["kind"] = b.short_text(e.alert.kind);
            a["severity"] = std::string(agent::to_string(e.alert.severity));
            a["message"] = b.text(e.alert.message);
            a["seq"] = e.alert.seq;
            j["alert"] = std::move(a);
            break;
        }
        case agent::Stream::checkpoints: {
            const CheckpointFields f = checkpoint_fields(e.checkpoint);
            Json c = Json::object();
            if (f.ok) {
                c["seq"] = f.seq;
                c["epoch"] = f.epoch;
                c["mac"] = f.mac;
                c["chain"] = f.chain;
            }
            c["line"] = b.text(e.checkpoint);
            j["checkpoint"] = std::move(c);
            break;
        }
    }
    if (e.stream == agent::Stream::alerts || (e.stream == agent::Stream::audit && !is_chain_entry(e)))
        j["message"] = b.text(frozen_event_message(e));
    if (limits.truncated()) j["truncated"] = true;
    return j;
}

/// Every string was made valid UTF-8 by clean(); `replace` only guards against a mistake.
void dump(const Json& j, std::string& out) {
    out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

void render_json(const agent::Event& e, const FormatOptions& /*o*/, const RenderLimits& limits, std::string& out) {
    dump(event_object(e, limits), out);
}

void render_hec(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out) {
    // "time" is written by hand: epoch seconds with exactly three decimals (a double would not be).
    const std::int64_t t = event_time_ms(e);
    std::int64_t seconds = t / 1000;
    std::int64_t millis = t % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    std::string ms = std::to_string(millis);
    out += "{\"time\":";
    out += std::to_string(seconds);
    out += '.';
    out.append(3 - ms.size(), '0');
    out += ms;

    Builder b(limits);
    Json rest = Json::object();
    rest["host"] = b.text(e.host, false);
    rest["source"] = "hsmaudit:" + std::string(agent::to_string(e.stream));
    rest["sourcetype"] = o.hec_sourcetype;
    if (!o.hec_index.empty()) rest["index"] = o.hec_index;
    Json event = event_object(e, limits);
    Json fields = Json::object();
    fields["serial"] = event["serial"];
    fields["stream"] = event["stream"];
    if (event.contains("audit")) fields["class"] = event["audit"]["class"];
    fields["severity"] = event["severity_name"];
    rest["event"] = std::move(event);
    rest["fields"] = std::move(fields);
    std::string tail;
    dump(rest, tail);  // "{...}": splice its members after "time"
    out += ',';
    out.append(tail, 1, std::string::npos);
}

}  // namespace hsmaudit::exporters::formats::test::oracle
