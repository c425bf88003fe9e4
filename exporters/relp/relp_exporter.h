// The RELP exporter: delivers events to a RELP receiver (rsyslog imrelp, ...) with librelp, over
// TLS (OpenSSL) with mutual authentication by default.
//
// How the exporter knows what the receiver acknowledged (docs/SIEM.md, "Transports"): librelp has
// no public per-frame acknowledgement callback, so the exporter counts frames and uses two facts of
// librelp's client:
//   1. relpCltSendSyslog() returns only once fewer than `window` frames are unacknowledged (it
//      reads responses and blocks while the window is full), and a RELP server answers the frames
//      of a session in order; so after the n-th frame of a session returns, frames 1..n-window of
//      that session were acknowledged.
//   2. The tail (the last `window` frames) is confirmed by closing the session: the server answers
//      "close" after every earlier frame, so a close handshake that completes without any librelp
//      error means every frame of the session was acknowledged. The exporter then opens a new
//      session on the next send(). It confirms the tail at most once per `confirm_interval`, and
//      only when the destination is quiet: driven by an ExportRunner (attach_doorbell(): the runner
//      waits on its doorbell, never inside acknowledged()), once nothing was sent for
//      kQuietBeforeClose, or at once when the runner stops (it passes a wait only then); driven
//      directly, when acknowledged() is given a non-zero wait. A busy session is never closed: its
//      acknowledged prefix advances with every send.
// Any librelp error (a non-200 response, a broken or timed-out session, an error reported during the
// close) fails the call; the client object is destroyed, never reconnected, so librelp never
// resends anything by itself: the runner resends everything after the acknowledged prefix, and at
// most `window` frames are delivered twice per failure.
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

namespace hsmaudit::exporters::relp {

/// What one RELP destination is configured with ("exporters.<name>.relp.*").
struct RelpOptions {
    std::string host;
    std::string port;
    bool tls = true;
    std::string ca;                            // PEM CA certificate(s) the server's certificate must chain to
    std::string cert;                          // own certificate (PEM), for mutual authentication
    std::string key;                           // own private key (PEM, mode 0600 or stricter)
    std::string auth_mode = "name";            // name | fingerprint | certvalid
    std::vector<std::string> permitted_peers;  // names (wildcards as librelp allows) or "SHA1:..." fingerprints
    int window = 128;
    std::chrono::milliseconds timeout{10'000};          // a response (window, close) must come within this
    std::chrono::milliseconds connect_timeout{5'000};   // TCP connect, and again for the TLS handshake
    std::chrono::milliseconds confirm_interval{1'000};  // at most one tail-confirming close this often
    std::string tls_config_cmds;  // OpenSSL SSL_CONF commands, "Cmd=value" separated by newlines or ';'

    /// "relp+tls://host:port" or "relp://host:port".
    [[nodiscard]] std::string peer() const;
};

/// The keys "exporters.*.relp.*".
std::span<const base::KeySpec> relp_config_keys();

/// Reads and validates "exporters.<name>.relp.*": an error names the key. Refuses plain RELP unless
/// `tls: false` is set, a private key readable by group or others, a CA missing in name and certvalid
/// modes, a certificate without its key (or the reverse).
Result<RelpOptions> read_relp_options(const base::Config& config, std::string_view name);

/// The registration entry: type "relp".
agent::ExporterFactory factory();

namespace detail {
struct Engine;
struct Client;
}  // namespace detail

class RelpExporter final : public agent::Exporter {
public:
    RelpExporter(RelpOptions options, std::unique_ptr<formats::Formatter> formatter);
    ~RelpExporter() override;
    RelpExporter(const RelpExporter&) = delete;
    RelpExporter& operator=(const RelpExporter&) = delete;

    Status connect() override;
    Status send(std::span<const agent::Event> events) override;
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds wait) override;
    /// Keeps no doorbell and answers AckSignal::on_calls: librelp reports acknowledgements only
    /// inside send() and the close handshake. The runner then waits on its doorbell (rung by the
    /// store's commits), so a new record never waits for a sleep inside acknowledged(); the tail
    /// is confirmed once the session has been quiet for kQuietBeforeClose (the header's comment).
    AckSignal attach_doorbell(agent::Doorbell* doorbell) override;
    void disconnect() override;

    /// How long nothing must have been sent before the tail is confirmed by a close handshake
    /// (runner-driven mode). Short against confirm_interval, long against the gap between two
    /// commits of a busy store.
    static constexpr std::chrono::milliseconds kQuietBeforeClose{100};
    [[nodiscard]] agent::TransportStats stats() const override;

    [[nodiscard]] const RelpOptions& options() const { return options_; }

    /// Called by librelp's callbacks (from inside librelp calls on the runner thread).
    void on_librelp_error(std::string message);

private:
    Status open_session();
    /// Closes the session gracefully; true if the close handshake completed without error.
    bool close_session();
    void drop_session();

    RelpOptions options_;
    std::unique_ptr<formats::Formatter> formatter_;
    std::unique_ptr<detail::Engine> engine_;
    std::unique_ptr<detail::Client> client_;

    // Runner thread only.
    std::uint64_t sent_ = 0;          // frames sent since connect()
    std::uint64_t confirmed_ = 0;     // of those, acknowledged (a prefix)
    std::uint64_t session_base_ = 0;  // sent_ when the current session was opened
    std::chrono::steady_clock::time_point session_opened_{};
    std::chrono::steady_clock::time_point last_send_{};  // when send() last sent a frame
    bool runner_driven_ = false;                         // attach_doorbell() was called
    bool connected_ = false;                             // between connect() and disconnect() (sessions come and go)
    std::uint64_t librelp_errors_ = 0;
    std::string first_error_;  // the first librelp error message since the last reset
    std::string buffer_;

    mutable std::mutex stats_mutex_;
    agent::TransportStats stats_;
};

}  // namespace hsmaudit::exporters::relp
