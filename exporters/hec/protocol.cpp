#include "exporters/hec/protocol.h"

#include <openssl/rand.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>

#include <nlohmann/json.hpp>

#include "exporters/hec/errc.h"

namespace hsmaudit::exporters::hec {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxText = 200;
constexpr int kMaxDepth = 16;
constexpr std::size_t kMaxAcksInReply = 100'000;

/// Receiver text for a message: printable ASCII only, cut at kMaxText.
std::string printable(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (out.size() >= kMaxText) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(c);
        out += (u >= 0x20 && u < 0x7f) ? c : '?';
    }
    return out;
}

/// Refuses nesting deeper than kMaxDepth before nlohmann builds (and later destroys) the tree.
bool depth_ok(std::string_view body) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : body) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > kMaxDepth) return false;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return true;
}

Result<Json> parse_bounded(std::string_view body, std::string_view what) {
    if (body.size() > kMaxReplyBytes)
        return make_error(errc::protocol_error,
                          std::string(what) + ": answer longer than " + std::to_string(kMaxReplyBytes) + " bytes");
    if (!depth_ok(body)) return make_error(errc::protocol_error, std::string(what) + ": answer nested too deep");
    Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
        return make_error(errc::protocol_error, std::string(what) + ": answer is not JSON: '" + printable(body) + "'");
    if (!j.is_object()) return make_error(errc::protocol_error, std::string(what) + ": answer is not a JSON object");
    return j;
}

std::optional<std::uint64_t> as_u64(const Json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) {
        const auto i = v.get<std::int64_t>();
        if (i >= 0) return static_cast<std::uint64_t>(i);
    }
    return std::nullopt;
}

/// A decimal ackId as HEC writes it in the keys of "acks": digits only, fits in 64 bits.
std::optional<std::uint64_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

std::string describe(long status, const std::optional<EventReply>& r) {
    std::string s = "HTTP " + std::to_string(status);
    if (r && r->code) s += ", HEC code " + std::to_string(*r->code);
    if (r && !r->text.empty()) s += " '" + r->text + "'";
    if (r && r->invalid_event_number) s += " (event " + std::to_string(*r->invalid_event_number) + " of the batch)";
    return s;
}

}  // namespace

Result<EventReply> parse_event_reply(std::string_view body) {
    auto j = parse_bounded(body, "HEC");
    if (!j) return std::move(j).error();
    EventReply r;
    if (auto it = j->find("code"); it != j->end()) {
        if (!it->is_number_integer()) return make_error(errc::protocol_error, "HEC: 'code' is not an integer");
        const auto c = it->get<std::int64_t>();
        if (c < 0 || c > 1'000'000) return make_error(errc::protocol_error, "HEC: 'code' out of range");
        r.code = static_cast<int>(c);
    }
    if (auto it = j->find("text"); it != j->end()) {
        if (!it->is_string()) return make_error(errc::protocol_error, "HEC: 'text' is not a string");
        r.text = printable(it->get_ref<const std::string&>());
    }
    if (auto it = j->find("ackId"); it != j->end()) {
        r.ack_id = as_u64(*it);
        if (!r.ack_id) return make_error(errc::protocol_error, "HEC: 'ackId' is not a non-negative integer");
    }
    if (auto it = j->find("invalid-event-number"); it != j->end()) r.invalid_event_number = as_u64(*it);
    return r;
}

Result<std::vector<std::pair<std::uint64_t, bool>>> parse_ack_reply(std::string_view body) {
    auto j = parse_bounded(body, "HEC ack");
    if (!j) return std::move(j).error();
    auto it = j->find("acks");
    if (it == j->end() || !it->is_object())
        return make_error(errc::protocol_error, "HEC ack: no 'acks' object in the answer");
    if (it->size() > kMaxAcksInReply) return make_error(errc::protocol_error, "HEC ack: too many acks in the answer");
    std::vector<std::pair<std::uint64_t, bool>> out;
    out.reserve(it->size());
    for (const auto& [key, value] : it->items()) {
        auto id = parse_id(key);
        if (!id) return make_error(errc::protocol_error, "HEC ack: '" + printable(key) + "' is not an ackId");
        if (!value.is_boolean())
            return make_error(errc::protocol_error, "HEC ack: the status of ackId " + key + " is not a boolean");
        out.emplace_back(*id, value.get<bool>());
    }
    return out;
}

