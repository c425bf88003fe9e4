// Test peers for the RELP and syslog exporters: a throw-away PKI made with the openssl CLI (once
// per test binary) and a real rsyslogd started with its own configuration in a temp dir, on a free
// loopback port, stopped (SIGKILL, by pid) by the destructor. Nothing depends on /etc/rsyslog.conf
// or systemd. Also synthetic audit events and a parser for what rsyslog wrote.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/api/event.h"
#include "tests/integration/common/ports.h"
#include "tests/integration/common/process.h"

namespace hsmaudit::testing::relp {

namespace fs = std::filesystem;

inline std::string make_temp_dir(const std::string& tag) {
    std::string tmpl = (fs::temp_directory_path() / ("hsmaudit-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

inline void write_text(const std::string& path, const std::string& text, unsigned mode = 0644) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
}

/// Runs a shell script; returns (exit code, output).
inline std::pair<int, std::string> sh(const std::string& script, const std::string& tmp_prefix) {
    return run({"/bin/sh", "-ec", script}, tmp_prefix);
}

/// A CA with server (server.test) and client (client.test) certificates, plus a rogue CA with a
/// client certificate it signed; EC P-256, made once per test binary, removed at exit.
class Pki {
public:
    static const Pki& get() {
        static const Pki pki;
        return pki;
    }
    ~Pki() {
        std::error_code ec;
        if (!dir.empty()) fs::remove_all(dir, ec);
    }
    std::string dir;
    std::string ca, server_cert, server_key, client_cert, client_key;
    std::string rogue_ca, rogue_cert, rogue_key;
    std::string server_sha1;    // "SHA1:AB:..." of server.pem (librelp's fingerprint format)
    std::string server_sha256;  // "SHA256:AB:..."
    bool ok = false;
    std::string log;

private:
    Pki() {
        dir = make_temp_dir("pki");
        const std::string script = R"(cd ")" + dir + R"("
umask 077
ossl=/usr/bin/openssl
mkca() { $ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.pem \
  -days 3 -subj "/CN=$1" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
mkleaf() { $ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj "/CN=$2"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' $2 > $1.ext
  $ossl x509 -req -in $1.csr -CA $3.pem -CAkey $3.key -CAcreateserial -days 3 -extfile $1.ext -out $1.pem; }
mkca ca; mkca rogue-ca
mkleaf server server.test ca; mkleaf client client.test ca; mkleaf rogue rogue-client.test rogue-ca
chmod 600 *.key; chmod 644 *.pem
$ossl x509 -in server.pem -noout -fingerprint -sha1 > server.sha1
$ossl x509 -in server.pem -noout -fingerprint -sha256 > server.sha256
)";
        auto [code, out] = sh(script, dir + "/openssl");
        log = out;
        ca = dir + "/ca.pem";
        server_cert = dir + "/server.pem";
        server_key = dir + "/server.key";
        client_cert = dir + "/client.pem";
        client_key = dir + "/client.key";
        rogue_ca = dir + "/rogue-ca.pem";
        rogue_cert = dir + "/rogue.pem";
        rogue_key = dir + "/rogue.key";
        auto fp = [&](const char* file, const char* label) {
            std::string t = Process::slurp(dir + "/" + file);  // "sha1 Fingerprint=AB:CD..."
            const auto eq = t.find('=');
            if (eq == std::string::npos) return std::string();
            std::string hex = t.substr(eq + 1);
            while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
            return std::string(label) + ":" + hex;
        };
        server_sha1 = fp("server.sha1", "SHA1");
        server_sha256 = fp("server.sha256", "SHA256");
        ok = code == 0 && !server_sha1.empty();
    }
};

using hsmaudit::testing::free_port;  // tests/integration/common/ports.h (rsyslog binds it with SO_REUSEADDR)

/// True if a socket listens on TCP `port` (from /proc/net/tcp and tcp6). Deliberately not a probe
/// connection: a TCP connection closed during imrelp's TLS handshake can leave an error in
/// rsyslog's OpenSSL error queue that makes its next handshake fail (seen here with rsyslog
/// 8.2302 / librelp 1.11), which would make tests flaky.
inline bool port_listening(int port) {
    char hex[8];
    std::snprintf(hex, sizeof hex, ":%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        while (std::getline(in, line)) {
            // "  sl  local_address rem_address   st ..."; local is field 2, state field 4; 0A = LISTEN.
            std::istringstream f(line);
            std::string sl, local, remote, state;
            f >> sl >> local >> remote >> state;
            if (state == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, hex) == 0) return true;
        }
    }
    return false;
}

/// What the receiver listens with.
enum class Listener { relp_tls, relp_plain, syslog_tls, syslog_tcp, syslog_udp };

struct ReceiverOptions {
    Listener listener = Listener::relp_tls;
    std::string permitted_client = "client.test";  // the client name the receiver accepts
    /// The rsyslog string template of each line of received.log (default: the raw message).
    std::string line_template = "%rawmsg%\\n";
};

/// rsyslogd with one input writing every raw message as one line to `received_path()`. The
/// ruleset and main queues are Direct: a RELP "200 OK" is sent only after omfile wrote the line,
/// so acknowledged records survive a SIGKILL of the receiver (they are in the kernel).
class Rsyslog {
public:
    explicit Rsyslog(ReceiverOptions o = {}) : options_(std::move(o)) {
        dir_ = make_temp_dir("rsyslog");
        fs::create_directories(dir_ + "/work");
        port_ = free_port(options_.listener == Listener::syslog_udp ? SOCK_DGRAM : SOCK_STREAM);
        write_text(conf_path(), config());
    }
    ~Rsyslog() {
        stop();
        std::error_code ec;
        if (!dir_.empty() && std::getenv("HSMAUDIT_KEEP_TEST_DIRS") == nullptr) fs::remove_all(dir_, ec);
    }
    Rsyslog(const Rsyslog&) = delete;
    Rsyslog& operator=(const Rsyslog&) = delete;

