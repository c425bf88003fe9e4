#include "hsmcore/host/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "hsmcore/errc.h"
#include "hsmcore/host/control_protocol.h"
#include "mac/crypto.h"
#include "mac/record.h"

namespace hsmaudit::hsmcore::host {
namespace {

constexpr int kPollMs = 100;  // how often idle threads look at their stop token

std::string err_reply(const Error& e) {
    const char* name = "io_error";
    if (e.code.category() == error_category()) name = errc_name(static_cast<errc>(e.code.value()));
    std::string msg = e.message;
    for (char& c : msg)
        if (c == '\n' || c == '\r') c = ' ';
    return std::string("ERR ") + name + " " + msg;
}

std::string ok_reply(const module::Reply& r) {
    std::string out = "OK seq=" + std::to_string(r.seq) + " handle=" + std::to_string(r.handle);
    if (!r.data.empty()) {
        out += " data=";
        mac::hex_append(mac::as_bytes(r.data), out);
    }
    return out;
}

std::string reply_of(const Result<module::Reply>& r) {
    return r ? ok_reply(*r) : err_reply(r.error());
}

bool u64_arg(std::string_view s, std::uint64_t& v) {
    return mac::parse_u64(s, v);
}

bool i64_arg(std::string_view s, std::int64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && p == s.data() + s.size();
}

bool hex_arg(std::string_view s, std::string& out) {
    if (s.size() % 2 != 0) return false;
    out.assign(s.size() / 2, '\0');
    return mac::hex_decode(s, {reinterpret_cast<std::uint8_t*>(out.data()), out.size()});
}

std::string status_reply(const ring::RingStatus& s) {
    std::string o = "OK serial=" + s.serial;
    auto add = [&](const char* k, std::uint64_t v) {
        o += ' ';
        o += k;
        o += '=';
        o += std::to_string(v);
    };
    add("capacity", s.capacity);
    add("reserve", s.reserve);
    add("used", s.used_bytes);
    add("oldest_entry", s.oldest_entry);
    add("next_entry", s.next_entry);
    add("oldest_seq", s.oldest_seq);
    add("next_seq", s.next_seq);
    add("epoch", s.epoch);
    add("boot", s.boot);
    add("blocked", s.blocked ? 1 : 0);
    add("op_requests", s.counters.op_requests);
    add("op_errors", s.counters.op_errors);
    add("crypto_requests", s.counters.crypto_requests);
    add("crypto_errors", s.counters.crypto_errors);
    add("critical_events", s.counters.critical_events);
    add("noncritical_events", s.counters.noncritical_events);
    add("refused_log_full", s.counters.refused_log_full);
    add("unlogged_events", s.counters.unlogged_events);
    return o;
}

}  // namespace

std::string ControlServer::handle(module::Module& m, std::string_view request) {
    const auto w = split_words(request);
    if (w.empty()) return "ERR protocol_error empty request";
    const std::string_view verb = w[0];
    auto bad = [&](const char* usage) { return std::string("ERR invalid_argument usage: ") + usage; };
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::string d1;
    std::string d2;
    if (verb == "PING") return "OK";
    if (verb == "STATUS") return status_reply(m.status());
    if (verb == "ACK") {
        if (w.size() != 2 || !u64_arg(w[1], a)) return bad("ACK <entry>");
        auto st = m.ack_through(a);
        return st ? "OK" : err_reply(st.error());
    }
    if (verb == "CHECKPOINT") {
        // CHECKPOINT [<retained>]: with the first sequence number the host's store holds, a
        // version 2 checkpoint states it (mac/checkpoint.h).
        if (w.size() > 2 || (w.size() == 2 && (!u64_arg(w[1], a) || a == 0))) return bad("CHECKPOINT [<retained>]");
        auto c = m.checkpoint(w.size() == 2 ? a : 0);
        if (!c) return err_reply(c.error());
        // Every field of the line is one space-free token: the reply carries the line's fields.
        return "OK " + c->line().substr(std::string_view("@checkpoint ").size());
    }
    if (verb == "TREEHEAD") {
        // The signed note is several lines: the reply carries its bytes in hex (one line).
        auto note = m.tree_head();
        if (!note) return err_reply(note.error());
        std::string out = "OK note=";
        mac::hex_append(mac::as_bytes(*note), out);
        return out;
    }
    if (verb == "SEAL") {
        auto r = m.seal();
        return r ? "OK entry=" + std::to_string(r->handle) : err_reply(r.error());
    }
    if (verb == "OPEN") {
        if (w.size() != 2 || !u64_arg(w[1], a) || a > UINT32_MAX) return bad("OPEN <partition>");
        return reply_of(m.open_session(static_cast<std::uint32_t>(a)));
    }
    if (verb == "CLOSE") {
        if (w.size() != 2 || !u64_arg(w[1], a)) return bad("CLOSE <session>");
        return reply_of(m.close_session(a));
    }
    if (verb == "LOGIN") {
        if (w.size() != 4 || !u64_arg(w[1], a)) return bad("LOGIN <session> <role> <pin>");
        auto role = module::parse_role(w[2]);
        if (!role) return err_reply(role.error());
        return reply_of(m.login(a, *role, w[3]));
    }
    if (verb == "LOGOUT") {
        if (w.size() != 2 || !u64_arg(w[1], a)) return bad("LOGOUT <session>");
        return reply_of(m.logout(a));
    }
    if (verb == "GENKEY") {
        if (w.size() != 4 || !u64_arg(w[1], a)) return bad("GENKEY <session> <alg> <label>");
        auto alg = module::parse_key_alg(w[2]);
        if (!alg) return err_reply(alg.error());
        return reply_of(m.generate_key(a, *alg, w[3]));
    }
    if (verb == "DESTROY") {
        if (w.size() != 3 || !u64_arg(w[1], a) || !u64_arg(w[2], b)) return bad("DESTROY <session> <key>");
        return reply_of(m.destroy_object(a, b));
    }
    if (verb == "SIGN" || verb == "ENCRYPT" || verb == "DECRYPT") {
        if (w.size() != 4 || !u64_arg(w[1], a) || !u64_arg(w[2], b) || !hex_arg(w[3], d1))
            return bad("SIGN|ENCRYPT|DECRYPT <session> <key> <hex>");
        if (verb == "SIGN") return reply_of(m.sign(a, b, d1));
        if (verb == "ENCRYPT") return reply_of(m.encrypt(a, b, d1));
        return reply_of(m.decrypt(a, b, d1));
    }
    if (verb == "VERIFY") {
        if (w.size() != 5 || !u64_arg(w[1], a) || !u64_arg(w[2], b) || !hex_arg(w[3], d1) || !hex_arg(w[4], d2))
            return bad("VERIFY <session> <key> <hex data> <hex signature>");
        return reply_of(m.verify(a, b, d1, d2));
    }
    if (verb == "WRAP") {
        std::uint64_t c = 0;
        if (w.size() != 4 || !u64_arg(w[1], a) || !u64_arg(w[2], b) || !u64_arg(w[3], c))
            return bad("WRAP <session> <wrapping key> <key>");
        return reply_of(m.wrap_key(a, b, c));
    }
    if (verb == "UNWRAP") {
        if (w.size() != 5 || !u64_arg(w[1], a) || !u64_arg(w[2], b) || !hex_arg(w[3], d1))
            return bad("UNWRAP <session> <wrapping key> <hex blob> <label>");
        return reply_of(m.unwrap_key(a, b, d1, w[4]));
    }
    if (verb == "MASK") {
        if (w.size() != 3 || !u64_arg(w[1], a)) return bad("MASK <session> <classes>");
        return reply_of(m.set_audit_mask(a, w[2]));
    }
    if (verb == "EXTERNAL") {
        if (w.size() != 3 || !u64_arg(w[1], a) || !hex_arg(w[2], d1)) return bad("EXTERNAL <session> <hex message>");
        return reply_of(m.log_external(a, d1));
    }
    if (verb == "CLOCK") {
        std::int64_t off = 0;
        std::int64_t drift = 0;
        if (w.size() != 4 || !u64_arg(w[1], a) || !i64_arg(w[2], off) || !i64_arg(w[3], drift))
            return bad("CLOCK <session> <offset ms> <drift ppm>");
        return reply_of(m.set_clock(a, off, drift));
    }
    if (verb == "CREATEPART") {
        if (w.size() != 3 || !u64_arg(w[1], a)) return bad("CREATEPART <session> <label>");
        return reply_of(m.create_partition(a, w[2]));
    }
    if (verb == "INITPART") {
        if (w.size() != 5 || !u64_arg(w[1], a) || !u64_arg(w[2], b) || b > UINT32_MAX)
            return bad("INITPART <session> <partition> <label> <pso pin>");
        return reply_of(m.init_partition(a, static_cast<std::uint32_t>(b), w[3], w[4]));
    }
    if (verb == "INITROLE") {
        if (w.size() != 4 || !u64_arg(w[1], a)) return bad("INITROLE <session> <role> <pin>");
        auto role = module::parse_role(w[2]);
        if (!role) return err_reply(role.error());
        return reply_of(m.init_role(a, *role, w[3]));
    }
    if (verb == "PARTITIONS") {
        std::string o = "OK";
        for (const auto& p : m.list_partitions()) {
            o += " p" + std::to_string(p.id) + "=";
            mac::append_escaped(p.label, o);
            o += "," + std::to_string(p.keys) + (p.initialized ? ",initialized" : ",new");
        }
        return o;
    }
    return "ERR protocol_error unknown request '" + std::string(verb.substr(0, 32)) + "'";
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(module::Module& module, std::string socket_path,
                                                            std::size_t max_connections, LinkObserver link_observer) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path)
        return make_error(errc::invalid_argument, "control socket path too long: " + socket_path);
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(errc::io_error, std::string("socket: ") + std::strerror(errno));
    ::unlink(socket_path.c_str());  // a stale socket from a killed module; the ring lock proves we are alone
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
        ::chmod(socket_path.c_str(), 0660) != 0) {
        const std::string msg = std::strerror(errno);
        ::close(fd);
        return make_error(errc::io_error, "cannot listen on " + socket_path + ": " + msg);
    }
    std::unique_ptr<ControlServer> s(new ControlServer(module, std::move(socket_path), fd, max_connections));
    s->link_observer_ = std::move(link_observer);
    s->acceptor_ = std::jthread([srv = s.get()](const std::stop_token& st) { srv->accept_loop(st); });
    return s;
}

