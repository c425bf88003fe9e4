#include "exporters/hec/hec_exporter.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "base/files.h"
#include "base/logger.h"
#include "exporters/common/host_port.h"
#include "exporters/hec/detail/http_client.h"
#include "exporters/hec/errc.h"

namespace hsmaudit::exporters::hec {

namespace {

constexpr std::string_view kEventPath = "/services/collector/event";
constexpr std::string_view kAckPath = "/services/collector/ack";
constexpr std::string_view kHealthPath = "/services/collector/health";

constexpr base::KeySpec kKeys[] = {
    {"exporters.*.splunk_hec.target", base::KeyType::string, "",
     "host:port of Splunk's HTTP Event Collector ([addr]:port for IPv6), e.g. splunk.example.com:8088"},
    {"exporters.*.splunk_hec.tls", base::KeyType::boolean, "true",
     "HTTPS with certificate verification. Plain HTTP is refused unless this is set to false explicitly, and then "
     "logged as a warning at start"},
    {"exporters.*.splunk_hec.server_name", base::KeyType::string, "",
     "the name the server's certificate must carry (and the URL's host); empty: the target's host. Set it when the "
     "target is an address"},
    {"exporters.*.splunk_hec.ca", base::KeyType::path, "",
     "PEM file of the CA certificate(s) the HEC server's certificate must chain to (the only trust anchors; the "
     "system store is not used); required with tls"},
    {"exporters.*.splunk_hec.cert", base::KeyType::path, "",
     "PEM file of this agent's client certificate, where the HEC port requires one (with key)"},
    {"exporters.*.splunk_hec.key", base::KeyType::path, "",
     "PEM file of the client certificate's private key; refused if group or others may read it (chmod 600)"},
    {"exporters.*.splunk_hec.token_file", base::KeyType::path, "",
     "file holding the HEC token (one line); refused if group or others may read it (chmod 600); read again at "
     "every connect, never logged"},
    {"exporters.*.splunk_hec.ack", base::KeyType::boolean, "true",
     "indexer acknowledgement: a batch counts delivered once Splunk reports it indexed (enable \"Indexer "
     "acknowledgement\" on the token). false: once HEC answered 200 (weaker: parsed, not yet indexed)"},
    {"exporters.*.splunk_hec.gzip", base::KeyType::boolean, "true", "compress each POST (Content-Encoding: gzip)"},
    {"exporters.*.splunk_hec.batch_events", base::KeyType::integer, "100", "most events in one POST", 1, 100'000},
    {"exporters.*.splunk_hec.batch_bytes", base::KeyType::bytes, "1MiB",
     "most bytes (before compression) in one POST; an event longer than this goes alone", 4096,
     std::int64_t{64} * 1024 * 1024},
    {"exporters.*.splunk_hec.timeout", base::KeyType::duration, "10s",
     "bound on each HTTP request (a POST of events, an ack poll) including the connect", 1000, 600'000},
    {"exporters.*.splunk_hec.connect_timeout", base::KeyType::duration, "5s",
     "bound on the TCP connect and TLS handshake", 100, 600'000},
    {"exporters.*.splunk_hec.ack_timeout", base::KeyType::duration, "20s",
     "an ackId not reported indexed within this breaks the connection: the unacknowledged events are sent again "
     "(keep it below the destination's ack_timeout)",
     1000, 3'600'000},
    {"exporters.*.splunk_hec.ack_poll_interval", base::KeyType::duration, "250ms",
     "how often /services/collector/ack is polled while acknowledgements are awaited", 10, 60'000},
};

std::string key_of(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + ".splunk_hec." + std::string(k);
}

std::string bracketed(const std::string& host) {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

bool valid_server_name(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

}  // namespace

std::string HecOptions::base_url() const {
    return std::string(tls ? "https://" : "http://") + bracketed(server_name.empty() ? host : server_name) + ":" + port;
}

std::string HecOptions::peer() const {
    return std::string(tls ? "splunk_hec+https://" : "splunk_hec+http://") + bracketed(host) + ":" + port;
}

std::span<const base::KeySpec> hec_config_keys() {
    return kKeys;
}

Result<std::string> read_token(const std::string& path, std::string_view key) {
    if (path.empty()) return make_error(errc::config_error, std::string(key) + ": the HEC token file is required");
    auto secret = base::read_secret_file(path, 4096);
    if (!secret) return make_error(errc::config_error, std::string(key) + ": " + secret.error().describe());
    std::string token = std::move(*secret);
    while (!token.empty() &&
           (token.back() == '\n' || token.back() == '\r' || token.back() == ' ' || token.back() == '\t'))
        token.pop_back();
    const bool printable = std::all_of(token.begin(), token.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
    });
    if (token.empty() || !printable) {
        OPENSSL_cleanse(token.data(), token.size());
        return make_error(errc::config_error, std::string(key) + ": " + path +
                                                  ": the token must be one line of printable ASCII without spaces");
    }
    return token;
}

Result<HecOptions> read_hec_options(const base::Config& config, std::string_view name) {
    HecOptions o;
    auto k = [&](std::string_view key) { return key_of(name, key); };
    auto target = common::parse_host_port(config.str(k("target")), k("target"));
    if (!target) return make_error(errc::config_error, target.error().message);
    o.host = target->first;
    o.port = target->second;
    o.tls = config.boolean(k("tls"));
    o.server_name = config.str(k("server_name"));
    o.ca = config.str(k("ca"));
    o.cert = config.str(k("cert"));
    o.key = config.str(k("key"));
    o.token_file = config.str(k("token_file"));
    o.ack = config.boolean(k("ack"));
    o.gzip = config.boolean(k("gzip"));
    o.batch_events = static_cast<std::size_t>(config.integer(k("batch_events")));
    o.batch_bytes = static_cast<std::size_t>(config.integer(k("batch_bytes")));
    o.timeout = std::chrono::milliseconds(config.integer(k("timeout")));
    o.connect_timeout = std::chrono::milliseconds(config.integer(k("connect_timeout")));
    o.ack_timeout = std::chrono::milliseconds(config.integer(k("ack_timeout")));
    o.ack_poll_interval = std::chrono::milliseconds(config.integer(k("ack_poll_interval")));
    o.destination = "exporters." + std::string(name);

    if (!valid_server_name(o.server_name))
        return make_error(errc::config_error, k("server_name") + ": '" + o.server_name +
                                                  "' is not a host name (letters, digits, '-' and '.')");
    auto token = read_token(o.token_file, k("token_file"));
    if (!token) return std::move(token).error();
    OPENSSL_cleanse(token->data(), token->size());
    if (!o.tls) {
        base::logger().warn(
            "exporters.{}: plain HTTP to Splunk HEC (splunk_hec.tls: false): audit records and the HEC token cross "
            "the network unencrypted and the receiver is not authenticated",
            name);
        return o;
    }
    if (o.ca.empty())
        return make_error(errc::config_error,
                          k("ca") + ": a CA certificate is required to verify the HEC server (or tls: false)");
    if (o.cert.empty() != o.key.empty())
        return make_error(errc::config_error, k(o.cert.empty() ? "cert" : "key") +
                                                  ": client certificate and key go together (set both or neither)");
    if (!o.key.empty()) {
        auto secret = base::read_secret_file(o.key);
        if (!secret) return make_error(errc::config_error, k("key") + ": " + secret.error().describe());
        OPENSSL_cleanse(secret->data(), secret->size());
    }
    return o;
}

// ---- the exporter ----

struct HecExporter::Headers {
    detail::SlistPtr event;
    detail::SlistPtr ack;
    detail::SlistPtr health;
};

HecExporter::HecExporter(HecOptions options, std::unique_ptr<formats::Formatter> formatter, std::string channel)
    : options_(std::move(options)), formatter_(std::move(formatter)), channel_(std::move(channel)) {
    stats_.peer = options_.peer();
}

HecExporter::~HecExporter() = default;

void HecExporter::count(std::string_view counter, std::uint64_t n) {
    std::lock_guard lock(stats_mutex_);
    for (auto& [name, value] : stats_.counters) {
        if (name == counter) {
            value += n;
            return;
        }
    }
    stats_.counters.emplace_back(std::string(counter), n);
}

Error HecExporter::fail(Error e) {
    client_.reset();
    if (e.code == errc::busy) count("busy");
    if (e.code == errc::token_refused)
        e.message += "; check the token in " + options_.token_file + " (" + options_.destination +
                     ".splunk_hec.token_file) and that it is enabled in Splunk";
    return e;
}

Status HecExporter::connect() {
    disconnect();
    auto fail_connect = [&](Error e) -> Error {
        {
            std::lock_guard lock(stats_mutex_);
            ++stats_.connect_failures;
        }
        return fail(std::move(e));
    };
    auto token = read_token(options_.token_file, options_.destination + ".splunk_hec.token_file");
    if (!token) return fail_connect(std::move(token).error());
    std::string auth = "Authorization: Splunk " + *token;
    OPENSSL_cleanse(token->data(), token->size());
    const std::string channel = "X-Splunk-Request-Channel: " + channel_;
    auto headers = std::make_unique<Headers>();
    std::vector<std::string> event_lines = {auth, channel, "Content-Type: application/json", "Expect:"};
    if (options_.gzip) event_lines.emplace_back("Content-Encoding: gzip");
    auto event = detail::make_headers(event_lines);
    auto ack = detail::make_headers({auth, channel, "Content-Type: application/json", "Expect:"});
    auto health = detail::make_headers({"Expect:"});
    OPENSSL_cleanse(auth.data(), auth.size());
    if (!event) return fail_connect(std::move(event).error());
    if (!ack) return fail_connect(std::move(ack).error());
    if (!health) return fail_connect(std::move(health).error());
    headers->event = std::move(*event);
    headers->ack = std::move(*ack);
    headers->health = std::move(*health);

    detail::HttpSettings s;
    s.base_url = options_.base_url();
    if (!options_.server_name.empty() && options_.server_name != options_.host)
        s.connect_to =
            options_.server_name + ":" + options_.port + ":" + bracketed(options_.host) + ":" + options_.port;
    s.tls = options_.tls;
    s.ca = options_.ca;
    s.cert = options_.cert;
    s.key = options_.key;
    s.timeout = options_.timeout;
    s.connect_timeout = options_.connect_timeout;
    s.max_response = kMaxReplyBytes;
    auto client = detail::HttpClient::create(std::move(s));
    if (!client) return fail_connect(std::move(client).error());
    client_ = std::move(*client);
    headers_ = std::move(headers);

    // The connection (TCP, TLS, the server's certificate) and HEC's health, before anything is sent.
    auto r = client_->get(kHealthPath, headers_->health.get());
    if (!r) return fail_connect(std::move(r).error());
    if (r->status != 200) {
        std::optional<EventReply> reply;
        if (auto p = parse_event_reply(r->body); p) reply = std::move(*p);
        auto st = classify(r->status, reply, options_.base_url() + std::string(kHealthPath));
        if (!st) return fail_connect(std::move(st).error());
    }
    std::lock_guard lock(stats_mutex_);
    ++stats_.connects;
    return {};
}

Status HecExporter::post_batch() {
    if (body_events_ == 0) return {};
    const std::string url = options_.base_url() + std::string(kEventPath);
    std::string compressed;
    if (options_.gzip) {
        auto z = gzip(body_);
        if (!z) return fail(std::move(z).error());
        compressed = std::move(*z);
    }
    const std::string_view payload = options_.gzip ? std::string_view(compressed) : std::string_view(body_);
    auto r = client_->post(kEventPath, headers_->event.get(), payload);
    if (!r) return fail(std::move(r).error());
    std::optional<EventReply> reply;
    auto parsed = parse_event_reply(r->body);
    if (parsed) reply = std::move(*parsed);
    if (auto st = classify(r->status, reply, url); !st) return fail(std::move(st).error());
    if (!parsed) return fail(make_error(errc::protocol_error, url + ": " + parsed.error().message));
    if (options_.ack) {
        if (!reply->ack_id)
            return fail(make_error(errc::ack_disabled,
                                   url +
                                       ": HTTP 200 without an ackId: indexer acknowledgement is not enabled on the "
                                       "token (enable it, or set " +
                                       options_.destination + ".splunk_hec.ack: false)"));
        if (auto st = tracker_.add_pending(body_events_, *reply->ack_id, std::chrono::steady_clock::now()); !st)
            return fail(std::move(st).error());
    } else {
        tracker_.add_acknowledged(body_events_);
    }
    {
        std::lock_guard lock(stats_mutex_);
        stats_.bytes_sent += payload.size();
    }
    count("posts");
    count("events_posted", body_events_);
    body_.clear();
    body_events_ = 0;
    return {};
}

Status HecExporter::send(std::span<const agent::Event> events) {
    if (!client_) return make_error(errc::transfer_failed, options_.peer() + ": not connected");
    for (const auto& e : events) {
        event_.clear();
        formatter_->format(e, event_);
        if (body_events_ > 0 &&
            (body_events_ >= options_.batch_events || body_.size() + event_.size() > options_.batch_bytes))
            HSMAUDIT_TRY(post_batch());
        body_ += event_;
        ++body_events_;
    }
    return post_batch();
}

Status HecExporter::poll_acks() {
    last_poll_ = std::chrono::steady_clock::now();
    const auto ids = tracker_.pending_ids(kMaxAcksPerPoll);
    if (ids.empty()) return {};
    const std::string path = std::string(kAckPath) + "?channel=" + channel_;
    const std::string url = options_.base_url() + path;
    auto r = client_->post(path, headers_->ack.get(), render_ack_request(ids));
    if (!r) return fail(std::move(r).error());
    count("ack_polls");
    if (r->status != 200) {
        std::optional<EventReply> reply;
        if (auto p = parse_event_reply(r->body); p) reply = std::move(*p);
        auto st = classify(r->status, reply, url);
        return fail(st ? make_error(errc::protocol_error, url + ": HTTP " + std::to_string(r->status)) : st.error());
    }
    auto acks = parse_ack_reply(r->body);
    if (!acks) return fail(make_error(errc::protocol_error, url + ": " + acks.error().message));
    std::uint64_t confirmed = 0;
    for (const auto& [id, indexed] : *acks)
        if (indexed && tracker_.acknowledge(id)) ++confirmed;
    if (confirmed > 0) count("acks_confirmed", confirmed);
    return {};
}

Result<std::uint64_t> HecExporter::acknowledged(std::chrono::milliseconds wait) {
    if (!client_) return make_error(errc::transfer_failed, options_.peer() + ": not connected");
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + wait;
    for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (tracker_.pending_count() == 0) break;
        if (now - last_poll_ >= options_.ack_poll_interval) {
            HSMAUDIT_TRY(poll_acks());
            now = std::chrono::steady_clock::now();
        }
        if (auto oldest = tracker_.oldest_pending(); oldest && now - *oldest > options_.ack_timeout) {
            count("ack_timeouts");
            return fail(make_error(errc::ack_timeout, options_.base_url() + std::string(kAckPath) + ": " +
                                                          std::to_string(tracker_.pending_count()) +
                                                          " batch(es) not reported indexed within " +
                                                          std::to_string(options_.ack_timeout.count()) +
                                                          " ms (channel " + channel_ + "); sending them again"));
        }
        if (tracker_.pending_count() == 0 || now >= deadline) break;
        const auto next_poll = last_poll_ + options_.ack_poll_interval;
        std::this_thread::sleep_until(std::min(next_poll, deadline));
    }
    return tracker_.prefix();
}

void HecExporter::disconnect() {
    client_.reset();
    headers_.reset();
    tracker_.reset();
    body_.clear();
    body_events_ = 0;
    last_poll_ = {};
}

agent::TransportStats HecExporter::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

}  // namespace hsmaudit::exporters::hec