    /// Starts rsyslogd and waits (up to 15 s) until the port accepts; false if it did not.
    bool start() {
        stop();
        ::unlink((dir_ + "/rsyslog.pid").c_str());
        std::vector<std::string> argv;
        // If the test process dies before its destructors run, rsyslogd dies with it.
        if (::access("/usr/bin/setpriv", X_OK) == 0) argv = {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"};
        for (const std::string& a : {std::string("/usr/sbin/rsyslogd"), std::string("-n"), std::string("-f"),
                                     conf_path(), std::string("-i"), dir_ + "/rsyslog.pid"})
            argv.push_back(a);
        process_ = std::make_unique<Process>(argv, dir_ + "/rsyslogd.out", dir_ + "/rsyslogd.err");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < deadline) {
            if (!process_->running()) return false;
            if (options_.listener == Listener::syslog_udp) {
                if (Process::slurp(dir_ + "/rsyslog.pid").size() > 0) return true;
            } else if (port_listening(port_)) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    /// SIGKILL, no goodbye: what a crash looks like to the client.
    void kill() {
        if (process_) {
            process_->signal(SIGKILL);
            process_->wait(std::chrono::seconds(10));
        }
    }
    void stop() {
        kill();
        process_.reset();
    }
    [[nodiscard]] bool running() const { return process_ && process_->running(); }
    [[nodiscard]] pid_t pid() const { return process_ ? process_->pid() : -1; }

    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] const std::string& dir() const { return dir_; }
    [[nodiscard]] std::string conf_path() const { return dir_ + "/rsyslog.conf"; }
    [[nodiscard]] std::string received_path() const { return dir_ + "/received.log"; }
    [[nodiscard]] std::string received() const { return Process::slurp(received_path()); }
    [[nodiscard]] std::string diagnostics() const {
        return "rsyslogd stderr: " + Process::slurp(dir_ + "/rsyslogd.err") +
               "\nrsyslogd stdout: " + Process::slurp(dir_ + "/rsyslogd.out");
    }

    /// rsyslogd -N1 on this configuration: (exit code, output).
    [[nodiscard]] std::pair<int, std::string> validate() const {
        return run({"/usr/sbin/rsyslogd", "-N1", "-f", conf_path()}, dir_ + "/validate");
    }

private:
    std::string config() const {
        const Pki& pki = Pki::get();
        const std::string port = std::to_string(port_);
        std::string c = "global(workDirectory=\"" + dir_ + "/work\" maxMessageSize=\"64k\"";
        if (options_.listener == Listener::syslog_tls) {
            c += " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"" + pki.ca +
                 "\" DefaultNetstreamDriverCertFile=\"" + pki.server_cert + "\" DefaultNetstreamDriverKeyFile=\"" +
                 pki.server_key + "\"";
        }
        c += ")\nmain_queue(queue.type=\"Direct\")\n";
        c += "template(name=\"raw\" type=\"string\" string=\"" + options_.line_template + "\")\n";
        switch (options_.listener) {
            case Listener::relp_tls:
                c += "module(load=\"imrelp\" tls.tlslib=\"openssl\")\n"
                     "input(type=\"imrelp\" port=\"" +
                     port + "\" address=\"127.0.0.1\" tls=\"on\" tls.cacert=\"" + pki.ca + "\" tls.mycert=\"" +
                     pki.server_cert + "\" tls.myprivkey=\"" + pki.server_key +
                     "\" tls.authmode=\"name\" tls.permittedpeer=[\"" + options_.permitted_client +
                     "\"] ruleset=\"out\")\n";
                break;
            case Listener::relp_plain:
                c += "module(load=\"imrelp\")\ninput(type=\"imrelp\" port=\"" + port +
                     "\" address=\"127.0.0.1\" ruleset=\"out\")\n";
                break;
            case Listener::syslog_tls:
                c += "module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" "
                     "StreamDriver.AuthMode=\"x509/name\" PermittedPeer=[\"" +
                     options_.permitted_client + "\"])\ninput(type=\"imtcp\" port=\"" + port +
                     "\" address=\"127.0.0.1\" ruleset=\"out\")\n";
                break;
            case Listener::syslog_tcp:
                c += "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"" + port +
                     "\" address=\"127.0.0.1\" ruleset=\"out\")\n";
                break;
            case Listener::syslog_udp:
                c += "module(load=\"imudp\")\ninput(type=\"imudp\" port=\"" + port +
                     "\" address=\"127.0.0.1\" ruleset=\"out\")\n";
                break;
        }
        c += "ruleset(name=\"out\" queue.type=\"Direct\") {\n  action(type=\"omfile\" file=\"" + received_path() +
             "\" template=\"raw\")\n}\n";
        return c;
    }

    ReceiverOptions options_;
    std::string dir_;
    int port_ = 0;
    std::unique_ptr<Process> process_;
};

// ---- synthetic events and what arrived ----

inline constexpr const char* kSerial = "150123";
inline constexpr std::uint32_t kBoot = 7;

/// Audit record event number `seq` (1-based) of a synthetic trail.
inline agent::Event make_audit_event(std::uint64_t seq) {
    agent::Event e;
    e.stream = agent::Stream::audit;
    e.position = seq;
    e.serial = kSerial;
    e.host = "hsm1.example";
    e.time_ms = 1'760'000'000'000 + static_cast<std::int64_t>(seq);
    e.record.seq = seq;
    e.record.time_ms = e.time_ms;
    e.record.serial = kSerial;
    e.record.boot = kBoot;
    e.record.partition = 1;
    e.record.role = "CU";
    e.record.session = 42;
    e.record.event = seq % 5 == 0 ? "LUNA_LOGIN" : "LUNA_SIGN";
    e.record.event_class = seq % 5 == 0 ? "access" : "usage";
    e.record.result = 0;
    e.mac_hex = std::string(64, 'a');
    e.event_id = agent::make_event_id(e);
    return e;
}

inline std::vector<agent::Event> make_audit_events(std::uint64_t first, std::uint64_t count) {
    std::vector<agent::Event> v;
    v.reserve(count);
    for (std::uint64_t s = first; s < first + count; ++s) v.push_back(make_audit_event(s));
    return v;
}

/// The audit sequence numbers in what rsyslog wrote, in file order (found by event id).
inline std::vector<std::uint64_t> received_seqs(const std::string& text) {
    std::vector<std::uint64_t> out;
    const std::string needle = std::string(kSerial) + "-" + std::to_string(kBoot) + "-";
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string_view line(text.data() + pos, end - pos);
        const auto at = line.find(needle);
        if (at != std::string_view::npos) {
            std::uint64_t v = 0;
            std::size_t i = at + needle.size();
            bool any = false;
            while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
                v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
                ++i;
                any = true;
            }
            if (any) out.push_back(v);
        }
        pos = end + 1;
    }
    return out;
}

/// Waits until `received` has at least `n` event ids (or the timeout passes); returns them.
inline std::vector<std::uint64_t> wait_for_seqs(const Rsyslog& r, std::size_t n,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::uint64_t> seqs;
    for (;;) {
        seqs = received_seqs(r.received());
        if (seqs.size() >= n || std::chrono::steady_clock::now() > deadline) return seqs;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace hsmaudit::testing::relp
