#include "exporters/syslog/syslog_exporter.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/files.h"
#include "base/logger.h"
#include "base/unique_fd.h"
#include "exporters/common/host_port.h"
#include "exporters/common/sigpipe.h"
#include "exporters/syslog/errc.h"

namespace hsmaudit::exporters::syslog {

namespace {

using Clock = std::chrono::steady_clock;

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct SslConfCtxFree {
    void operator()(SSL_CONF_CTX* c) const { SSL_CONF_CTX_free(c); }
};
struct AddrinfoFree {
    void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

/// The OpenSSL error queue as one line (and emptied).
std::string openssl_errors() {
    std::string out;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<std::int64_t>(left, 0, 60'000));
}

/// Waits until `fd` is ready for `events` or the deadline passes; false on timeout or error.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const int ms = remaining_ms(deadline);
        if (ms <= 0) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, ms);
        if (r > 0) return true;
        if (r == 0) continue;  // re-check the deadline (poll caps at 60 s)
        if (errno != EINTR) return false;
    }
}

}  // namespace

namespace {

std::string key_of(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + ".syslog." + std::string(k);
}

/// "SHA256:AB:CD:..." of `cert` with `md`.
std::string fingerprint(X509* cert, const EVP_MD* md, const char* label) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (X509_digest(cert, md, digest, &len) != 1) return {};
    std::string out = label;
    static const char* kHex = "0123456789ABCDEF";
    for (unsigned i = 0; i < len; ++i) {
        out += ':';
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 15];
    }
    return out;
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

