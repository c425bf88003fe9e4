// A small HTTPS client on libcurl's easy interface for the HEC exporter: one CURL handle (one
// keep-alive connection) per exporter connection, RAII owners for CURL* and curl_slist*, the
// process-wide curl_global_init done once (a function-local static: C++ makes its
// initialisation thread-safe; libcurl's own global state is libcurl's, not ours), TLS with
// certificate and host name verification against one CA file only (no system store), optional
// client certificate, no proxy from the environment, no redirects, answers bounded in size.
//
// Thread-safety: an HttpClient is used by one thread (the exporter's runner); distinct clients
// may be used from distinct threads (libcurl's easy handles are independent; CURLOPT_NOSIGNAL).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <curl/curl.h>

#include "base/result.h"

namespace hsmaudit::exporters::hec::detail {

struct CurlDeleter {
    void operator()(CURL* c) const noexcept;
};
struct SlistDeleter {
    void operator()(curl_slist* l) const noexcept;
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

/// Appends header lines to a list; error (internal) if libcurl cannot allocate.
Result<SlistPtr> make_headers(const std::vector<std::string>& lines);

struct HttpSettings {
    std::string base_url;    // "https://splunk.example:8088" (the host name is verified in the certificate)
    std::string connect_to;  // "" or CURLOPT_CONNECT_TO's "host:port:connect-host:connect-port"
    bool tls = true;
    std::string ca;    // PEM CA file; the only trust anchors
    std::string cert;  // optional client certificate (PEM)
    std::string key;   // its key (PEM)
    std::chrono::milliseconds timeout{10'000};
    std::chrono::milliseconds connect_timeout{5'000};
    std::size_t max_response = std::size_t{64} * 1024;
};

struct HttpResponse {
    long status = 0;
    std::string body;
};

class HttpClient {
public:
    /// Error: internal (libcurl could not be set up).
    static Result<std::unique_ptr<HttpClient>> create(HttpSettings settings);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// POSTs `body` to base_url + `path` with `headers`. An error is a transfer that did not
    /// complete (connect_failed: connect, TLS, certificate; transfer_failed: broken, timed out;
    /// protocol_error: answer longer than max_response); any HTTP status is a response.
    Result<HttpResponse> post(std::string_view path, const curl_slist* headers, std::string_view body);
    /// GET base_url + `path` (no body), as post().
    Result<HttpResponse> get(std::string_view path, const curl_slist* headers);

private:
    explicit HttpClient(HttpSettings settings);
    Result<HttpResponse> perform(std::string_view path, const curl_slist* headers, const std::string_view* body);

    HttpSettings settings_;
    CurlPtr curl_;
    SlistPtr connect_to_;
    std::string response_;
    bool too_long_ = false;
    std::vector<char> error_buffer_;
};

}  // namespace hsmaudit::exporters::hec::detail
