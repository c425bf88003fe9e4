#include "collectors/syslog/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "base/logger.h"
#include "collectors/syslog/errc.h"
#include "collectors/syslog/framing.h"

namespace hsmaudit::collectors::syslog {
namespace {

constexpr std::size_t kReadChunk = std::size_t{64} * 1024;
constexpr int kListenBacklog = 128;
constexpr std::size_t kDatagramBatch = 256;
constexpr int kAcceptPauseMs = 100;  // datagrams read per wake-up before checking stop again

std::string errno_text() {
    return std::strerror(errno);
}

using Clock = std::chrono::steady_clock;

/// The source address without the port: what the per-peer limit counts.
std::string peer_address(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
    else if (ss.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
    return host;
}

/// Bytes the kernel holds unread for a connection (a connection held back by a full sink is busy,
/// not idle).
bool has_unread(int fd) {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/// Moves a connection's descriptor to 1024 or above when the limit allows: librelp and net-snmp
/// (destinations in the same process) use select(), which cannot take descriptors from 1024 on, so
/// the many syslog connections stay out of the range they need. Keeps it where it is otherwise.
void move_above_select_range(UniqueFd& fd) {
    constexpr int kSelectLimit = 1024;  // FD_SETSIZE
    if (fd.get() >= kSelectLimit) return;
    const int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, kSelectLimit);
    if (high >= 0) fd.reset(high);  // O_NONBLOCK is the open file's: the copy has it too
}

int ms_until(Clock::time_point when, Clock::time_point now) {
    if (when <= now) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(when - now).count();
    return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

/// The smaller poll timeout (-1: none).
int min_timeout(int a, int b) {
    if (a < 0) return b;
    if (b < 0) return a;
    return std::min(a, b);
}

std::string peer_name(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return {};
}

struct Connection {
    UniqueFd fd;
    StreamFramer framer;
    std::string peer;     // address:port
    std::string address;  // the per-peer limit's key
    Clock::time_point last_active;
};

}  // namespace

Result<std::unique_ptr<SyslogListener>> SyslogListener::start(ListenerOptions options, SyslogSink& sink, Probe& probe) {
    if (options.max_message_bytes < 16 || options.max_message_bytes > std::size_t{16} * 1024 * 1024) {
        return make_error(errc::invalid_argument, "listener max_message_bytes must be within 16..16777216");
    }
    if (options.max_connections == 0) return make_error(errc::invalid_argument, "listener max_connections is 0");
    if (options.idle_timeout.count() < 0 || options.evict_min_idle.count() < 0 || options.notify_interval.count() < 0)
        return make_error(errc::invalid_argument, "listener timeouts must not be negative");
    std::unique_ptr<SyslogListener> l(new SyslogListener(std::move(options), sink, probe));
    if (!l->waker_.valid()) return make_error(errc::io_error, "eventfd: " + errno_text());
    HSMAUDIT_TRY(l->bind_socket());
    l->thread_ = std::jthread([raw = l.get()](const std::stop_token& st) { raw->run(st); });
    return l;
}

SyslogListener::SyslogListener(ListenerOptions options, SyslogSink& sink, Probe& probe)
    : options_(std::move(options)),
      sink_(sink),
      probe_(probe),
      refused_(options_.notify_interval),
      evicted_(options_.notify_interval),
      dropped_(options_.notify_interval) {}

SyslogListener::~SyslogListener() {
    stop();
}

void SyslogListener::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        waker_.wake();
        thread_.join();
    }
    fd_.reset();
    if (!unix_path_.empty()) {
        ::unlink(unix_path_.c_str());
        unix_path_.clear();
    }
}

namespace {

/// A listener endpoint parsed into its socket address, without touching the system.
struct ParsedEndpoint {
    Transport transport = Transport::udp;
    sockaddr_storage ss{};
    socklen_t len = 0;
    std::string unix_path;
};

Result<ParsedEndpoint> parse_endpoint(const std::string& ep) {
    ParsedEndpoint out;
    const auto colon = ep.find(':');
    const std::string scheme = ep.substr(0, colon);
    if (colon == std::string::npos || (scheme != "unix" && scheme != "udp" && scheme != "tcp")) {
        return make_error(errc::invalid_argument,
                          "listener endpoint '" + ep + "' must be unix:/path, udp:HOST:PORT or tcp:HOST:PORT");
    }
    const std::string rest = ep.substr(colon + 1);
    sockaddr_storage& ss = out.ss;
    if (scheme == "unix") {
        out.transport = Transport::unix_datagram;
        auto* un = reinterpret_cast<sockaddr_un*>(&ss);
        if (rest.empty() || rest.size() >= sizeof un->sun_path) {
            return make_error(errc::invalid_argument, "listener unix path '" + rest + "' is empty or too long");
        }
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, rest.data(), rest.size());
        out.len = static_cast<socklen_t>(sizeof(sockaddr_un));
        out.unix_path = rest;
        return out;
    }
    out.transport = scheme == "udp" ? Transport::udp : Transport::tcp;
    const auto pc = rest.rfind(':');
    if (pc == std::string::npos) {
        return make_error(errc::invalid_argument, "listener endpoint '" + ep + "' lacks HOST:PORT");
    }
    std::string host = rest.substr(0, pc);
    const std::string port = rest.substr(pc + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p > 65535) {
        return make_error(errc::invalid_argument, "listener port '" + port + "' is not a number in 0..65535");
    }
    auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(static_cast<std::uint16_t>(p));
        out.len = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(p));
        out.len = sizeof(sockaddr_in6);
    } else {
        return make_error(errc::invalid_argument, "listener host '" + host + "' is not a numeric address");
    }
    return out;
}