ControlServer::ControlServer(module::Module& module, std::string socket_path, int listen_fd,
                             std::size_t max_connections)
    : module_(module), socket_path_(std::move(socket_path)), listen_fd_(listen_fd), max_connections_(max_connections) {}

ControlServer::~ControlServer() {
    stop();
}

void ControlServer::stop() {
    if (acceptor_.joinable()) {
        acceptor_.request_stop();
        acceptor_.join();
    }
    std::list<Connection> conns;
    {
        std::lock_guard lock(mu_);
        conns.swap(connections_);
    }
    for (auto& c : conns) c.thread.request_stop();
    conns.clear();  // joins
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
        ::unlink(socket_path_.c_str());
    }
}

void ControlServer::accept_loop(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
        pollfd p{listen_fd_, POLLIN, 0};
        const int n = ::poll(&p, 1, kPollMs);
        if (n <= 0) continue;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::lock_guard lock(mu_);
        connections_.remove_if([](const Connection& c) { return c.done->load(); });  // joins finished ones
        if (connections_.size() >= max_connections_) {
            const char msg[] = "ERR unavailable too many control connections\n";
            (void)::send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
            ::close(fd);
            continue;
        }
        const timeval send_timeout{2, 0};  // a client that stops reading cannot wedge stop()
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
        auto done = std::make_shared<std::atomic<bool>>(false);
        connections_.push_back(Connection{
            std::jthread([this, fd, done](const std::stop_token& st) { serve_connection(st, fd, done); }), done});
    }
}

