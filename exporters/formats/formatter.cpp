// The format keys, their validation, and the Formatter that enforces max_message_bytes.
#include "exporters/formats/formatter.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "agent/api/errc.h"
#include "base/version/version.h"
#include "exporters/formats/detail/render.h"

namespace hsmaudit::exporters::formats {
namespace {

constexpr std::array<std::string_view, 24> kFacilities = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",      "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "logaudit", "logalert", "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",   "local7",
};

using Render = void (*)(const agent::Event&, const FormatOptions&, const detail::RenderLimits&, std::string&);

Render renderer(FormatKind k) {
    switch (k) {
        case FormatKind::rfc5424: return detail::render_rfc5424;
        case FormatKind::cef: return detail::render_cef;
        case FormatKind::leef: return detail::render_leef;
        case FormatKind::json: return detail::render_json;
        case FormatKind::hec: return detail::render_hec;
    }
    return detail::render_json;
}

/// Renders with the limits that keep the message within max_message_bytes, the syslog header
/// included (it is rendered first, whole: at most about 350 bytes, and max_message_bytes is at
/// least 1 KiB): the message body gets what the header leaves. The body is first rendered
/// unlimited; then with the largest value cap that fits (binary search: the length grows with the
/// cap); then the same without details and foreign structured data; as a last resort (fixed
/// fields alone longer than the maximum, which the key's minimum of 1 KiB makes impossible for our
/// own fields) the rendering is cut at a UTF-8 boundary.
class FormatterImpl final : public Formatter {
public:
    explicit FormatterImpl(FormatOptions o) : options_(std::move(o)), render_(renderer(options_.kind)) {}

    void format(const agent::Event& e, std::string& out) const override {
        const std::size_t message_start = out.size();
        detail::render_syslog_header(e, options_, out);
        const std::size_t start = out.size();
        const std::size_t header = start - message_start;
        const std::size_t max = options_.max_message_bytes > header ? options_.max_message_bytes - header : 0;
        detail::RenderLimits limits;
        render_(e, options_, limits, out);
        if (out.size() - start <= max) return;
        auto fits = [&](const detail::RenderLimits& l) {
            out.resize(start);
            render_(e, options_, l, out);
            return out.size() - start <= max;
        };
        for (bool minimal : {false, true}) {
            limits.minimal = minimal;
            limits.value_cap = 0;
            if (!fits(limits)) continue;
            std::size_t lo = 0;    // fits
            std::size_t hi = max;  // a value this long cannot fit beside the fixed fields
            while (lo + 1 < hi) {
                const std::size_t mid = lo + (hi - lo) / 2;
                limits.value_cap = mid;
                if (fits(limits))
                    lo = mid;
                else
                    hi = mid;
            }
            limits.value_cap = lo;
            (void)fits(limits);
            return;
        }
        std::size_t cut = start + max;
        while (cut > start && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out.resize(cut);
    }

    [[nodiscard]] std::string_view name() const override { return to_string(options_.kind); }

private:
    FormatOptions options_;
    Render render_;
};

Error key_error(const base::Config& c, const std::string& key, const std::string& what) {
    return make_error(agent::errc::config_error,
                      c.source_name() + ": key '" + key + "' (" + c.origin(key) + "): " + what);
}

bool printable_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7F; });
}

}  // namespace

std::string_view product_version() {
    return base::version();
}

std::string_view to_string(FormatKind k) {
    switch (k) {
        case FormatKind::rfc5424: return "rfc5424";
        case FormatKind::cef: return "cef";
        case FormatKind::leef: return "leef";
        case FormatKind::json: return "json";
        case FormatKind::hec: return "hec";
    }
    return "?";
}

std::string_view to_string(SyslogHeader h) {
    switch (h) {
        case SyslogHeader::none: return "none";
        case SyslogHeader::rfc5424: return "rfc5424";
        case SyslogHeader::rfc3164: return "rfc3164";
    }
    return "?";
}

int facility_from_name(std::string_view name) {
    for (std::size_t i = 0; i < kFacilities.size(); ++i)
        if (kFacilities[i] == name) return static_cast<int>(i);
    return -1;
}

std::string_view severity_name(int s) {
    static constexpr std::string_view kNames[] = {"emerg",   "alert",  "crit", "err",
                                                  "warning", "notice", "info", "debug"};
    return s >= 0 && s <= 7 ? kNames[s] : "info";
}

int cef_severity(int s) {
    static constexpr int kMap[] = {10, 9, 8, 7, 5, 3, 2, 0};
    return s >= 0 && s <= 7 ? kMap[s] : 2;
}