/// An existing file at a unix listener's path may be replaced only if it is a socket (a stale one).
Status check_unix_path(const std::string& path, bool* exists) {
    struct stat st {};
    *exists = ::lstat(path.c_str(), &st) == 0;
    if (*exists && !S_ISSOCK(st.st_mode)) {
        return make_error(errc::invalid_argument,
                          "listener unix path '" + path + "' exists and is not a socket: refusing to replace it");
    }
    return {};
}

}  // namespace

Status check_listener_endpoint(const std::string& endpoint) {
    auto parsed = parse_endpoint(endpoint);
    if (!parsed) return std::move(parsed).error();
    bool exists = false;
    if (parsed->transport == Transport::unix_datagram) HSMAUDIT_TRY(check_unix_path(parsed->unix_path, &exists));
    return {};
}

Status SyslogListener::bind_socket() {
    const std::string& ep = options_.endpoint;
    auto parsed = parse_endpoint(ep);
    if (!parsed) return std::move(parsed).error();
    transport_ = parsed->transport;
    const sockaddr_storage& ss = parsed->ss;
    const socklen_t len = parsed->len;
    const std::string& rest = parsed->unix_path;
    if (transport_ == Transport::unix_datagram) {
        bool exists = false;
        HSMAUDIT_TRY(check_unix_path(rest, &exists));
        if (exists) ::unlink(rest.c_str());
    }
    const int type = transport_ == Transport::tcp ? SOCK_STREAM : SOCK_DGRAM;
    fd_.reset(::socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_.valid()) return make_error(errc::io_error, "socket for " + ep + ": " + errno_text());
    const int one = 1;
    if (transport_ == Transport::tcp) {
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    } else {
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
        if (options_.receive_buffer_bytes > 0) {
            ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &options_.receive_buffer_bytes,
                         sizeof options_.receive_buffer_bytes);
        }
    }
    if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
        return make_error(errc::io_error, "bind " + ep + ": " + errno_text());
    }
    if (transport_ == Transport::unix_datagram) unix_path_ = rest;
    if (transport_ == Transport::tcp && ::listen(fd_.get(), kListenBacklog) != 0) {
        return make_error(errc::io_error, "listen " + ep + ": " + errno_text());
    }
    if (transport_ != Transport::unix_datagram) {
        sockaddr_storage bound{};
        socklen_t blen = sizeof bound;
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
        port_ = bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                           : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    }
    return {};
}

