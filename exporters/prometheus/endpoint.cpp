#include "exporters/prometheus/endpoint.h"

#include <dlfcn.h>
#include <prometheus/exposer.h>
#include <sys/mman.h>

#include <atomic>
#include <charconv>
#include <exception>

#include "agent/api/thread_guard.h"
#include "base/files.h"
#include "base/unique_fd.h"
#include "exporters/prometheus/basic_auth.h"
#include "exporters/prometheus/errc.h"
#include "exporters/prometheus/process_collector.h"

namespace hsmaudit::exporters::prometheus {

Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen) {
    auto bad = [&] {
        return make_error(errc::config_error, "metrics.listen: '" + listen +
                                                  "' is not HOST:PORT (e.g. 127.0.0.1:8479, [::1]:8479, 0.0.0.0:8479)");
    };
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return bad();
    std::string host = listen.substr(0, colon);
    if (host.front() == '[' && host.back() != ']') return bad();
    if (host.front() != '[' && host.find(':') != std::string::npos) return bad();  // bare IPv6 needs brackets
    unsigned port = 0;
    const auto p = listen.substr(colon + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port > 65535) return bad();
    return std::pair{std::move(host), static_cast<std::uint16_t>(port)};
}

namespace {

/// The key and certificate in one anonymous in-memory file, because civetweb's ssl_certificate
/// wants both in one PEM file and the key must not be copied to disk.
Result<UniqueFd> key_and_cert_memfd(const TlsServerConfig& tls) {
    auto key = base::read_secret_file(tls.key_file, 1 << 20);
    if (!key) return make_error(errc::tls_error, "tls_server_config.key_file: " + key.error().describe());
    auto cert = base::read_file(tls.cert_file, 1 << 20);
    if (!cert) return make_error(errc::tls_error, "tls_server_config.cert_file: " + cert.error().describe());
    UniqueFd fd(::memfd_create("hsmaudit-metrics-tls", MFD_CLOEXEC));
    if (fd.get() < 0) return make_error(errc::tls_error, "memfd_create failed");
    HSMAUDIT_TRY(base::write_all(fd.get(), *key + "\n" + *cert, "memfd"));
    return fd;
}

/// A collectable whose Collect() never throws: civetweb's worker threads call it through C frames,
/// where an exception would end the agent. A failing collectable's families are left out of that
/// scrape; the failure is logged (the first, then every 1000th).
class GuardedCollectable final : public ::prometheus::Collectable {
public:
    explicit GuardedCollectable(std::shared_ptr<::prometheus::Collectable> inner) : inner_(std::move(inner)) {}
    std::vector<::prometheus::MetricFamily> Collect() const override {
        try {
            return inner_->Collect();
        } catch (const std::exception& e) {
            failed(e.what());
        } catch (...) {
            failed("unknown exception");
        }
        return {};
    }

private:
    void failed(const char* what) const noexcept {
        if (failures_.fetch_add(1, std::memory_order_relaxed) % 1000 == 0)
            agent::detail::report_thread_failure("metrics endpoint (a collectable's Collect)", what, nullptr);
    }
    std::shared_ptr<::prometheus::Collectable> inner_;
    mutable std::atomic<std::uint64_t> failures_{0};
};

}  // namespace

bool civetweb_tls_usable() {
    // Debian 12's civetweb 1.15 resolves OpenSSL at run time by name and calls
    // SSL_get_peer_certificate after every handshake; OpenSSL 3 only has it as a macro
    // (SSL_get1_peer_certificate), so the pointer is null and the first TLS client crashes the
    // process. With that symbol present (OpenSSL 1.1) the exposer's TLS works.
    return ::dlsym(RTLD_DEFAULT, "SSL_get_peer_certificate") != nullptr;
}