void ControlServer::serve_connection(const std::stop_token& stop, int fd,
                                     const std::shared_ptr<std::atomic<bool>>& done) {
    std::string buf;
    std::string out;
    char tmp[16384];
    bool link_up = false;
    std::string client;
    if (link_observer_) {
        ucred cred{};
        socklen_t len = sizeof cred;
        client = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                     ? "local pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid)
                     : "local client";
    }
    while (!stop.stop_requested()) {
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, kPollMs);
        if (n == 0) continue;
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        const ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        buf.append(tmp, static_cast<std::size_t>(r));
        out.clear();
        std::size_t start = 0;
        for (std::size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
            const std::string_view request = std::string_view(buf).substr(start, nl - start);
            if (link_observer_ && !link_up) {
                const std::string_view verb = request.substr(0, request.find(' '));
                if (verb != "PING" && verb != "STATUS" && verb != "ACK" && verb != "SEAL" && verb != "CHECKPOINT" &&
                    verb != "TREEHEAD") {
                    link_up = true;
                    link_observer_(true, client);
                }
            }
            out += handle(module_, request);
            out += '\n';
        }
        buf.erase(0, start);
        bool oversized = false;
        if (buf.size() > kMaxRequestBytes) {
            out += "ERR protocol_error request longer than " + std::to_string(kMaxRequestBytes) + " bytes\n";
            oversized = true;
        }
        std::size_t off = 0;
        while (off < out.size()) {
            const ssize_t s = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
            if (s < 0 && errno == EINTR) continue;
            if (s <= 0) break;
            off += static_cast<std::size_t>(s);
        }
        if (off < out.size() || oversized) break;
    }
    ::close(fd);
    if (link_up) link_observer_(false, client);
    done->store(true);
}

}  // namespace hsmaudit::hsmcore::host
