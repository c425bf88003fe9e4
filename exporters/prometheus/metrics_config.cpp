// Configuration keys of the metrics endpoint, next to the code that reads them.
#include "exporters/prometheus/endpoint.h"

namespace hsmaudit::exporters::prometheus {

std::span<const base::KeySpec> metrics_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"metrics.enabled", base::KeyType::boolean, "false",
         "Serve Prometheus metrics over HTTP at /metrics (docs/METRICS.md)."},
        {"metrics.listen", base::KeyType::string, kDefaultListen,
         "Address of the metrics endpoint, HOST:PORT ([::1]:PORT for IPv6). Loopback by default: expose it "
         "further only with metrics.web_config (TLS, basic auth) or behind a TLS-terminating proxy."},
        {"metrics.web_config", base::KeyType::path, "",
         "A web config file as Prometheus' exporter-toolkit reads (tls_server_config, basic_auth_users with bcrypt "
         "hashes); mode 0600. Empty: plain HTTP without authentication."},
        {"metrics.threads", base::KeyType::integer, "8",
         "Connections the endpoint serves at once (one worker thread each); more wait in a queue. With idle or slow "
         "connections open, a scrape waits at most about metrics.request_timeout for every metrics.threads of them.",
         2, 64},
        {"metrics.request_timeout", base::KeyType::duration, "2s",
         "How long a connection may take to send its request (and to read the answer) before it is closed and its "
         "worker serves the next: what an idle connection can hold a worker for.",
         100, 60'000},
    };
    return kKeys;
}

EndpointOptions make_endpoint_options(const base::Config& config) {
    EndpointOptions o;
    o.listen = config.str("metrics.listen");
    o.web_config = config.str("metrics.web_config");
    o.threads = static_cast<int>(config.integer("metrics.threads"));
    o.request_timeout_ms = static_cast<int>(config.integer("metrics.request_timeout"));
    return o;
}

}  // namespace hsmaudit::exporters::prometheus