constexpr base::KeySpec kKeys[] = {
    {"exporters.*.syslog.target", base::KeyType::string, "",
     "host:port of the syslog receiver ([addr]:port for IPv6); RFC 5425 TLS uses port 6514 by convention"},
    {"exporters.*.syslog.protocol", base::KeyType::choice, "tls",
     "tls: RFC 5425 syslog over TLS 1.2+ with octet counting; tcp: RFC 6587 octet counting over plain TCP; udp: one "
     "datagram per message, only with allow_loss: true (UDP loses messages without notice)",
     0, INT64_MAX, "tls|tcp|udp"},
    {"exporters.*.syslog.allow_loss", base::KeyType::boolean, "false",
     "must be true for protocol udp: acknowledges that messages may be lost silently"},
    {"exporters.*.syslog.ca", base::KeyType::path, "",
     "PEM file of the CA certificate(s) the receiver's certificate must chain to (tls; required for auth_mode name "
     "and certvalid)"},
    {"exporters.*.syslog.cert", base::KeyType::path, "",
     "PEM client certificate for mutual authentication (tls; optional, with key)"},
    {"exporters.*.syslog.key", base::KeyType::path, "",
     "PEM private key of the client certificate; refused if group or others may read it (chmod 600)"},
    {"exporters.*.syslog.auth_mode", base::KeyType::choice, "name",
     "how the receiver is authenticated (tls): name (certificate chains to ca and carries a permitted DNS name or "
     "IP), fingerprint (the certificate's SHA256:... or SHA1:... fingerprint is permitted; no CA needed), certvalid "
     "(any certificate ca signed)",
     0, INT64_MAX, "name|fingerprint|certvalid"},
    {"exporters.*.syslog.permitted_peers", base::KeyType::string, "",
     "comma-separated names or fingerprints the receiver may present; default for auth_mode name: the target's host"},
    {"exporters.*.syslog.timeout", base::KeyType::duration, "10s",
     "a write that makes no progress for this long breaks the connection", 100, 600'000},
    {"exporters.*.syslog.connect_timeout", base::KeyType::duration, "5s",
     "bound on the TCP connect plus the TLS handshake", 100, 600'000},
    {"exporters.*.syslog.tls_config_cmds", base::KeyType::string, "",
     "OpenSSL configuration commands (SSL_CONF_cmd) applied to the TLS context, one Cmd=value per line or separated "
     "by ';', e.g. 'MinProtocol=TLSv1.3'"},
};

/// Applies "Cmd=value" lines (or ';'-separated) to `ctx`; an error names the command.
Status apply_conf_cmds(SSL_CTX* ctx, const std::string& cmds, const std::string& key) {
    std::unique_ptr<SSL_CONF_CTX, SslConfCtxFree> cctx(SSL_CONF_CTX_new());
    if (!cctx) return make_error(errc::internal, "SSL_CONF_CTX_new failed");
    SSL_CONF_CTX_set_flags(cctx.get(), SSL_CONF_FLAG_CLIENT | SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_CERTIFICATE);
    SSL_CONF_CTX_set_ssl_ctx(cctx.get(), ctx);
    const char sep = cmds.find('\n') != std::string::npos ? '\n' : ';';
    std::size_t start = 0;
    while (start < cmds.size()) {
        const std::size_t end = std::min(cmds.find(sep, start), cmds.size());
        std::string item = cmds.substr(start, end - start);
        start = end + 1;
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
        if (item.empty()) continue;
        const auto eq = item.find('=');
        if (eq == std::string::npos)
            return make_error(errc::config_error,
                              std::string(key).append(": '").append(item).append("' is not Cmd=value"));
        const std::string cmd = item.substr(0, eq);
        const std::string value = item.substr(eq + 1);
        if (SSL_CONF_cmd(cctx.get(), cmd.c_str(), value.c_str()) <= 0)
            return make_error(
                errc::config_error,
                std::string(key).append(": OpenSSL refused '").append(cmd).append("': ").append(openssl_errors()));
    }
    if (SSL_CONF_CTX_finish(cctx.get()) != 1) return make_error(errc::config_error, key + ": " + openssl_errors());
    return {};
}

}  // namespace

namespace detail {

/// One connection (TCP, TLS over TCP, or a connected UDP socket). Closes at destruction (a TLS
/// close_notify is attempted once, without waiting).
class Connection {
public:
    Connection(UniqueFd fd, SslCtxPtr ctx, SslPtr ssl)
        : fd_(std::move(fd)), ctx_(std::move(ctx)), ssl_(std::move(ssl)) {}
    ~Connection() {
        if (ssl_) {
            common::SigpipeGuard pipe;
            (void)SSL_shutdown(ssl_.get());
            ERR_clear_error();
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] SSL* ssl() const { return ssl_.get(); }

private:
    UniqueFd fd_;
    SslCtxPtr ctx_;
    SslPtr ssl_;
};

}  // namespace detail

namespace {

/// Connects to one of the target's addresses within the deadline.
Result<UniqueFd> connect_socket(const SyslogOptions& o, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = o.protocol == Protocol::udp ? SOCK_DGRAM : SOCK_STREAM;
    addrinfo* raw = nullptr;
    if (const int r = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &raw); r != 0)
        return make_error(errc::connect_failed, o.peer() + ": cannot resolve: " + ::gai_strerror(r));
    std::unique_ptr<addrinfo, AddrinfoFree> res(raw);
    std::string last = "no address";
    for (const addrinfo* a = res.get(); a != nullptr; a = a->ai_next) {
        UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (!fd.valid()) {
            last = std::string("socket: ") + std::strerror(errno);
            continue;
        }
        if (o.protocol != Protocol::udp) {
            const int one = 1;
            (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            (void)::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        }
        if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                last = std::string("connect: ") + std::strerror(errno);
                continue;
            }
            if (!wait_fd(fd.get(), POLLOUT, deadline)) {
                last = "connect timed out";
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                last = std::string("connect: ") + std::strerror(err != 0 ? err : errno);
                continue;
            }
        }
        return fd;
    }
    return make_error(errc::connect_failed, o.peer() + ": " + last);
}

Result<SslCtxPtr> make_ctx(const SyslogOptions& o) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return make_error(errc::internal, "SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!o.ca.empty() && SSL_CTX_load_verify_locations(ctx.get(), o.ca.c_str(), nullptr) != 1)
        return make_error(errc::config_error, o.ca + ": cannot load CA certificate(s): " + openssl_errors());
    if (!o.cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert.c_str()) != 1)
            return make_error(errc::config_error, o.cert + ": cannot load client certificate: " + openssl_errors());
        if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx.get()) != 1)
            return make_error(errc::config_error, o.key + ": cannot load the client key or it does not match " +
                                                      o.cert + ": " + openssl_errors());
    }
    if (!o.tls_config_cmds.empty()) HSMAUDIT_TRY(apply_conf_cmds(ctx.get(), o.tls_config_cmds, "tls_config_cmds"));
    return ctx;
}

