#include "exporters/relp/relp_exporter.h"

// librelp.h uses size_t without including its definition, and has no extern "C" of its own.
#include <stddef.h>
extern "C" {
#include <librelp.h>
}
#include <openssl/crypto.h>
#include <sys/socket.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "base/files.h"
#include "base/logger.h"
#include "exporters/common/host_port.h"
#include "exporters/common/sigpipe.h"
#include "exporters/relp/detail/connect_watchdog.h"
#include "exporters/relp/errc.h"

namespace hsmaudit::exporters::relp {

// ---- librelp handles ----

namespace detail {

/// librelp's OpenSSL driver keeps process-wide state (one SSL_CTX and a use count that it updates
/// without a lock when it first initialises and when the last session goes). Every call that
/// creates or destroys a librelp session takes this lock, so two RELP destinations connecting or
/// closing at the same time cannot race on it. Sending does not take it.
std::mutex& librelp_lock() {
    static std::mutex m;
    return m;
}

/// One librelp engine (owns nothing but configuration and the error callbacks).
struct Engine {
    relpEngine_t* engine = nullptr;
    ~Engine() {
        if (engine != nullptr) relpEngineDestruct(&engine);
    }
};

/// One librelp client and its session. Destroying it closes the session: gracefully (the RELP
/// close handshake) if librelp still considers it usable, at once if it is broken.
struct Client {
    relpEngine_t* engine = nullptr;
    relpClt_t* client = nullptr;
    ~Client() {
        if (client == nullptr) return;
        common::SigpipeGuard pipe;
        std::lock_guard lock(librelp_lock());
        relpEngineCltDestruct(engine, &client);
    }
};

}  // namespace detail

namespace {

/// librelp calls its debug hook unconditionally (a null hook crashes), and its messages include
/// message contents: they are never printed.
void no_debug_output(char* /*fmt*/, ...) {}

void on_err(void* usr, char* objinfo, char* errmsg, relpRetVal code) {
    if (usr == nullptr) return;
    static_cast<RelpExporter*>(usr)->on_librelp_error(std::string(objinfo ? objinfo : "") + ": " +
                                                      (errmsg ? errmsg : "") + " (librelp " + std::to_string(code) +
                                                      ")");
}

void on_auth_err(void* usr, char* authinfo, char* errmsg, relpRetVal code) {
    if (usr == nullptr) return;
    static_cast<RelpExporter*>(usr)->on_librelp_error("peer authentication: " + std::string(errmsg ? errmsg : "") +
                                                      " [" + (authinfo ? authinfo : "") + "] (librelp " +
                                                      std::to_string(code) + ")");
}

std::string describe_code(relpRetVal rc) {
    switch (rc) {
        case RELP_RET_SESSION_BROKEN: return "session broken";
        case RELP_RET_SESSION_CLOSED: return "server closed the session";
        case RELP_RET_IO_ERR: return "I/O error";
        case RELP_RET_TIMED_OUT: return "timed out";
        case RELP_RET_RSP_STATE_ERR: return "server answered an error";
        case RELP_RET_ERR_TLS_SETUP: return "TLS setup or handshake failed";
        case RELP_RET_ERR_TLS_HANDS: return "TLS handshake failed";
        case RELP_RET_ERR_TLS: return "TLS error";
        case RELP_RET_AUTH_ERR_FP: return "server fingerprint not permitted";
        case RELP_RET_AUTH_ERR_NAME: return "server name not permitted";
        case RELP_RET_AUTH_NO_CERT: return "server presented no certificate";
        case RELP_RET_AUTH_CERT_INVL: return "server certificate invalid";
        case RELP_RET_INVLD_AUTH_MD: return "invalid auth mode";
        case RELP_RET_INVLD_WILDCARD: return "invalid wildcard in permitted peer";
        case RELP_RET_CMD_DISABLED: return "server does not offer the syslog command";
        case RELP_RET_RQD_FEAT_MISSING: return "server lacks a required feature";
        case RELP_RET_INVALID_PORT: return "invalid port";
        case RELP_RET_OUT_OF_MEMORY: return "out of memory";
        default: return "librelp error " + std::to_string(rc);
    }
}

bool is_auth_code(relpRetVal rc) {
    return rc == RELP_RET_AUTH_ERR_FP || rc == RELP_RET_AUTH_ERR_NAME || rc == RELP_RET_AUTH_NO_CERT ||
           rc == RELP_RET_AUTH_CERT_INVL;
}

unsigned seconds_up(std::chrono::milliseconds ms) {
    return static_cast<unsigned>(std::max<std::int64_t>(1, (ms.count() + 999) / 1000));
}

constexpr base::KeySpec kKeys[] = {
    {"exporters.*.relp.target", base::KeyType::string, "",
     "host:port of the RELP receiver ([addr]:port for IPv6), e.g. siem.example:2514"},
    {"exporters.*.relp.tls", base::KeyType::boolean, "true",
     "RELP over TLS (OpenSSL). Plain RELP is refused unless this is set to false explicitly, and then logged as a "
     "warning at start"},
    {"exporters.*.relp.ca", base::KeyType::path, "",
     "PEM file of the CA certificate(s) the receiver's certificate must chain to; required for auth_mode name and "
     "certvalid"},
    {"exporters.*.relp.cert", base::KeyType::path, "",
     "PEM file of this agent's client certificate, for mutual authentication (with key)"},
    {"exporters.*.relp.key", base::KeyType::path, "",
     "PEM file of the client certificate's private key; refused if group or others may read it (chmod 600)"},
    {"exporters.*.relp.auth_mode", base::KeyType::choice, "name",
     "how the receiver is authenticated: name (certificate valid and a name in permitted_peers), fingerprint (SHA-1 "
     "fingerprint in permitted_peers, as librelp writes it: SHA1:AB:CD:...), certvalid (any certificate the CA "
     "signed)",
     0, INT64_MAX, "name|fingerprint|certvalid"},
    {"exporters.*.relp.permitted_peers", base::KeyType::string, "",
     "comma-separated names (wildcards *.example.com) or fingerprints the receiver may present; default for auth_mode "
     "name: the target's host name"},
    {"exporters.*.relp.window", base::KeyType::integer, "128",
     "RELP window: frames sent before an acknowledgement is awaited; also the most records delivered twice after a "
     "failure",
     2, 65535},
    {"exporters.*.relp.timeout", base::KeyType::duration, "10s",
     "how long to wait for the receiver's responses (a full window, the close handshake) before the session counts "
     "as broken; whole seconds (rounded up)",
     1000, 600'000},
    {"exporters.*.relp.connect_timeout", base::KeyType::duration, "5s",
     "bound on the TCP connect, and again on the TLS handshake; whole seconds (rounded up)", 1000, 600'000},
    {"exporters.*.relp.confirm_interval", base::KeyType::duration, "1s",
     "when idle, the last window of records is confirmed by closing the session (the server answers the close after "
     "every earlier record) and opening a new one; at most once per this interval",
     0, 3'600'000},
    {"exporters.*.relp.tls_config_cmds", base::KeyType::string, "",
     "OpenSSL configuration commands passed to librelp (SSL_CONF_cmd), one Cmd=value per line or separated by ';', "
     "e.g. 'MinProtocol=TLSv1.3'"},
};

std::string key_of(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + ".relp." + std::string(k);
}

}  // namespace

std::string RelpOptions::peer() const {
    const bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "relp+tls://" : "relp://") + (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::span<const base::KeySpec> relp_config_keys() {
    return kKeys;
}

Result<RelpOptions> read_relp_options(const base::Config& config, std::string_view name) {
    RelpOptions o;
    auto k = [&](std::string_view key) { return key_of(name, key); };
    auto target = common::parse_host_port(config.str(k("target")), k("target"));
    if (!target) return make_error(errc::config_error, target.error().message);  // this module's code
    o.host = target->first;
    o.port = target->second;
    o.tls = config.boolean(k("tls"));
    o.ca = config.str(k("ca"));
    o.cert = config.str(k("cert"));
    o.key = config.str(k("key"));
    o.auth_mode = config.str(k("auth_mode"));
    o.permitted_peers = base::split_list(config.str(k("permitted_peers")));
    o.window = static_cast<int>(config.integer(k("window")));
    o.timeout = std::chrono::milliseconds(config.integer(k("timeout")));
    o.connect_timeout = std::chrono::milliseconds(config.integer(k("connect_timeout")));
    o.confirm_interval = std::chrono::milliseconds(config.integer(k("confirm_interval")));
    o.tls_config_cmds = config.str(k("tls_config_cmds"));

    if (!o.tls) {
        base::logger().warn(
            "exporters.{}: plain RELP without TLS (relp.tls: false): audit records cross the network unencrypted and "
            "the receiver is not authenticated",
            name);
        return o;
    }
    if (o.cert.empty() != o.key.empty())
        return make_error(errc::config_error, k(o.cert.empty() ? "cert" : "key") +
                                                  ": client certificate and key go "
                                                  "together (set both or neither)");
    if (!o.key.empty()) {
        auto secret = base::read_secret_file(o.key);
        if (!secret) return make_error(errc::config_error, k("key") + ": " + secret.error().describe());
        OPENSSL_cleanse(secret->data(), secret->size());
    }
    if (o.ca.empty() && o.auth_mode != "fingerprint")
        return make_error(errc::config_error,
                          k("ca") + ": a CA certificate is required for auth_mode " + o.auth_mode +
                              " (or use auth_mode fingerprint with the receiver's fingerprint in permitted_peers)");
    if (o.auth_mode == "name" && o.permitted_peers.empty()) o.permitted_peers.push_back(o.host);
    if (o.auth_mode == "fingerprint" && o.permitted_peers.empty())
        return make_error(errc::config_error,
                          k("permitted_peers") + ": auth_mode fingerprint needs the receiver's fingerprint(s)");
    if (o.cert.empty())
        base::logger().warn(
            "exporters.{}: RELP/TLS without a client certificate: the receiver cannot authenticate "
            "this agent (set relp.cert and relp.key for mutual authentication)",
            name);
    return o;
}

// ---- the exporter ----

RelpExporter::RelpExporter(RelpOptions options, std::unique_ptr<formats::Formatter> formatter)
    : options_(std::move(options)), formatter_(std::move(formatter)) {
    stats_.peer = options_.peer();
}

RelpExporter::~RelpExporter() {
    drop_session();
    engine_.reset();
}

void RelpExporter::on_librelp_error(std::string message) {
    ++librelp_errors_;
    if (first_error_.empty()) first_error_ = std::move(message);
}

Status RelpExporter::open_session() {
    if (!engine_) {
        auto engine = std::make_unique<detail::Engine>();
        if (relpEngineConstruct(&engine->engine) != RELP_RET_OK)
            return make_error(errc::internal, "relpEngineConstruct failed");
        relpEngineSetDbgprint(engine->engine, no_debug_output);
        if (options_.tls && relpEngineSetTLSLibByName(engine->engine, "openssl") != RELP_RET_OK)
            return make_error(errc::internal, "librelp has no OpenSSL driver (relpEngineSetTLSLibByName)");
        relpEngineSetEnableCmd(engine->engine, reinterpret_cast<unsigned char*>(const_cast<char*>("syslog")),
                               eRelpCmdState_Required);
        relpEngineSetOnErr(engine->engine, on_err);
        relpEngineSetOnAuthErr(engine->engine, on_auth_err);
        engine_ = std::move(engine);
    }
    librelp_errors_ = 0;
    first_error_.clear();

    auto client = std::make_unique<detail::Client>();
    client->engine = engine_->engine;
    relpRetVal rc = RELP_RET_OK;
    bool watchdog_fired = false;
    {
        common::SigpipeGuard pipe;
        std::lock_guard lock(detail::librelp_lock());
        if (relpEngineCltConstruct(engine_->engine, &client->client) != RELP_RET_OK)
            return make_error(errc::internal, "relpEngineCltConstruct failed");
        relpClt_t* c = client->client;
        auto check = [&](relpRetVal r, const char* what) -> Status {
            if (r != RELP_RET_OK)
                return make_error(errc::config_error, options_.peer() + ": " + what + ": " + describe_code(r));
            return {};
        };
        HSMAUDIT_TRY(check(relpCltSetUsrPtr(c, this), "relpCltSetUsrPtr"));
        HSMAUDIT_TRY(check(relpCltSetTimeout(c, seconds_up(options_.timeout)), "timeout"));
        HSMAUDIT_TRY(
            check(relpCltSetConnTimeout(c, static_cast<int>(seconds_up(options_.connect_timeout))), "connect_timeout"));
        HSMAUDIT_TRY(check(relpCltSetWindowSize(c, options_.window), "window"));
        if (options_.tls) {
            HSMAUDIT_TRY(check(relpCltEnableTLS(c), "TLS"));
            HSMAUDIT_TRY(check(relpCltSetAuthMode(c, const_cast<char*>(options_.auth_mode.c_str())), "auth_mode"));
            if (!options_.ca.empty())
                HSMAUDIT_TRY(check(relpCltSetCACert(c, const_cast<char*>(options_.ca.c_str())), "ca"));
            if (!options_.cert.empty()) {
                HSMAUDIT_TRY(check(relpCltSetOwnCert(c, const_cast<char*>(options_.cert.c_str())), "cert"));
                HSMAUDIT_TRY(check(relpCltSetPrivKey(c, const_cast<char*>(options_.key.c_str())), "key"));
            }
            for (const auto& p : options_.permitted_peers)
                HSMAUDIT_TRY(check(relpCltAddPermittedPeer(c, const_cast<char*>(p.c_str())), "permitted_peers"));
            if (!options_.tls_config_cmds.empty())
                HSMAUDIT_TRY(check(relpCltSetTlsConfigCmd(c, const_cast<char*>(options_.tls_config_cmds.c_str())),
                                   "tls_config_cmds"));
        }
        // librelp bounds the TCP connect by connect_timeout but not its TLS handshake; the watchdog
        // bounds the whole call (connect, handshake, RELP open).
        detail::ConnectWatchdog watchdog(detail::ConnectWatchdog::resolve(options_.host, options_.port),
                                         2 * options_.connect_timeout + options_.timeout);
        rc = relpCltConnect(c, AF_UNSPEC, reinterpret_cast<unsigned char*>(const_cast<char*>(options_.port.c_str())),
                            reinterpret_cast<unsigned char*>(const_cast<char*>(options_.host.c_str())));
        watchdog_fired = watchdog.fired();
    }
    if (rc != RELP_RET_OK || librelp_errors_ != 0) {
        std::string msg = options_.peer() + ": " + describe_code(rc);
        if (watchdog_fired) msg += " (no TLS/RELP answer within the connect timeout)";
        if (!first_error_.empty()) msg += ": " + first_error_;
        const bool auth = is_auth_code(rc) || first_error_.find("peer authentication") != std::string::npos;
        client.reset();
        return make_error(auth ? errc::auth_failed : errc::connect_failed, std::move(msg));
    }
    client_ = std::move(client);
    session_base_ = sent_;
    session_opened_ = std::chrono::steady_clock::now();
    return {};
}

bool RelpExporter::close_session() {
    if (!client_) return true;
    const auto before = librelp_errors_;
    client_.reset();  // the RELP close handshake; errors arrive through on_err
    return librelp_errors_ == before;
}

void RelpExporter::drop_session() {
    client_.reset();
}

Status RelpExporter::connect() {
    drop_session();
    sent_ = 0;
    confirmed_ = 0;
    session_base_ = 0;
    connected_ = false;
    auto st = open_session();
    std::lock_guard lock(stats_mutex_);
    if (!st) {
        ++stats_.connect_failures;
        return st;
    }
    ++stats_.connects;
    connected_ = true;
    return {};
}

Status RelpExporter::send(std::span<const agent::Event> events) {
    if (!connected_) return make_error(errc::send_failed, options_.peer() + ": not connected");
    // One guard for the whole batch, not one per record: blocking and consuming SIGPIPE costs four
    // system calls (sigpending, two pthread_sigmask, sigtimedwait), more than librelp's own per
    // frame (a write and a non-blocking read); on this kind of VM a system call is the dominant
    // cost of a frame. open_session() nests its own guard, which is harmless.
    common::SigpipeGuard pipe;
    std::uint64_t bytes = 0;
    for (const auto& e : events) {
        if (!client_) {
            if (auto st = open_session(); !st) {
                connected_ = false;
                std::lock_guard lock(stats_mutex_);
                stats_.bytes_sent += bytes;
                return st;
            }
        }
        buffer_.clear();
        formatter_->format(e, buffer_);
        const auto errors_before = librelp_errors_;
        const relpRetVal rc =
            relpCltSendSyslog(client_->client, reinterpret_cast<unsigned char*>(buffer_.data()), buffer_.size());
        if (rc != RELP_RET_OK || librelp_errors_ != errors_before) {
            std::string msg = options_.peer() + ": " + describe_code(rc);
            if (!first_error_.empty()) msg += ": " + first_error_;
            drop_session();  // never reconnected: librelp must not resend, the runner does
            connected_ = false;
            std::lock_guard lock(stats_mutex_);
            stats_.bytes_sent += bytes;
            return make_error(errc::send_failed, std::move(msg));
        }
        bytes += buffer_.size();
        ++sent_;
        const std::uint64_t in_session = sent_ - session_base_;
        if (in_session > static_cast<std::uint64_t>(options_.window))
            confirmed_ = std::max(confirmed_, sent_ - static_cast<std::uint64_t>(options_.window));
    }
    if (!events.empty()) last_send_ = std::chrono::steady_clock::now();
    std::lock_guard lock(stats_mutex_);
    stats_.bytes_sent += bytes;
    return {};
}

agent::Exporter::AckSignal RelpExporter::attach_doorbell(agent::Doorbell* doorbell) {
    runner_driven_ = doorbell != nullptr;
    return runner_driven_ ? AckSignal::on_calls : AckSignal::wait_inside;
}

Result<std::uint64_t> RelpExporter::acknowledged(std::chrono::milliseconds wait) {
    if (!connected_) return make_error(errc::send_failed, options_.peer() + ": not connected");
    if (confirmed_ == sent_ || !client_) return confirmed_;
    const auto due = session_opened_ + options_.confirm_interval;
    auto now = std::chrono::steady_clock::now();
    if (runner_driven_) {
        // The runner calls with no wait at least every idle wait while frames are unconfirmed, and
        // with a wait only when it stops: then the tail is confirmed at once.
        if (wait.count() <= 0 && (now < due || now - last_send_ < kQuietBeforeClose)) return confirmed_;
    } else if (wait.count() <= 0) {
        return confirmed_;
    } else if (now < due) {
        const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
        if (remaining > wait) {
            std::this_thread::sleep_for(wait);
            return confirmed_;
        }
        std::this_thread::sleep_for(remaining);
    }
    if (!close_session()) {
        connected_ = false;
        return make_error(errc::not_confirmed, options_.peer() + ": the close handshake confirming the last " +
                                                   std::to_string(sent_ - confirmed_) +
                                                   " records failed: " + first_error_);
    }
    confirmed_ = sent_;
    return confirmed_;
}

void RelpExporter::disconnect() {
    drop_session();
    connected_ = false;
}

agent::TransportStats RelpExporter::stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
}

}  // namespace hsmaudit::exporters::relp
