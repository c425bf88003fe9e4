#include "exporters/hec/detail/http_client.h"

#include <utility>

#include "exporters/common/sigpipe.h"
#include "exporters/hec/errc.h"

namespace hsmaudit::exporters::hec::detail {
namespace {

/// libcurl's process-wide initialisation, once, before the first handle; cleaned up at exit
/// (after main returns, when the runners' threads are joined). A function-local static: C++
/// guarantees one thread initialises it and the others wait.
struct CurlGlobal {
    CURLcode rc;
    CurlGlobal() : rc(curl_global_init(CURL_GLOBAL_DEFAULT)) {}
    ~CurlGlobal() {
        if (rc == CURLE_OK) curl_global_cleanup();
    }
    CurlGlobal(const CurlGlobal&) = delete;
    CurlGlobal& operator=(const CurlGlobal&) = delete;
};

CURLcode curl_global() {
    static const CurlGlobal global;
    return global.rc;
}

size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
    auto* self = static_cast<std::pair<std::string*, std::pair<std::size_t, bool*>>*>(user);
    const std::size_t n = size * nmemb;
    std::string& out = *self->first;
    if (out.size() + n > self->second.first) {
        *self->second.second = true;
        return 0;  // CURLE_WRITE_ERROR: the transfer stops
    }
    out.append(data, n);
    return n;
}

bool is_connect_error(CURLcode rc) {
    switch (rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_ENGINE_INITFAILED: return true;
        default: return false;
    }
}

}  // namespace

void CurlDeleter::operator()(CURL* c) const noexcept {
    curl_easy_cleanup(c);
}

void SlistDeleter::operator()(curl_slist* l) const noexcept {
    curl_slist_free_all(l);
}

Result<SlistPtr> make_headers(const std::vector<std::string>& lines) {
    SlistPtr list;
    for (const auto& line : lines) {
        curl_slist* next = curl_slist_append(list.get(), line.c_str());
        if (next == nullptr) return make_error(errc::internal, "curl_slist_append failed");
        (void)list.release();  // curl_slist_append returned the same list (or a new head)
        list.reset(next);
    }
    return list;
}

HttpClient::HttpClient(HttpSettings settings)
    : settings_(std::move(settings)), error_buffer_(CURL_ERROR_SIZE + 1, '\0') {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(HttpSettings settings) {
    if (const CURLcode rc = curl_global(); rc != CURLE_OK)
        return make_error(errc::internal, std::string("curl_global_init failed: ") + curl_easy_strerror(rc));
    std::unique_ptr<HttpClient> c(new HttpClient(std::move(settings)));
    c->curl_.reset(curl_easy_init());
    if (!c->curl_) return make_error(errc::internal, "curl_easy_init failed");
    CURL* h = c->curl_.get();
    const HttpSettings& s = c->settings_;
    bool ok = true;
    auto set = [&](CURLoption opt, auto value) { ok = ok && curl_easy_setopt(h, opt, value) == CURLE_OK; };
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_ERRORBUFFER, c->error_buffer_.data());
    set(CURLOPT_PROXY, "");  // never a proxy from http_proxy / https_proxy
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));  // HEC's protocol; no h2 via ALPN
    set(CURLOPT_PROTOCOLS_STR, s.tls ? "https" : "http");
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(s.timeout.count()));
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(s.connect_timeout.count()));
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    set(CURLOPT_WRITEFUNCTION, on_write);
    if (s.tls) {
        set(CURLOPT_SSL_VERIFYPEER, 1L);
        set(CURLOPT_SSL_VERIFYHOST, 2L);
        set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
        set(CURLOPT_CAINFO, s.ca.c_str());
        set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));  // only the configured CA
        if (!s.cert.empty()) {
            set(CURLOPT_SSLCERT, s.cert.c_str());
            set(CURLOPT_SSLCERTTYPE, "PEM");
            set(CURLOPT_SSLKEY, s.key.c_str());
            set(CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (!s.connect_to.empty()) {
        auto list = make_headers({s.connect_to});
        if (!list) return std::move(list).error();
        c->connect_to_ = std::move(*list);
        set(CURLOPT_CONNECT_TO, c->connect_to_.get());
    }
    if (!ok) return make_error(errc::internal, "curl_easy_setopt refused an option (libcurl too old?)");
    return c;
}

Result<HttpResponse> HttpClient::perform(std::string_view path, const curl_slist* headers,
                                         const std::string_view* body) {
    CURL* h = curl_.get();
    const std::string url = settings_.base_url + std::string(path);
    response_.clear();
    too_long_ = false;
    error_buffer_[0] = '\0';
    std::pair<std::string*, std::pair<std::size_t, bool*>> sink{&response_, {settings_.max_response, &too_long_}};
    bool ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
    if (body != nullptr) {
        ok = ok && curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size())) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data()) == CURLE_OK;
    } else {
        ok = ok && curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    if (!ok) return make_error(errc::internal, "curl_easy_setopt failed for " + url);
    CURLcode rc = CURLE_OK;
    {
        common::SigpipeGuard pipe;  // OpenSSL may write to a socket the peer closed
        rc = curl_easy_perform(h);
    }
    // The body pointer must not outlive this call.
    (void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
    (void)curl_easy_setopt(h, CURLOPT_WRITEDATA, static_cast<void*>(nullptr));
    if (too_long_)
        return make_error(errc::protocol_error,
                          url + ": answer longer than " + std::to_string(settings_.max_response) + " bytes");
    if (rc != CURLE_OK) {
        std::string msg = url + ": " + curl_easy_strerror(rc);
        if (error_buffer_[0] != '\0') msg += std::string(" (") + error_buffer_.data() + ")";
        return make_error(is_connect_error(rc) ? errc::connect_failed : errc::transfer_failed, std::move(msg));
    }
    HttpResponse r;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = std::move(response_);
    return r;
}

Result<HttpResponse> HttpClient::post(std::string_view path, const curl_slist* headers, std::string_view body) {
    return perform(path, headers, &body);
}

Result<HttpResponse> HttpClient::get(std::string_view path, const curl_slist* headers) {
    return perform(path, headers, nullptr);
}

}  // namespace hsmaudit::exporters::hec::detail