int leef_severity(int s) {
    static constexpr int kMap[] = {10, 9, 8, 7, 5, 3, 2, 1};
    return s >= 0 && s <= 7 ? kMap[s] : 2;
}

std::span<const base::KeySpec> format_config_keys() {
    using base::KeySpec;
    using base::KeyType;
    static constexpr KeySpec kKeys[] = {
        {"exporters.*.format", KeyType::choice, "rfc5424",
         "How events are rendered (docs/SIEM.md): `rfc5424` (syslog with structured data), `cef` (ArcSight), "
         "`leef` (QRadar LEEF 2.0), `json` (one object per event), `hec` (a Splunk HTTP Event Collector envelope).",
         0, INT64_MAX, "rfc5424|cef|leef|json|hec"},
        {"exporters.*.pen", KeyType::integer, "32473",
         "Private enterprise number of the RFC 5424 SD-IDs (`hsmaudit@<pen>`). 32473 is the IANA documentation "
         "number (RFC 5612): set your organization's own PEN in production.",
         1, 4294967295LL},
        {"exporters.*.bom", KeyType::boolean, "false",
         "RFC 5424: write a UTF-8 BOM before the MSG (the RFC's way to say the MSG is UTF-8). Off by default: "
         "several receivers keep it as part of the message text."},
        {"exporters.*.app_name", KeyType::string, "hsmaudit",
         "RFC 5424 APP-NAME of the agent's own events: 1 to 48 printable ASCII characters."},
        {"exporters.*.facility", KeyType::choice, "local3",
         "Syslog facility of the agent's events (audit records, alerts, checkpoints; syslog events keep their "
         "own). local3 is the appliance's remote audit logging facility.",
         0, INT64_MAX,
         "kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|logaudit|logalert|clock|local0|"
         "local1|local2|local3|local4|local5|local6|local7"},
        {"exporters.*.leef_delimiter", KeyType::string, "^",
         "LEEF 2.0 attribute delimiter: `tab` or one printable ASCII character other than a letter, a digit, "
         "space, `=`, `|` or `\\`. `^` by default because relays such as rsyslog escape tabs (#011) by default."},
        {"exporters.*.hec_sourcetype", KeyType::string, "hsmaudit:json",
         "Splunk HEC envelope: the sourcetype (printable ASCII, no space)."},
        {"exporters.*.hec_index", KeyType::string, "",
         "Splunk HEC envelope: the index (lower-case letters, digits, `_` and `-`). Empty: the token's default "
         "index."},
        {"exporters.*.max_message_bytes", KeyType::bytes, "8KiB",
         "Longest rendered event, its syslog header included; longer free-text values are cut (UTF-8 safe, ending "
         "with U+2026) and the event is marked truncated. At least 1 KiB: the fixed fields of a HEC envelope take "
         "about 700 bytes.",
         1024, 16 << 20},
        {"exporters.*.syslog_header", KeyType::choice, "auto",
         "The syslog header before a `cef`, `leef` or `json` message (docs/SIEM.md, \"Syslog header\"): `rfc5424` "
         "(`<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - `), `rfc3164` (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: `, UTC), "
         "or `none`. HOSTNAME is the appliance's host name (agent.hostname), TIMESTAMP the event's own time, "
         "APP-NAME and TAG `app_name`, PRI `facility` and the event's severity. `auto`: rfc5424 on `relp` and "
         "`syslog` destinations, none on the others (`kafka`). The `rfc5424` format has its own header and `hec` is "
         "an HTTP envelope: neither takes one.",
         0, INT64_MAX, "auto|rfc5424|rfc3164|none"},
    };
    return kKeys;
}