/// Checks the server's certificate after the handshake (fingerprint mode; name and certvalid are
/// enforced by OpenSSL's verification during the handshake).
Status check_fingerprint(const SyslogOptions& o, SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr) return make_error(errc::auth_failed, o.peer() + ": the server presented no certificate");
    const std::string sha256 = fingerprint(cert, EVP_sha256(), "SHA256");
    const std::string sha1 = fingerprint(cert, EVP_sha1(), "SHA1");
    for (const auto& p : o.permitted_peers) {
        const std::string want = upper(p);
        if (want == sha256 || want == sha1) return {};
    }
    return make_error(errc::auth_failed, o.peer() + ": server certificate fingerprint " + sha256 + " is not permitted");
}

Result<std::unique_ptr<detail::Connection>> open_connection(const SyslogOptions& o) {
    const auto deadline = Clock::now() + o.connect_timeout;
    auto fd = connect_socket(o, deadline);
    if (!fd) return std::move(fd).error();
    if (o.protocol != Protocol::tls) return std::make_unique<detail::Connection>(std::move(*fd), SslCtxPtr(), SslPtr());

    auto ctx = make_ctx(o);
    if (!ctx) return std::move(ctx).error();
    SslPtr ssl(SSL_new(ctx->get()));
    if (!ssl) return make_error(errc::internal, "SSL_new: " + openssl_errors());
    SSL_set_fd(ssl.get(), fd->get());
    const bool is_ip = o.host.find(':') != std::string::npos || std::all_of(o.host.begin(), o.host.end(), [](char c) {
                           return (c >= '0' && c <= '9') || c == '.';
                       });
    if (!is_ip) SSL_set_tlsext_host_name(ssl.get(), o.host.c_str());
    if (o.auth_mode == "fingerprint") {
        // RFC 5425 section 5.2: the certificate may be self-signed; its fingerprint is the identity.
        SSL_set_verify(ssl.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    } else {
        SSL_set_verify(ssl.get(), SSL_VERIFY_PEER, nullptr);
        if (o.auth_mode == "name") {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            bool first = true;
            for (const auto& name : o.permitted_peers) {
                const bool ip = X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
                if (ip) continue;
                const int r = first ? X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0)
                                    : X509_VERIFY_PARAM_add1_host(param, name.c_str(), 0);
                if (r != 1) return make_error(errc::config_error, "permitted_peers: '" + name + "' is not a host name");
                first = false;
            }
        }
    }
    common::SigpipeGuard pipe;
    for (;;) {
        ERR_clear_error();
        const int r = SSL_connect(ssl.get());
        if (r == 1) break;
        const int err = SSL_get_error(ssl.get(), r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            if (!wait_fd(fd->get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
                return make_error(errc::connect_failed, o.peer() + ": TLS handshake timed out");
            continue;
        }
        const long verify = SSL_get_verify_result(ssl.get());
        if (verify != X509_V_OK)
            return make_error(errc::auth_failed,
                              o.peer() + ": server certificate refused: " + X509_verify_cert_error_string(verify) +
                                  (o.auth_mode == "name" ? " (auth_mode name)" : ""));
        const std::string detail = openssl_errors();
        return make_error(errc::connect_failed,
                          o.peer() + ": TLS handshake failed" +
                              (detail.empty() ? std::string(": connection closed") : ": " + detail));
    }
    if (o.auth_mode == "fingerprint") HSMAUDIT_TRY(check_fingerprint(o, ssl.get()));
    return std::make_unique<detail::Connection>(std::move(*fd), std::move(*ctx), std::move(ssl));
}

/// Fails if the server closed the connection (or sent a TLS alert); discards anything it sent.
Status check_alive(const SyslogOptions& o, detail::Connection& c) {
    if (o.protocol == Protocol::udp) return {};
    pollfd p{c.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return {};
    char buf[4096];
    if (c.ssl() != nullptr) {
        ERR_clear_error();
        const int n = SSL_read(c.ssl(), buf, sizeof buf);
        if (n > 0) return {};
        const int err = SSL_get_error(c.ssl(), n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return {};
        return make_error(errc::send_failed, o.peer() + ": the server closed the TLS connection");
    }
    const ssize_t n = ::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) return {};
    return make_error(errc::send_failed, o.peer() + ": the server closed the connection" +
                                             (n < 0 ? std::string(": ") + std::strerror(errno) : ""));
}

/// Writes all of `data`; each write must make progress within `timeout`.
Status write_all(const SyslogOptions& o, detail::Connection& c, std::string_view data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const auto deadline = Clock::now() + o.timeout;
        if (c.ssl() != nullptr) {
            common::SigpipeGuard pipe;
            ERR_clear_error();
            const int n = SSL_write(c.ssl(), data.data() + off,
                                    static_cast<int>(std::min<std::size_t>(data.size() - off, 1 << 30)));
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            const int err = SSL_get_error(c.ssl(), n);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                if (!wait_fd(c.fd(), err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline))
                    return make_error(errc::send_failed, o.peer() + ": write timed out");
                continue;
            }
            const std::string detail = openssl_errors();
            return make_error(errc::send_failed, o.peer() + ": TLS write failed: " +
                                                     (detail.empty() ? std::string(std::strerror(errno)) : detail));
        }
        const ssize_t n = ::send(c.fd(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n >= 0) {
            if (o.protocol == Protocol::udp && static_cast<std::size_t>(n) != data.size())
                return make_error(errc::send_failed, o.peer() + ": datagram truncated");
            off += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_fd(c.fd(), POLLOUT, deadline))
                return make_error(errc::send_failed, o.peer() + ": write timed out");
            continue;
        }
        return make_error(errc::send_failed, o.peer() + ": write failed: " + std::strerror(errno));
    }
    return {};
}

}  // namespace