Status check_endpoint_options(const EndpointOptions& options) {
    auto where = parse_listen(options.listen);
    if (!where) return std::move(where).error();
    if (options.web_config.empty()) return {};
    auto web = load_web_config(options.web_config);
    if (!web) return std::move(web).error();
    if (!web->tls) return {};
    if (!civetweb_tls_usable())
        return make_error(errc::tls_error, "metrics.web_config: " + options.web_config +
                                               ": tls_server_config is not supported with this system's civetweb and "
                                               "OpenSSL 3 (docs/METRICS.md: keep metrics.listen on loopback and put a "
                                               "TLS-terminating proxy in front; basic_auth_users works without TLS)");
    auto fd = key_and_cert_memfd(*web->tls);
    if (!fd) return Error{fd.error().code, "metrics.web_config: " + options.web_config + ": " + fd.error().message};
    return {};
}

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(
    const EndpointOptions& options, std::vector<std::shared_ptr<::prometheus::Collectable>> collectables) {
    auto where = parse_listen(options.listen);
    if (!where) return std::move(where).error();
    WebConfig web;
    if (!options.web_config.empty()) {
        auto w = load_web_config(options.web_config);
        if (!w) return std::move(w).error();
        web = std::move(*w);
    }
    std::unique_ptr<MetricsEndpoint> ep(new MetricsEndpoint());
    std::vector<std::string> civet = {"listening_ports", options.listen + (web.tls ? "s" : ""), "num_threads",
                                      std::to_string(options.threads),
                                      // A scrape is one small request: do not let a slow client hold a worker.
                                      "request_timeout_ms", "10000"};
    UniqueFd memfd;
    if (web.tls && !civetweb_tls_usable())
        return make_error(errc::tls_error,
                          options.web_config +
                              ": tls_server_config is not supported with this system's civetweb and OpenSSL 3 "
                              "(civetweb 1.15 calls SSL_get_peer_certificate, which OpenSSL 3 does not export: every "
                              "TLS connection would crash the agent). Keep metrics.listen on loopback and put a "
                              "TLS-terminating proxy in front (docs/METRICS.md); basic_auth_users works without TLS");
    if (web.tls) {
        auto fd = key_and_cert_memfd(*web.tls);
        if (!fd) return std::move(fd).error();
        memfd = std::move(*fd);
        civet.insert(civet.end(),
                     {"ssl_certificate", "/proc/self/fd/" + std::to_string(memfd.get()), "ssl_certificate_chain",
                      web.tls->cert_file, "ssl_protocol_version", web.tls->min_version == 13 ? "5" : "4"});
        if (web.tls->client_auth != ClientAuth::none)
            civet.insert(civet.end(), {"ssl_verify_peer",
                                       web.tls->client_auth == ClientAuth::require_and_verify ? "yes" : "optional",
                                       "ssl_ca_file", web.tls->client_ca_file, "ssl_default_verify_paths", "no"});
        ep->tls_ = true;
    }
    try {
        ep->exposer_ = std::make_unique<::prometheus::Exposer>(civet);
    } catch (const std::exception& e) {
        // civetweb says little ("null context when constructing CivetServer"); name what we tried.
        return make_error(web.tls ? errc::tls_error : errc::bind_failed,
                          "cannot serve metrics on " + options.listen + (web.tls ? " with TLS" : "") + ": " + e.what() +
                              (web.tls ? " (check tls_server_config's cert_file and key_file, and that the address "
                                         "is free)"
                                       : " (is the address in use or not local?)"));
    }
    memfd = UniqueFd();  // civetweb read the key at start
    const auto ports = ep->exposer_->GetListeningPorts();
    ep->port_ = ports.empty() ? where->second : static_cast<std::uint16_t>(ports.front());
    if (!web.basic_auth_users.empty()) {
        ep->auth_ = std::make_unique<BasicAuth>(std::move(web.basic_auth_users));
        BasicAuth* auth = ep->auth_.get();
        ep->exposer_->RegisterAuth(
            [auth](const std::string& user, const std::string& password) {
                // On civetweb's worker thread, through C frames: nothing may escape (refuse instead).
                bool ok = false;
                (void)agent::detail::run_guarded("metrics endpoint (basic auth)",
                                                 [&] { ok = auth->check(user, password); });
                return ok;
            },
            "hsmaudit");
    }
    ep->add(std::make_shared<BuildInfoCollector>());
    ep->add(std::make_shared<ProcessCollector>());
    for (auto& c : collectables) ep->add(std::move(c));
    return ep;
}

MetricsEndpoint::~MetricsEndpoint() {
    exposer_.reset();  // stops civetweb and joins its workers before the collectables go
}

void MetricsEndpoint::add(std::shared_ptr<::prometheus::Collectable> collectable) {
    if (!collectable || !exposer_) return;
    // The exposer holds a weak pointer: collectables_ keeps the guard (which holds the original).
    auto guarded = std::make_shared<GuardedCollectable>(std::move(collectable));
    exposer_->RegisterCollectable(guarded);
    collectables_.push_back(std::move(guarded));
}

}  // namespace hsmaudit::exporters::prometheus
