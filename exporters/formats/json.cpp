// JSON lines (one object per event, stable snake_case keys) and the Splunk HEC envelope, written
// straight into the caller's buffer. The bytes are those nlohmann's ordered_json dump() gave
// before (no spaces, keys in the order below, strings escaped as its dump_escaped with
// ensure_ascii off and error_handler_t::replace, integers in decimal), without building a DOM:
// the agent rendered a few hundred small strings and nodes per event and freed them again.
// tests/unit/exporters/formats/json_writer_test.cpp compares the two byte for byte.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "exporters/formats/detail/render.h"
#include "mac/crypto.h"
#include "mac/note.h"
#include "mac/record.h"

namespace hsmaudit::exporters::formats::detail {
namespace {

constexpr std::size_t kUncapped = std::numeric_limits<std::size_t>::max();

/// What a byte needs inside a JSON string: nothing, an escape (control characters, '"', '\\';
/// DEL and '/' are written as they are, as nlohmann does), or a UTF-8 check (bytes >= 0x80).
enum : std::uint8_t { kPlain, kEscape, kHigh };
constexpr std::array<std::uint8_t, 256> kByteClass = [] {
    std::array<std::uint8_t, 256> t{};
    for (std::size_t c = 0; c < 256; ++c)
        t[c] = c < 0x20 || c == '"' || c == '\\' ? kEscape : c >= 0x80 ? kHigh : kPlain;
    return t;
}();

/// The escape of a kEscape byte, as nlohmann writes it: \b \t \n \f \r \" \\, else \u00xx
/// (lowercase hex). Writes it to `buf` and returns its length (2 or 6).
std::size_t escape_of(unsigned char c, char* buf) {
    static constexpr char kHex[] = "0123456789abcdef";
    buf[0] = '\\';
    switch (c) {
        case '\b': buf[1] = 'b'; return 2;
        case '\t': buf[1] = 't'; return 2;
        case '\n': buf[1] = 'n'; return 2;
        case '\f': buf[1] = 'f'; return 2;
        case '\r': buf[1] = 'r'; return 2;
        case '"': buf[1] = '"'; return 2;
        case '\\': buf[1] = '\\'; return 2;
        default: break;
    }
    buf[1] = 'u';
    buf[2] = '0';
    buf[3] = '0';
    buf[4] = kHex[c >> 4];
    buf[5] = kHex[c & 0xF];
    return 6;
}

/// Length of the "maximal subpart" of an invalid UTF-8 sequence at in[i] (Unicode 15, 3.9): the
/// lead byte and the continuation bytes that could still have completed it, at least 1. nlohmann's
/// replace handler writes one U+FFFD for each.
std::size_t maximal_subpart(std::string_view in, std::size_t i) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need = 2;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        return 1;
    }
    std::size_t k = 1;
    while (k <= need && i + k < in.size()) {
        const auto b = static_cast<unsigned char>(in[i + k]);
        if (b < lo || b > hi) break;
        lo = 0x80;
        hi = 0xBF;
        ++k;
    }
    return k;
}

/// How bytes that are not valid UTF-8 are replaced: `clean`, clean()'s rule (one U+FFFD per byte
/// that does not start a valid sequence: the event's text, which the old renderer passed through
/// clean() first); `nlohmann`, the replace handler's (one U+FFFD per maximal subpart: strings it
/// received uncleaned, such as the HEC sourcetype of options built by hand).
enum class Invalid : std::uint8_t { clean, nlohmann };

/// True if one of the 8 bytes of `w` is not kPlain: a control character, '"', '\\' or >= 0x80
/// (the "has a zero byte" and "has a byte less than n" tests of Bit Twiddling Hacks).
constexpr bool has_special(std::uint64_t w) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    auto has_zero = [](std::uint64_t x) { return ((x - kOnes) & ~x & kHighs) != 0; };
    const bool control = ((w - kOnes * 0x20) & ~w & kHighs) != 0;  // a byte < 0x20 (or >= 0x80)
    return (w & kHighs) != 0 || control || has_zero(w ^ (kOnes * '"')) || has_zero(w ^ (kOnes * '\\'));
}