Result<FormatOptions> read_format_options(const base::Config& c, std::string_view destination,
                                          SyslogHeader auto_header) {
    const std::string prefix = "exporters." + std::string(destination) + ".";
    FormatOptions o;

    const std::string format_key = prefix + "format";
    const std::string& format = c.str(format_key);
    bool known = false;
    for (auto k : {FormatKind::rfc5424, FormatKind::cef, FormatKind::leef, FormatKind::json, FormatKind::hec}) {
        if (to_string(k) == format) {
            o.kind = k;
            known = true;
        }
    }
    if (!known) return key_error(c, format_key, "expected one of rfc5424|cef|leef|json|hec, got '" + format + "'");

    const std::string pen_key = prefix + "pen";
    const std::int64_t pen = c.integer(pen_key);
    if (pen < 1 || pen > 4294967295LL) return key_error(c, pen_key, "must be between 1 and 4294967295");
    o.pen = static_cast<std::uint32_t>(pen);

    o.bom = c.boolean(prefix + "bom");

    const std::string app_key = prefix + "app_name";
    o.app_name = c.str(app_key);
    if (o.app_name.empty() || o.app_name.size() > 48 || !printable_ascii(o.app_name))
        return key_error(c, app_key,
                         "must be 1 to 48 printable ASCII characters without spaces, got '" + o.app_name + "'");

    const std::string facility_key = prefix + "facility";
    o.facility = facility_from_name(c.str(facility_key));
    if (o.facility < 0) return key_error(c, facility_key, "unknown facility '" + c.str(facility_key) + "'");

    const std::string delim_key = prefix + "leef_delimiter";
    const std::string& delim = c.str(delim_key);
    if (delim == "tab") {
        o.leef_delimiter = '\t';
    } else {
        const bool ok = delim.size() == 1 && printable_ascii(delim) &&
                        std::isalnum(static_cast<unsigned char>(delim[0])) == 0 && delim[0] != '=' && delim[0] != '|' &&
                        delim[0] != '\\';
        if (!ok)
            return key_error(c, delim_key,
                             "expected `tab` or one printable ASCII character other than a letter, a digit, space, "
                             "'=', '|' or '\\', got '" +
                                 delim + "'");
        o.leef_delimiter = delim[0];
    }

    const std::string st_key = prefix + "hec_sourcetype";
    o.hec_sourcetype = c.str(st_key);
    if (o.hec_sourcetype.empty() || o.hec_sourcetype.size() > 256 || !printable_ascii(o.hec_sourcetype))
        return key_error(c, st_key,
                         "must be 1 to 256 printable ASCII characters without spaces, got '" + o.hec_sourcetype + "'");

    const std::string index_key = prefix + "hec_index";
    o.hec_index = c.str(index_key);
    const bool index_ok = o.hec_index.size() <= 80 &&
                          (o.hec_index.empty() || (o.hec_index[0] != '-' && o.hec_index[0] != '_')) &&
                          std::all_of(o.hec_index.begin(), o.hec_index.end(), [](char ch) {
                              return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
                          });
    if (!index_ok)
        return key_error(c, index_key,
                         "an index name is at most 80 lower-case letters, digits, '_' and '-', not starting with "
                         "'_' or '-', got '" +
                             o.hec_index + "'");

    const std::string max_key = prefix + "max_message_bytes";
    const std::int64_t max = c.integer(max_key);
    if (max < 1024 || max > (16 << 20)) return key_error(c, max_key, "must be between 1 KiB and 16 MiB");
    o.max_message_bytes = static_cast<std::size_t>(max);

    const std::string header_key = prefix + "syslog_header";
    const std::string& header = c.str(header_key);
    const bool takes_header = o.kind == FormatKind::cef || o.kind == FormatKind::leef || o.kind == FormatKind::json;
    if (header == "auto") {
        o.syslog_header = takes_header ? auto_header : SyslogHeader::none;
    } else if (header == "none") {
        o.syslog_header = SyslogHeader::none;
    } else {
        o.syslog_header = header == "rfc3164" ? SyslogHeader::rfc3164 : SyslogHeader::rfc5424;
        if (!takes_header)
            return key_error(c, header_key,
                             "format " + std::string(to_string(o.kind)) +
                                 (o.kind == FormatKind::rfc5424 ? " has its own syslog header"
                                                                : " is an HTTP envelope, not a syslog message") +
                                 ": use a header with cef, leef or json, or set none");
    }
    return o;
}

agent::EventRenderer as_renderer(std::unique_ptr<Formatter> formatter) {
    std::shared_ptr<const Formatter> f(std::move(formatter));
    return [f](const agent::Event& e, std::string& out) { f->format(e, out); };
}

std::unique_ptr<Formatter> make_formatter(const FormatOptions& options) {
    FormatOptions o = options;
    if (o.product_version.empty()) o.product_version = std::string(product_version());
    return std::make_unique<FormatterImpl>(std::move(o));
}

Result<std::unique_ptr<Formatter>> make_formatter(const base::Config& config, std::string_view destination,
                                                  SyslogHeader auto_header) {
    auto o = read_format_options(config, destination, auto_header);
    if (!o) return std::move(o).error();
    return make_formatter(*o);
}

}  // namespace hsmaudit::exporters::formats
