// The Splunk HTTP Event Collector exporter: batched HTTPS POSTs of HEC envelopes to
// /services/collector/event with libcurl, and Splunk's indexer acknowledgement as the
// acknowledged prefix of the runner's contract (docs/SIEM.md, "Splunk HEC").
//
// How the exporter knows what Splunk indexed: every POST carries the destination's request
// channel (X-Splunk-Request-Channel, a random UUID made when the exporter is built) and, with
// indexer acknowledgement enabled on the token, Splunk answers {"text":"Success","code":0,
// "ackId":N}. acknowledged() polls POST /services/collector/ack with the awaited ids; Splunk
// answers {"acks":{"N":true}} once the batch is indexed. Acks may come in any order: only the
// leading run of confirmed batches counts (AckTracker), so the prefix never passes an event that
// is not indexed. An ackId not confirmed within ack_timeout breaks the connection: the runner
// reconnects and resends everything after the prefix (at-least-once; duplicates carry the same
// event_id). With `ack: false` a batch counts on HTTP 200 (weaker: Splunk has only parsed it).
//
// Errors: 401/403 and HEC codes 1-4 (token refused), 503/429 and codes 9, 18-20 (busy), 400 with
// a data code (rejected) all fail the call: the runner backs off (capped exponential), raises
// exporter.down with the message (naming the destination and the token file, never the token)
// and sends the same events again later; nothing is dropped.
//
// Thread-safety: as agent::Exporter (driven by one runner thread; stats() from any thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "agent/api/exporter.h"
#include "base/config/config.h"
#include "base/result.h"
#include "exporters/formats/formatter.h"
#include "exporters/hec/protocol.h"

namespace hsmaudit::exporters::hec {

/// What one HEC destination is configured with ("exporters.<name>.splunk_hec.*").
struct HecOptions {
    std::string host;
    std::string port;
    std::string server_name;  // the name verified in the server's certificate; "" = host
    bool tls = true;
    std::string ca;          // PEM CA certificate(s) the server's certificate must chain to
    std::string cert;        // own certificate (PEM), optional
    std::string key;         // own private key (PEM, 0600 or stricter)
    std::string token_file;  // the HEC token (0600 or stricter), read at every connect
    bool ack = true;         // indexer acknowledgement
    bool gzip = true;        // Content-Encoding: gzip
    std::size_t batch_events = 100;
    std::size_t batch_bytes = std::size_t{1024} * 1024;  // uncompressed body
    std::chrono::milliseconds timeout{10'000};
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds ack_timeout{20'000};
    std::chrono::milliseconds ack_poll_interval{250};
    std::string destination;  // "exporters.<name>" (messages)

    /// "https://splunk.example:8088" (the host in the URL is server_name if set).
    [[nodiscard]] std::string base_url() const;
    /// "splunk_hec+https://host:port".
    [[nodiscard]] std::string peer() const;
};

/// The keys "exporters.*.splunk_hec.*".
std::span<const base::KeySpec> hec_config_keys();

/// Reads and validates "exporters.<name>.splunk_hec.*": an error names the key. Refuses plain
/// HTTP unless `tls: false`, a CA missing with TLS, a certificate without its key (or the
/// reverse), a key or token file readable by group or others, an empty or unprintable token.
Result<HecOptions> read_hec_options(const base::Config& config, std::string_view name);

/// Reads the token from its 0600 file: trailing white space removed; printable ASCII without
/// spaces. Errors name the file and the key, never the content.
Result<std::string> read_token(const std::string& path, std::string_view key);

/// The registration entry: type "splunk_hec".
agent::ExporterFactory factory();

namespace detail {
class HttpClient;
}

class HecExporter final : public agent::Exporter {
public:
    /// `channel`: the request channel id (make_channel_id()).
    HecExporter(HecOptions options, std::unique_ptr<formats::Formatter> formatter, std::string channel);
    ~HecExporter() override;
    HecExporter(const HecExporter&) = delete;
    HecExporter& operator=(const HecExporter&) = delete;

    Status connect() override;
    Status send(std::span<const agent::Event> events) override;
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override;
    void disconnect() override;
    [[nodiscard]] agent::TransportStats stats() const override;

    [[nodiscard]] const HecOptions& options() const { return options_; }
    [[nodiscard]] const std::string& channel() const { return channel_; }

private:
    Status post_batch();
    Status poll_acks();
    Error fail(Error e);
    void count(std::string_view counter, std::uint64_t n = 1);

    HecOptions options_;
    std::unique_ptr<formats::Formatter> formatter_;
    std::string channel_;

    // Runner thread only.
    std::unique_ptr<detail::HttpClient> client_;
    struct Headers;
    std::unique_ptr<Headers> headers_;
    AckTracker tracker_;
    std::string body_;  // the batch being built (concatenated envelopes)
    std::size_t body_events_ = 0;
    std::string event_;
    std::chrono::steady_clock::time_point last_poll_{};

    mutable std::mutex stats_mutex_;
    agent::TransportStats stats_;
};

}  // namespace hsmaudit::exporters::hec
