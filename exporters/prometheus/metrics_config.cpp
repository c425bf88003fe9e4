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
    };
    return kKeys;
}

EndpointOptions make_endpoint_options(const base::Config& config) {
    EndpointOptions o;
    o.listen = config.str("metrics.listen");
    o.web_config = config.str("metrics.web_config");
    return o;
}

}  // namespace hsmaudit::exporters::prometheus