void SyslogListener::deliver(std::string_view bytes, bool oversized, bool truncated, bool framing_error,
                             std::string peer) {
    SyslogMessage m = parse_message(bytes);
    m.transport = transport_;
    m.peer = std::move(peer);
    m.oversized = oversized;
    if (truncated) {
        m.malformed = true;
        m.malformed_reason = "connection closed inside a frame: message truncated";
    } else if (framing_error) {
        m.malformed = true;
        m.malformed_reason = "bad octet count in the TCP stream; fell back to LF framing";
    }
    if (framing_error) Probe::add(probe_.framing_errors);
    Probe::add(probe_.received);
    if (m.malformed) Probe::add(probe_.malformed);
    if (m.oversized) Probe::add(probe_.oversized);
    sink_.on_message(std::move(m));
}

void SyslogListener::run(const std::stop_token& stop) {
    // Last resort: an exception (from the sink, or out of memory) stops this listener, not the
    // process; it is counted and the owner told (options_.on_failure).
    detail::run_guarded(
        [&] {
            if (transport_ == Transport::tcp) {
                run_stream(stop);
            } else {
                run_datagram(stop);
            }
        },
        "syslog listener " + options_.endpoint, probe_.thread_failures, options_.on_failure);
}

void SyslogListener::notice(agent::NoticeLimiter& limiter, std::string_view kind, agent::Severity severity,
                            const std::string& what, const std::string& detail) {
    const std::uint64_t n = limiter.take();
    std::string message = std::to_string(n) + " " + what + " on " + options_.endpoint + " since the last notice";
    if (!detail.empty()) message += " (" + detail + ")";
    try {
        if (options_.alerts != nullptr) {
            const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
            options_.alerts->alert(agent::Alert{std::string(kind), severity, message, 0, now_ms});
        } else {
            base::logger().warn("{}: {}", kind, message);
        }
    } catch (...) {
        // The owner's hook failed: the listener keeps serving (the probe still counts).
    }
}

int SyslogListener::report_notices() {
    using agent::Severity;
    const auto now = Clock::now();
    int timeout = -1;
    struct Kind {
        agent::NoticeLimiter& limiter;
        std::string_view kind;
        Severity severity;
        const char* what;
        const std::string& detail;
    };
    const Kind kinds[] = {
        {refused_, "syslog.connection_refused", Severity::warning,
         "TCP connection(s) refused (every connection busy at a limit: their senders' messages wait or are lost)",
         refused_detail_},
        {evicted_, "syslog.connection_evicted", Severity::warning,
         "idle TCP connection(s) closed to admit new senders at a connection limit", evicted_detail_},
        {dropped_, "syslog.datagrams_dropped", Severity::critical, "syslog datagram(s) dropped", dropped_detail_},
    };
    for (const Kind& k : kinds) {
        if (k.limiter.unreported() == 0) continue;
        if (k.limiter.due(now)) {
            notice(k.limiter, k.kind, k.severity, k.what, k.detail);
        } else {
            timeout = min_timeout(timeout, ms_until(k.limiter.next_allowed(), now));
        }
    }
    return timeout;
}

void SyslogListener::run_datagram(const std::stop_token& stop) {
    std::string buf(options_.max_message_bytes, '\0');
    std::uint32_t last_overflow = 0;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint32_t))];
    int timeout = -1;
    while (!stop.stop_requested()) {
        pollfd p[2] = {{fd_.get(), POLLIN, 0}, {waker_.fd(), POLLIN, 0}};
        if (::poll(p, 2, timeout) < 0) {
            if (errno == EINTR) continue;
            Probe::add(probe_.read_errors);
            return;
        }
        if (p[1].revents) return;  // stop
        for (std::size_t k = 0; k < kDatagramBatch && !stop.stop_requested(); ++k) {
            sockaddr_storage from{};
            iovec iov{buf.data(), buf.size()};
            msghdr mh{};
            mh.msg_name = &from;
            mh.msg_namelen = sizeof from;
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            mh.msg_control = control;
            mh.msg_controllen = sizeof control;
            const auto n = ::recvmsg(fd_.get(), &mh, MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) Probe::add(probe_.read_errors);
                break;
            }
            for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    std::uint32_t total = 0;
                    std::memcpy(&total, CMSG_DATA(c), sizeof total);
                    const std::uint32_t lost = total - last_overflow;  // cumulative, wraps modulo 2^32
                    if (lost != 0) {
                        Probe::add(probe_.dropped, lost);
                        dropped_.count(lost);
                        dropped_detail_ = "the socket's receive queue was full: raise syslog.receive_buffer_bytes";
                    }
                    last_overflow = total;
                }
            }
            if (!has_room()) {
                // The spool is full: a datagram cannot wait (the kernel would drop the newest
                // instead, unseen until the next one arrives); drop it here, counted.
                Probe::add(probe_.dropped_full);
                dropped_.count();
                dropped_detail_ = "the spool is full: its writer is behind or failing (syslog.spool_queue_bytes)";
                continue;
            }
            const auto got = static_cast<std::size_t>(n);
            const bool oversized = got > buf.size() || (mh.msg_flags & MSG_TRUNC) != 0;
            std::string peer = transport_ == Transport::udp ? peer_name(from) : unix_path_;
            deliver(std::string_view(buf.data(), std::min(got, buf.size())), oversized, false, false, std::move(peer));
        }
        timeout = report_notices();
    }
}

