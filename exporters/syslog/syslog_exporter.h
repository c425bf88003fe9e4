// The syslog exporter, for receivers without RELP (QRadar, syslog-ng, Splunk Connect for Syslog):
//   tls  RFC 5425: TLS 1.2 or later (OpenSSL), the server's certificate verified against a CA with
//        a name check (or its fingerprint checked), an optional client certificate for mutual
//        authentication; octet-counting framing "LEN SP MSG"; port 6514 by convention.
//   tcp  RFC 6587 octet counting over plain TCP.
//   udp  one datagram per message (RFC 5426). Refused unless `allow_loss: true` is set too, and
//        logged as a warning at start: UDP loses messages silently.
// Syslog has no application acknowledgements: acknowledged() counts the messages written to the
// kernel (for TLS: encrypted and written). A message in the socket buffer when the connection
// breaks may be lost by the receiver although it counted as delivered: the weaker guarantee
// docs/SIEM.md states. Use RELP where the receiver has it.
//
// Every operation is bounded in time: a non-blocking connect and TLS handshake (connect_timeout),
// writes that must make progress within `timeout`. A write error, a timeout, or the server
// closing the connection is an error; the runner reconnects and resends after the prefix.
//
// Thread-safety: as agent::Exporter (driven by one runner thread; stats() from any thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/exporter.h"
#include "base/config/config.h"
#include "base/result.h"
#include "exporters/formats/formatter.h"

namespace hsmaudit::exporters::syslog {

enum class Protocol : std::uint8_t { tls, tcp, udp };

/// What one syslog destination is configured with ("exporters.<name>.syslog.*").
struct SyslogOptions {
    std::string host;
    std::string port;
    Protocol protocol = Protocol::tls;
    std::string ca;                             // PEM CA file for the server's certificate (name and certvalid modes)
    std::string cert;                           // own certificate (PEM), optional: mutual authentication
    std::string key;                            // own private key (PEM, 0600)
    std::string auth_mode = "name";             // name | fingerprint | certvalid
    std::vector<std::string> permitted_peers;   // names, or "SHA256:AB:CD..." / "SHA1:..." fingerprints
    std::chrono::milliseconds timeout{10'000};  // a write must progress within this
    std::chrono::milliseconds connect_timeout{5'000};  // resolve + connect + TLS handshake
    std::string tls_config_cmds;                       // OpenSSL SSL_CONF commands, "Cmd=value" per line or ';'

    /// "syslog+tls://host:port", "syslog+tcp://...", "syslog+udp://...".
    [[nodiscard]] std::string peer() const;
};

/// The keys "exporters.*.syslog.*".
std::span<const base::KeySpec> syslog_config_keys();

/// Reads and validates "exporters.<name>.syslog.*"; an error names the key.
Result<SyslogOptions> read_syslog_options(const base::Config& config, std::string_view name);

/// The registration entry: type "syslog".
agent::ExporterFactory factory();

namespace detail {
class Connection;
}

class SyslogExporter final : public agent::Exporter {
public:
    SyslogExporter(SyslogOptions options, std::unique_ptr<formats::Formatter> formatter);
    ~SyslogExporter() override;
    SyslogExporter(const SyslogExporter&) = delete;
    SyslogExporter& operator=(const SyslogExporter&) = delete;

    Status connect() override;
    Status send(std::span<const agent::Event> events) override;
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override;
    void disconnect() override;
    [[nodiscard]] agent::TransportStats stats() const override;

    [[nodiscard]] const SyslogOptions& options() const { return options_; }

private:
    SyslogOptions options_;
    std::unique_ptr<formats::Formatter> formatter_;
    std::unique_ptr<detail::Connection> connection_;

    // Runner thread only.
    std::uint64_t written_ = 0;  // messages written to the kernel since connect()
    std::string buffer_;

    mutable std::mutex stats_mutex_;
    agent::TransportStats stats_;
};

}  // namespace hsmaudit::exporters::syslog