std::string SyslogOptions::peer() const {
    const char* scheme = protocol == Protocol::tls   ? "syslog+tls://"
                         : protocol == Protocol::tcp ? "syslog+tcp://"
                                                     : "syslog+udp://";
    const bool v6 = host.find(':') != std::string::npos;
    return scheme + (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::span<const base::KeySpec> syslog_config_keys() {
    return kKeys;
}

Result<SyslogOptions> read_syslog_options(const base::Config& config, std::string_view name) {
    SyslogOptions o;
    auto k = [&](std::string_view key) { return key_of(name, key); };
    auto target = common::parse_host_port(config.str(k("target")), k("target"));
    if (!target) return make_error(errc::config_error, target.error().message);  // this module's code
    o.host = target->first;
    o.port = target->second;
    const std::string& proto = config.str(k("protocol"));
    o.protocol = proto == "udp" ? Protocol::udp : proto == "tcp" ? Protocol::tcp : Protocol::tls;
    o.ca = config.str(k("ca"));
    o.cert = config.str(k("cert"));
    o.key = config.str(k("key"));
    o.auth_mode = config.str(k("auth_mode"));
    o.permitted_peers = base::split_list(config.str(k("permitted_peers")));
    o.timeout = std::chrono::milliseconds(config.integer(k("timeout")));
    o.connect_timeout = std::chrono::milliseconds(config.integer(k("connect_timeout")));
    o.tls_config_cmds = config.str(k("tls_config_cmds"));

    if (o.protocol == Protocol::udp) {
        if (!config.boolean(k("allow_loss")))
            return make_error(errc::config_error, k("protocol") +
                                                      ": udp loses messages without notice; it is refused unless " +
                                                      k("allow_loss") + " is true (prefer tls, or relp)");
        base::logger().warn(
            "exporters.{}: syslog over UDP to {}:{} (allow_loss: true): messages are LOST without "
            "notice when the network or the receiver drops them; nothing confirms delivery",
            name, o.host, o.port);
        return o;
    }
    if (o.protocol == Protocol::tcp) {
        base::logger().warn(
            "exporters.{}: syslog over plain TCP to {}:{}: unencrypted, the receiver is not "
            "authenticated, and a message counts as delivered once written to the kernel",
            name, o.host, o.port);
        return o;
    }
    if (o.cert.empty() != o.key.empty())
        return make_error(errc::config_error, k(o.cert.empty() ? "cert" : "key") +
                                                  ": client certificate and key go together (set both or neither)");
    if (!o.key.empty()) {
        auto secret = base::read_secret_file(o.key);
        if (!secret) return make_error(errc::config_error, k("key") + ": " + secret.error().describe());
        OPENSSL_cleanse(secret->data(), secret->size());
    }
    if (o.ca.empty() && o.auth_mode != "fingerprint")
        return make_error(errc::config_error, k("ca") + ": a CA certificate is required for auth_mode " + o.auth_mode);
    if (o.auth_mode == "name" && o.permitted_peers.empty()) o.permitted_peers.push_back(o.host);
    if (o.auth_mode == "fingerprint" && o.permitted_peers.empty())
        return make_error(errc::config_error, k("permitted_peers") +
                                                  ": auth_mode fingerprint needs the receiver's "
                                                  "SHA256:... fingerprint(s)");
    return o;
}

// ---- the exporter ----

SyslogExporter::SyslogExporter(SyslogOptions options, std::unique_ptr<formats::Formatter> formatter)
    : options_(std::move(options)), formatter_(std::move(formatter)) {
    stats_.peer = options_.peer();
}

SyslogExporter::~SyslogExporter() = default;

Status SyslogExporter::connect() {
    connection_.reset();
    written_ = 0;
    auto c = open_connection(options_);
    std::lock_guard lock(stats_mutex_);
    if (!c) {
        ++stats_.connect_failures;
        return std::move(c).error();
    }
    connection_ = std::move(*c);
    ++stats_.connects;
    return {};
}

Status SyslogExporter::send(std::span<const agent::Event> events) {
    if (!connection_) return make_error(errc::send_failed, options_.peer() + ": not connected");
    if (auto st = check_alive(options_, *connection_); !st) {
        connection_.reset();
        return st;
    }
    std::uint64_t bytes = 0;
    auto fail = [&](Error e) -> Status {
        connection_.reset();
        std::lock_guard lock(stats_mutex_);
        stats_.bytes_sent += bytes;
        return e;
    };
    if (options_.protocol == Protocol::udp) {
        for (const auto& e : events) {
            buffer_.clear();
            formatter_->format(e, buffer_);
            if (auto st = write_all(options_, *connection_, buffer_); !st) return fail(std::move(st).error());
            bytes += buffer_.size();
            ++written_;
        }
    } else {
        // One write for the batch: "LEN SP MSG" per message (RFC 5425 section 4.3, RFC 6587 3.4.1).
        buffer_.clear();
        std::string msg;
        for (const auto& e : events) {
            msg.clear();
            formatter_->format(e, msg);
            buffer_ += std::to_string(msg.size());
            buffer_ += ' ';
            buffer_ += msg;
        }
        if (auto st = write_all(options_, *connection_, buffer_); !st) return fail(std::move(st).error());
        bytes = buffer_.size();
        written_ += events.size();
    }
    std::lock_guard lock(stats_mutex_);
    stats_.bytes_sent += bytes;
    return {};
}

Result<std::uint64_t> SyslogExporter::acknowledged(std::chrono::milliseconds /*wait*/) {
    if (!connection_) return make_error(errc::send_failed, options_.peer() + ": not connected");
    // No application acknowledgement exists: written to the kernel counts as delivered.
    if (auto st = check_alive(options_, *connection_); !st) {
        connection_.reset();
        return std::move(st).error();
    }
    return written_;
}

void SyslogExporter::disconnect() {
    connection_.reset();
}

agent::TransportStats SyslogExporter::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

}  // namespace hsmaudit::exporters::syslog