std::string render_ack_request(const std::vector<std::uint64_t>& ids) {
    std::string s = "{\"acks\":[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) s += ',';
        s += std::to_string(ids[i]);
    }
    s += "]}";
    return s;
}

Status classify(long http_status, const std::optional<EventReply>& reply, std::string_view what) {
    const int code = reply && reply->code ? *reply->code : -1;
    const std::string w(what);
    if (http_status == 200 && (code == 0 || code == -1 || code == static_cast<int>(HecCode::healthy))) return {};
    if (http_status == 401 || http_status == 403 || (code >= 1 && code <= 4))
        return make_error(errc::token_refused, w + ": the token was refused (" + describe(http_status, reply) + ")");
    if (http_status == 503 || http_status == 429 || code == static_cast<int>(HecCode::server_busy) ||
        (code >= static_cast<int>(HecCode::unhealthy_queues_full) &&
         code <= static_cast<int>(HecCode::unhealthy_queues_full_2)))
        return make_error(errc::busy, w + ": the receiver is busy (" + describe(http_status, reply) + "); backing off");
    if (code == static_cast<int>(HecCode::ack_disabled))
        return make_error(errc::ack_disabled, w + ": indexer acknowledgement is not enabled on the token (" +
                                                  describe(http_status, reply) +
                                                  "): enable it on the token, or set ack: false");
    if (http_status == 413 || code == 5 || code == 6 || code == 7 || code == 12 || code == 13 || code == 15)
        return make_error(errc::rejected, w + ": the receiver refused the data (" + describe(http_status, reply) +
                                              "); delivery of this destination blocks until it accepts it");
    if (http_status >= 500 || code == static_cast<int>(HecCode::internal_error))
        return make_error(errc::server_error, w + ": server error (" + describe(http_status, reply) + ")");
    return make_error(errc::protocol_error, w + ": unexpected answer (" + describe(http_status, reply) + ")");
}

Result<std::string> make_channel_id() {
    std::array<unsigned char, 16> b{};
    if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1)
        return make_error(errc::internal, "RAND_bytes failed: no channel id");
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += kHex[b[i] >> 4];
        s += kHex[b[i] & 0x0f];
    }
    return s;
}

Result<std::string> gzip(std::string_view data) {
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return make_error(errc::internal, "zlib deflateInit2 failed");
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    const auto written = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return make_error(errc::internal, "zlib deflate failed (" + std::to_string(rc) + ")");
    out.resize(written);
    return out;
}

// ---- AckTracker ----

Status AckTracker::add_pending(std::uint64_t events, std::uint64_t id, Clock::time_point now) {
    if (by_id_.contains(id))
        return make_error(errc::protocol_error,
                          "HEC: ackId " + std::to_string(id) + " given twice on one channel (still awaited)");
    by_id_.emplace(id, first_ + requests_.size());
    requests_.push_back(Request{events, id, now, false});
    added_ += events;
    return {};
}

void AckTracker::add_acknowledged(std::uint64_t events) {
    requests_.push_back(Request{events, 0, {}, true});
    added_ += events;
    advance();
}

bool AckTracker::acknowledge(std::uint64_t id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    requests_[static_cast<std::size_t>(it->second - first_)].done = true;
    by_id_.erase(it);
    advance();
    return true;
}

void AckTracker::advance() {
    while (!requests_.empty() && requests_.front().done) {
        prefix_ += requests_.front().events;
        requests_.pop_front();
        ++first_;
    }
}

std::vector<std::uint64_t> AckTracker::pending_ids(std::size_t max) const {
    std::vector<std::uint64_t> ids;
    for (const auto& r : requests_) {
        if (ids.size() >= max) break;
        if (!r.done) ids.push_back(r.id);
    }
    return ids;
}

std::optional<AckTracker::Clock::time_point> AckTracker::oldest_pending() const {
    for (const auto& r : requests_)
        if (!r.done) return r.sent;
    return std::nullopt;
}

void AckTracker::reset() {
    requests_.clear();
    by_id_.clear();
    first_ = 0;
    prefix_ = 0;
    added_ = 0;
}

}  // namespace hsmaudit::exporters::hec