void SyslogListener::run_stream(const std::stop_token& stop) {
    std::vector<std::unique_ptr<Connection>> conns;
    // However the loop ends, the connections it leaves open no longer count as open.
    struct OpenGauge {
        OpenGauge(Probe& p, const std::vector<std::unique_ptr<Connection>>& c) : probe(p), conns(c) {}
        OpenGauge(const OpenGauge&) = delete;
        OpenGauge& operator=(const OpenGauge&) = delete;
        ~OpenGauge() { probe.connections_open.fetch_sub(conns.size(), std::memory_order_relaxed); }
        Probe& probe;
        const std::vector<std::unique_ptr<Connection>>& conns;
    } open_gauge{probe_, conns};
    std::vector<pollfd> pfds;
    std::vector<Frame> frames;
    std::string chunk(kReadChunk, '\0');
    auto flush = [&](Connection& c) {
        for (auto& f : frames) deliver(f.bytes, f.oversized, f.truncated, f.framing_error, c.peer);
        frames.clear();
    };
    // Closing a connection delivers what its framer holds (a frame cut short comes out truncated).
    auto close = [&](Connection& c) {
        c.framer.finish(frames);
        flush(c);
        c.fd.reset();
        probe_.connections_open.fetch_sub(1, std::memory_order_relaxed);
    };
    // The connection idle longest among `candidates` (no byte for evict_min_idle, none unread), or null.
    auto idle_victim = [&](const std::string* address, Clock::time_point now) -> Connection* {
        std::vector<Connection*> idle;
        for (const auto& c : conns)
            if ((address == nullptr || c->address == *address) && now - c->last_active >= options_.evict_min_idle)
                idle.push_back(c.get());
        std::sort(idle.begin(), idle.end(), [](auto* a, auto* b) { return a->last_active < b->last_active; });
        for (Connection* c : idle)
            if (!has_unread(c->fd.get())) return c;
        return nullptr;
    };
    // At a limit: drop the idle victim, or refuse (false).
    auto make_room = [&](const std::string* address, const std::string& limit, const std::string& from,
                         Clock::time_point now) {
        Connection* victim = idle_victim(address, now);
        if (victim == nullptr) {
            Probe::add(probe_.connections_rejected);
            refused_.count();
            refused_detail_ = "last from " + from + " at " + limit;
            return false;
        }
        Probe::add(probe_.connections_evicted);
        evicted_.count();
        evicted_detail_ =
            "last " + victim->peer + ", idle " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - victim->last_active).count()) +
            " s, for " + from + " at " + limit;
        close(*victim);
        std::erase_if(conns, [](const auto& c) { return !c->fd.valid(); });
        return true;
    };
    auto admit = [&](const std::string& address, const std::string& from, Clock::time_point now) {
        if (options_.max_connections_per_peer > 0) {
            const auto same = static_cast<std::size_t>(
                std::count_if(conns.begin(), conns.end(), [&](const auto& c) { return c->address == address; }));
            if (same >= options_.max_connections_per_peer &&
                !make_room(
                    &address,
                    "syslog.max_connections_per_peer (" + std::to_string(options_.max_connections_per_peer) + ")", from,
                    now))
                return false;
        }
        if (conns.size() >= options_.max_connections &&
            !make_room(nullptr, "syslog.max_connections (" + std::to_string(options_.max_connections) + ")", from, now))
            return false;
        return true;
    };
    const bool idle_timeouts = options_.idle_timeout.count() > 0;
    // Out of file descriptors, accept() fails while the listening socket stays readable: stop polling it
    // for a while instead of spinning.
    bool accept_paused = false;
    int notice_timeout = -1;
    std::size_t next_first = 0;  // the connection a round of reads starts with
    while (!stop.stop_requested()) {
        // A full sink: connections are not polled (their bytes wait in the kernel, whose window then
        // closes); the sink's room descriptor wakes the loop when it has drained.
        const bool room = has_room();
        pfds.clear();
        pfds.push_back({waker_.fd(), POLLIN, 0});
        pfds.push_back({accept_paused ? -1 : fd_.get(), POLLIN, 0});
        pfds.push_back({room || options_.backpressure == nullptr ? -1 : options_.backpressure->room_fd(), POLLIN, 0});
        for (const auto& c : conns) pfds.push_back({room ? c->fd.get() : -1, POLLIN, 0});
        int timeout = min_timeout(accept_paused ? kAcceptPauseMs : -1, notice_timeout);
        if (idle_timeouts && !conns.empty()) {
            auto oldest = conns.front()->last_active;
            for (const auto& c : conns) oldest = std::min(oldest, c->last_active);
            timeout = min_timeout(timeout, ms_until(oldest + options_.idle_timeout, Clock::now()));
        }
        const int ready = ::poll(pfds.data(), pfds.size(), timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            Probe::add(probe_.read_errors);
            return;
        }
        if (ready == 0) accept_paused = false;
        if (pfds[0].revents) return;  // stop: open connections close without delivering partial frames
        const auto now = Clock::now();
        // Connections first (their indices match pfds as built), then accept. One read per ready
        // connection per round, so no sender starves another; none once the sink is full (the
        // frames of a read already made are delivered: the sink takes them over its bound). The
        // round starts where the last one ran out of room: with the sink full most of the time
        // (a flood), the connections first in the list would otherwise take all the room there is.
        const std::size_t count = conns.size();
        std::size_t first = count == 0 ? 0 : next_first % count;
        next_first = first + 1;
        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t i = (first + k) % count;
            if (pfds[i + 3].revents == 0) continue;
            if (!has_room()) {
                next_first = i;  // served first once there is room again
                break;
            }
            Connection& c = *conns[i];
            const auto n = ::recv(c.fd.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
            if (n > 0) {
                c.last_active = now;
                c.framer.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)), frames);
                flush(c);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            if (n < 0) Probe::add(probe_.read_errors);
            close(c);
            accept_paused = false;  // a descriptor was freed
        }
        if (idle_timeouts) {
            for (auto& c : conns) {
                if (!c->fd.valid() || now - c->last_active < options_.idle_timeout) continue;
                if (has_unread(c->fd.get())) {
                    c->last_active = now;  // held back by a full sink, not idle
                    continue;
                }
                Probe::add(probe_.connections_idle_closed);
                close(*c);
                accept_paused = false;
            }
        }
        std::erase_if(conns, [](const auto& c) { return !c->fd.valid(); });
        if (pfds[1].revents & POLLIN) {
            for (;;) {
                sockaddr_storage from{};
                socklen_t flen = sizeof from;
                UniqueFd cfd(
                    ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&from), &flen, SOCK_CLOEXEC | SOCK_NONBLOCK));
                if (!cfd.valid()) {
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        Probe::add(probe_.read_errors);
                        accept_paused = true;
                    }
                    break;
                }
                std::string address = peer_address(from);
                std::string peer = peer_name(from);
                if (!admit(address, peer, now)) continue;  // closed by cfd's destructor
                move_above_select_range(cfd);
                Probe::add(probe_.connections_accepted);
                Probe::add(probe_.connections_open);
                conns.push_back(
                    std::make_unique<Connection>(Connection{std::move(cfd), StreamFramer(options_.max_message_bytes),
                                                            std::move(peer), std::move(address), now}));
            }
        }
        notice_timeout = report_notices();
    }
}

}  // namespace hsmaudit::collectors::syslog