constexpr std::uint64_t word(const char (&s)[9]) {
    std::uint64_t w = 0;
    for (int i = 7; i >= 0; --i) w = (w << 8) | static_cast<unsigned char>(s[i]);
    return w;
}
static_assert(!has_special(word("abc ~/0\x7f")) && !has_special(word("        ")));
static_assert(has_special(word("abc\"defg")) && has_special(word("abcdefg\\")) &&
              has_special(word("\x1f"
                               "bcdefgh")));
static_assert(has_special(word("abcdefg\x80")) &&
              has_special(word("abcd\xff"
                               "fgh")) &&
              has_special(word("abcdefg\0")));

/// Appends `v` escaped as the body of a JSON string. Returns true if a byte was not valid UTF-8.
template <Invalid kMode>
bool append_escaped(std::string_view v, std::string& out) {
    bool replaced = false;
    std::size_t run = 0;  // start of the bytes not yet copied
    std::size_t i = 0;
    char buf[6];
    while (i < v.size()) {
        // Eight plain bytes at a time: most of the text needs nothing.
        while (i + 8 <= v.size()) {
            std::uint64_t w = 0;
            std::memcpy(&w, v.data() + i, 8);
            if (has_special(w)) break;
            i += 8;
        }
        if (i >= v.size()) break;
        const auto c = static_cast<unsigned char>(v[i]);
        const std::uint8_t cls = kByteClass[c];
        if (cls == kPlain) {
            ++i;
            continue;
        }
        if (cls == kEscape) {
            out.append(v.data() + run, i - run);
            out.append(buf, escape_of(c, buf));
            run = ++i;
            continue;
        }
        const std::size_t n = utf8_sequence_length(v, i);
        if (n != 0) {
            i += n;  // valid: copied with the run
            continue;
        }
        out.append(v.data() + run, i - run);
        out += kReplacement;
        replaced = true;
        i += kMode == Invalid::clean ? 1 : maximal_subpart(v, i);
        run = i;
    }
    out.append(v.data() + run, v.size() - run);
    return replaced;
}

/// Appends one JSON object, member by member, to a caller's string (the order of the calls is the
/// order of the keys). Values of the event are cleaned (clean(): valid UTF-8, cut to a cap) as the
/// old renderer's Builder did; keys and values this file writes as literals are plain ASCII.
///
/// Thread-safety: one per rendering (it refers to the caller's string); no state beyond the call.
class Writer {
public:
    Writer(std::string& out, const RenderLimits& limits) : out_(out), limits_(limits) {}

    void open() { out_ += '{'; }
    void close() { out_ += '}'; }
    /// `key` (ASCII, nothing to escape) and the colon, after a comma unless the object is empty.
    void key(std::string_view key) {
        if (out_.back() != '{') out_ += ',';
        out_ += '"';
        out_ += key;
        out_ += "\":";
    }
    /// A member whose value is an object: the caller writes its members, then close().
    void open(std::string_view k) {
        key(k);
        open();
    }

    /// Free text the value cap may cut.
    void text(std::string_view k, std::string_view v) { cleaned(k, v, limits_.value_cap); }
    /// Identifiers and fixed-format values: never cut.
    void text_whole(std::string_view k, std::string_view v) { cleaned(k, v, kUncapped); }
    /// A short identifier: cut only below RenderLimits::kShortFieldMin.
    void short_text(std::string_view k, std::string_view v) { cleaned(k, v, limits_.short_cap()); }
    /// A value that was not cleaned before: option strings, hex, base64, names of this program.
    void raw_text(std::string_view k, std::string_view v) {
        key(k);
        out_ += '"';
        (void)append_escaped<Invalid::nlohmann>(v, out_);
        out_ += '"';
    }
    /// Writes a value of the event cleaned and cut to `cap`. Returns true if it had bytes that are
    /// not UTF-8 (known only when nothing is cut: cap kUncapped).
    bool cleaned(std::string_view k, std::string_view v, std::size_t cap) {
        key(k);
        out_ += '"';
        const bool replaced = string_body(v, cap);
        out_ += '"';
        return replaced;
    }

    /// A member's value (after unique_members' key): free text the value cap may cut.
    void value_text(std::string_view v) {
        out_ += '"';
        (void)string_body(v, limits_.value_cap);
        out_ += '"';
    }

