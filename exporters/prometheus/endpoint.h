// MetricsEndpoint: hsmauditd's HTTP endpoint: /metrics (the collectables the agent's components
// register (their probes), the process metrics and hsmaudit_build_info, in Prometheus' text format
// by prometheus-cpp's TextSerializer), /health (liveness) and /ready (readiness), on one civetweb
// server (Debian's libcivetweb, the one prometheus-cpp's pull library links). prometheus-cpp's
// Exposer is not used: it has no way to add a handler that is not a registry, and /health and
// /ready must answer 503 with a reason. Every path has the same basic auth and TLS.
//
// /health and /ready answer "200 ok" or "503 <reason>" (text/plain) from the HealthChecks the
// owner gives; without one the path is 404.
//
// Bound to 127.0.0.1:8479 by default. Port 8479 is outside the 9100-9999 range where Prometheus
// exporters crowd (its default port allocation list), below Linux's ephemeral range
// (32768-60999: never taken by an outgoing connection), above 1024 (no privilege), and not in
// /etc/services. Optional basic auth (bcrypt) and TLS from an exporter-toolkit style web config
// (web_config.h). TLS goes through civetweb, which loads OpenSSL at run time; the private key is
// handed to it in an anonymous memory file (memfd), never copied to disk. Debian 12's civetweb
// 1.15 cannot do TLS with OpenSSL 3 (it crashes on the first handshake, see civetweb_tls_usable()),
// so there tls_server_config is refused and a TLS-terminating proxy is the documented way.
//
// Idle or slow connections cannot starve the scrapes (issue 17): see EndpointOptions.
//
// Thread-safety: start() and destruction from the owner's thread; add() from any thread. The
// server's worker threads call the collectables' Collect() and the health checks. Lifetime:
// destroying the endpoint stops the server and joins its threads, so destroy it before anything a
// collectable or a health check reads.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/config/config.h"
#include "base/result.h"
#include "exporters/prometheus/web_config.h"

class CivetServer;

namespace hsmaudit::exporters::prometheus {

inline constexpr char kDefaultListen[] = "127.0.0.1:8479";

/// civetweb gives each connection a worker thread from accept to close: `threads` bounds the
/// connections served at once, and `request_timeout_ms` how long one that sends no complete request
/// (an idle or slow client) holds its worker. Connections beyond the workers wait in civetweb's
/// queue, so with N idle connections a scrape is answered within about
/// request_timeout_ms * ceil((N + 1) / threads) (tests/integration/exporters/prometheus/endpoint_test.cpp).
/// Keep-alive is off: every scrape is one connection, closed after the answer, so a scraper's idle
/// pooled connection holds no worker either.
struct EndpointOptions {
    std::string listen = kDefaultListen;  // "HOST:PORT", "[v6]:PORT"; port 0 picks a free one
    std::string web_config;               // "" : plain HTTP, no authentication
    int threads = 8;
    int request_timeout_ms = 2000;
};

class BasicAuth;

/// A health answer: ok (200), or not (503) with the reason in the body.
struct HealthAnswer {
    bool ok = false;
    std::string reason;
};

/// What /health (liveness) and /ready (readiness) ask. Called on the server's worker threads:
/// must be thread-safe and must not block. Unset: the path is 404.
struct HealthChecks {
    std::function<HealthAnswer()> live;
    std::function<HealthAnswer()> ready;
};

namespace detail {
class Handlers;
}

class MetricsEndpoint {
public:
    /// Loads the web config, listens, and serves `collectables` plus the process and build
    /// metrics. Errors: config_error (web config, listen address), tls_error, bind_failed.
    static Result<std::unique_ptr<MetricsEndpoint>> start(
        const EndpointOptions& options, std::vector<std::shared_ptr<::prometheus::Collectable>> collectables,
        HealthChecks health = {});
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    /// Serves one more collectable (kept alive by the endpoint).
    void add(std::shared_ptr<::prometheus::Collectable> collectable);
    /// The port listened on (the chosen one when the options said 0).
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] bool tls() const { return tls_; }
    [[nodiscard]] bool authenticated() const { return authenticated_; }

private:
    MetricsEndpoint() = default;

    std::unique_ptr<detail::Handlers> handlers_;  // the paths, the collectables, the basic auth
    std::unique_ptr<CivetServer> server_;         // declared after handlers_: destroyed (joined) first
    std::uint16_t port_ = 0;
    bool tls_ = false;
    bool authenticated_ = false;
};

/// The metrics.* configuration keys (docs/CONFIG.md), for the agent's key list.
std::span<const base::KeySpec> metrics_config_keys();
/// EndpointOptions from the metrics.* keys.
EndpointOptions make_endpoint_options(const base::Config& config);
/// Everything MetricsEndpoint::start() refuses in `options` before it listens, checked without
/// listening (hsmauditd --check-config, the start and a reload): the listen address, the web config
/// (present, mode 0600 or stricter, valid keys, bcrypt hashes), TLS not usable with this system's
/// civetweb, the TLS key and certificate files. Errors name the key ("metrics.web_config: ...").
Status check_endpoint_options(const EndpointOptions& options);

/// True if civetweb's TLS can work here (see endpoint.cpp); false with Debian 12's civetweb 1.15
/// and OpenSSL 3, where tls_server_config is refused at start.
bool civetweb_tls_usable();

/// Splits "HOST:PORT" / "[V6]:PORT"; errors name the value.
Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen);

}  // namespace hsmaudit::exporters::prometheus