    /// A value the caller composes in place: begin_composed() writes the key and returns where the
    /// raw text starts; the caller appends the text to out(); end_composed() cleans, cuts and
    /// escapes it there. No copy unless it needs cleaning or cutting.
    std::size_t begin_composed(std::string_view k) {
        key(k);
        out_ += '"';
        return out_.size();
    }
    [[nodiscard]] std::string& out() { return out_; }
    void end_composed(std::size_t start, std::size_t cap) {
        const std::size_t len = out_.size() - start;
        // Valid UTF-8 within the cap: clean() would return it as it is; only escapes to make.
        std::size_t first_escape = std::string::npos;
        std::size_t extra = 0;
        bool valid = true;
        char buf[6];
        const std::string_view text(out_.data() + start, len);
        for (std::size_t i = 0; i < len;) {
            const auto c = static_cast<unsigned char>(text[i]);
            const std::uint8_t cls = kByteClass[c];
            if (cls == kHigh) {
                const std::size_t n = utf8_sequence_length(text, i);
                if (n == 0) {
                    valid = false;
                    break;
                }
                i += n;
                continue;
            }
            if (cls == kEscape) {
                if (first_escape == std::string::npos) first_escape = i;
                extra += escape_of(c, buf) - 1;
            }
            ++i;
        }
        if (!valid || len > cap) {
            const std::string composed(text);  // rare: text that is not UTF-8, or a cut
            out_.resize(start);
            (void)string_body(composed, cap);
        } else if (extra != 0) {
            // Escape in place, from the end: each byte moves right by the escapes before it.
            const std::size_t end = out_.size();
            out_.resize(end + extra);
            char* d = out_.data();
            std::size_t w = end + extra;
            for (std::size_t r = end; r > start + first_escape;) {
                const auto c = static_cast<unsigned char>(d[--r]);
                if (kByteClass[c] == kEscape) {
                    const std::size_t n = escape_of(c, buf);
                    w -= n;
                    std::memcpy(d + w, buf, n);
                } else {
                    d[--w] = static_cast<char>(c);
                }
            }
        }
        out_ += '"';
    }

    void number(std::string_view k, std::uint64_t v) {
        key(k);
        append_number(v);
    }
    void number(std::string_view k, std::int64_t v) {
        key(k);
        append_number(v);
    }
    void number(std::string_view k, int v) { number(k, static_cast<std::int64_t>(v)); }
    void number(std::string_view k, std::uint32_t v) { number(k, static_cast<std::uint64_t>(v)); }
    void yes(std::string_view k) {
        key(k);
        out_ += "true";
    }

    /// An object of members whose keys may repeat (audit details, structured data): a key already
    /// present gets "#2", "#3"... (kept, not overwritten), as the old renderer's put_unique().
    /// `key_of(item)` is the raw key, `value(item)` writes the value after it.
    template <class Items, class KeyOf, class Value>
    void unique_members(const Items& items, KeyOf key_of, Value value) {
        open();
        if (keys_distinct(items, key_of)) {
            // Every key valid UTF-8 and unlike the others: clean() keeps each, none gets a suffix.
            for (const auto& item : items) {
                member_key(key_of(item));
                value(item);
            }
        } else {
            std::vector<std::string> taken;  // rare: repeated keys or keys that are not UTF-8
            taken.reserve(items.size());
            for (const auto& item : items) {
                const std::string k(clean(key_of(item), kUncapped, scratch_));
                std::string unique = k;
                for (int n = 2; std::find(taken.begin(), taken.end(), unique) != taken.end(); ++n)
                    unique = k + "#" + std::to_string(n);
                member_key(unique);
                taken.push_back(std::move(unique));
                value(item);
            }
        }
        close();
    }

private:
    template <class Items, class KeyOf>
    static bool keys_distinct(const Items& items, KeyOf key_of) {
        constexpr std::size_t kMaxPairwise = 64;  // beyond: the map-like path, still exact
        if (items.size() > kMaxPairwise) return false;
        for (auto i = items.begin(); i != items.end(); ++i) {
            const std::string_view k = key_of(*i);
            if (!is_valid_utf8(k)) return false;
            for (auto j = items.begin(); j != i; ++j)
                if (key_of(*j) == k) return false;
        }
        return true;
    }

    /// A key from the event, cleaned (valid UTF-8 already when it comes from unique_members' slow path).
    void member_key(std::string_view k) {
        if (out_.back() != '{') out_ += ',';
        out_ += '"';
        (void)append_escaped<Invalid::clean>(k, out_);
        out_ += "\":";
    }

    bool string_body(std::string_view v, std::size_t cap) {
        if (cap == kUncapped) return append_escaped<Invalid::clean>(v, out_);
        (void)append_escaped<Invalid::clean>(clean(v, cap, scratch_), out_);
        return false;
    }

    template <class T>
    void append_number(T v) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        out_.append(buf, r.ptr);
    }

    std::string& out_;
    const RenderLimits& limits_;
    std::string scratch_;  // clean()'s output when it changes a value (rare: not UTF-8, or cut)
};

void write_time(Writer& w, std::string_view k, std::int64_t ms) {
    w.key(k);
    w.out() += '"';
    mac::append_time(ms, w.out());  // digits and separators: nothing to escape
    w.out() += '"';
}

/// The event object (docs/SIEM.md, "JSON").
void write_event(Writer& w, const agent::Event& e, const RenderLimits& limits) {
    const int severity = agent::syslog_severity(e);
    const std::int64_t t = event_time_ms(e);
    w.open();
    if (!e.event_id.empty())
        w.text_whole("event_id", e.event_id);
    else
        w.text_whole("event_id", agent::make_event_id(e));
    w.raw_text("stream", agent::to_string(e.stream));
    write_time(w, "time", t);
    w.number("time_ms", t);
    w.number("severity", severity);
    w.raw_text("severity_name", severity_name(severity));
    w.text_whole("host", e.host);
    w.text_whole("serial", event_serial(e));
    std::size_t at = w.begin_composed("type");
    append_event_type(e, w.out());
    w.end_composed(at, kUncapped);
    switch (e.stream) {
        case agent::Stream::audit: {
            if (is_chain_entry(e)) {
                w.open("segment");
                w.raw_text("entry", entry_name(e.entry));
                w.number("epoch", e.epoch);
                w.number("position", e.position);
                w.text("line", e.line);
                w.close();
                break;
            }
            const auto& r = e.record;
            w.open("audit");
            w.number("seq", r.seq);
            if (r.seq != 0) {
                // The record's leaf in the chain's Merkle tree and the first tree size holding it (FORMAT.md 10).
                w.number("tlog_index", r.seq - 1);
                w.number("tlog_size", r.seq);
            }
            w.text_whole("mac", e.mac_hex);
            w.number("boot", r.boot);
            w.number("partition", r.partition);
            w.short_text("role", r.role);
            w.number("session", r.session);
            w.short_text("event", r.event);
            w.short_text("class", r.event_class);
            w.number("result", r.result);
            w.raw_text("outcome", r.result == 0 ? "success" : "failure");
            if (!limits.minimal) {
                w.key("details");
                w.unique_members(
                    r.details, [](const mac::Detail& d) -> std::string_view { return d.key; },
                    [&](const mac::Detail& d) { w.value_text(d.value); });
                // The exact line of the segment file: with the audit secret a SIEM can check its MAC.
                if (!e.line.empty()) {
                    w.text("record_line", e.line);
                } else {
                    at = w.begin_composed("record_line");
                    mac::encode_record_body(r, w.out());
                    if (!e.mac_hex.empty()) {
                        w.out() += " mac=";
                        w.out() += e.mac_hex;
                    }
                    w.end_composed(at, limits.value_cap);
                }
            }
            w.close();
            break;
        }
        case agent::Stream::syslog: {
            const auto& s = e.syslog;
            w.open("syslog");
            w.number("facility", s.facility);
            w.number("severity", s.severity);
            w.short_text("timestamp", s.timestamp);
            w.short_text("host", s.host);
            w.short_text("app", s.app);
            w.short_text("procid", s.procid);
            w.short_text("msgid", s.msgid);
            if (!limits.minimal) {
                w.key("sd");
                using Params = std::vector<std::pair<std::string, std::string>>;
                w.unique_members(
                    s.sd, [](const std::pair<std::string, Params>& el) -> std::string_view { return el.first; },
                    [&](const std::pair<std::string, Params>& el) {
                        w.unique_members(
                            el.second,
                            [](const std::pair<std::string, std::string>& p) -> std::string_view { return p.first; },
                            [&](const std::pair<std::string, std::string>& p) { w.value_text(p.second); });
                    });
            }
            // The exact bytes: JSON escapes every control character (LF, CR, NUL...) losslessly;
            // text that is not valid UTF-8 is written with U+FFFD and its bytes again in base64
            // (not when the event is cut: a cut base64 value would decode to nothing useful).
            const bool msg_replaced = w.cleaned("msg", s.msg, limits.value_cap);
            if (!limits.truncated() && msg_replaced) w.raw_text("msg_base64", mac::base64_encode(mac::as_bytes(s.msg)));
            w.short_text("transport", s.transport);
            w.short_text("peer", s.peer);
            if (e.received_ms != 0) write_time(w, "received", e.received_ms);
            if (!s.malformed.empty()) w.text("malformed", s.malformed);
            if (s.oversized) w.yes("oversized");
            // The message exactly as received (header, structured data and MSG): dropped with the
            // structured data when the event does not fit.
            if (!s.raw.empty() && !limits.minimal) {
                const bool raw_replaced = w.cleaned("raw", s.raw, limits.value_cap);
                if (!limits.truncated() && raw_replaced)
                    w.raw_text("raw_base64", mac::base64_encode(mac::as_bytes(s.raw)));
            }
            w.close();
            break;
        }
        case agent::Stream::alerts: {
            w.open("alert");
            w.short_text("kind", e.alert.kind);
            w.raw_text("severity", agent::to_string(e.alert.severity));
            w.text("message", e.alert.message);
            w.number("seq", e.alert.seq);
            w.close();
            break;
        }
        case agent::Stream::checkpoints: {
            const CheckpointFields f = checkpoint_fields(e.checkpoint);
            w.open("checkpoint");
            if (f.ok) {
                w.number("seq", f.seq);
                w.number("epoch", f.epoch);
                w.raw_text("mac", f.mac);
                w.raw_text("chain", f.chain);
            }
            w.text("line", e.checkpoint);
            w.close();
            break;
        }
    }
    if (e.stream == agent::Stream::alerts || (e.stream == agent::Stream::audit && !is_chain_entry(e))) {
        at = w.begin_composed("message");
        append_event_message(e, w.out());
        w.end_composed(at, limits.value_cap);
    }
    if (limits.truncated()) w.yes("truncated");
    w.close();
}

}  // namespace

void render_json(const agent::Event& e, const FormatOptions&, const RenderLimits& limits, std::string& out) {
    Writer w(out, limits);
    write_event(w, e, limits);
}

void render_hec(const agent::Event& e, const FormatOptions& o, const RenderLimits& limits, std::string& out) {
    // "time": epoch seconds with exactly three decimals (a double would not be).
    const std::int64_t t = event_time_ms(e);
    std::int64_t seconds = t / 1000;
    std::int64_t millis = t % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    out += "{\"time\":";
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, seconds).ptr);
    out += '.';
    out += static_cast<char>('0' + millis / 100);
    out += static_cast<char>('0' + millis / 10 % 10);
    out += static_cast<char>('0' + millis % 10);

    Writer w(out, limits);
    w.text_whole("host", e.host);
    std::size_t at = w.begin_composed("source");
    w.out() += "hsmaudit:";
    w.out() += agent::to_string(e.stream);
    w.end_composed(at, kUncapped);
    w.raw_text("sourcetype", o.hec_sourcetype);
    if (!o.hec_index.empty()) w.raw_text("index", o.hec_index);
    w.key("event");
    write_event(w, e, limits);
    w.open("fields");
    w.text_whole("serial", event_serial(e));
    w.raw_text("stream", agent::to_string(e.stream));
    if (e.stream == agent::Stream::audit && !is_chain_entry(e)) w.short_text("class", e.record.event_class);
    w.raw_text("severity", severity_name(agent::syslog_severity(e)));
    w.close();
    w.close();
}

}  // namespace hsmaudit::exporters::formats::detail
