#include "hsmcore/host/control_protocol.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hsmcore/errc.h"
#include "mac/record.h"

namespace hsmaudit::hsmcore::host {

std::string_view ReplyFields::get(std::string_view key) const {
    for (const auto& [k, v] : fields)
        if (k == key) return v;
    return {};
}

std::uint64_t ReplyFields::get_u64(std::string_view key) const {
    std::uint64_t v = 0;
    return mac::parse_u64(get(key), v) ? v : 0;
}

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> out;
    while (!line.empty()) {
        const auto sp = line.find(' ');
        if (sp != 0) out.push_back(line.substr(0, sp));
        if (sp == std::string_view::npos) break;
        line = line.substr(sp + 1);
    }
    return out;
}

Result<ReplyFields> parse_reply(std::string_view line) {
    if (line.substr(0, 4) == "ERR ") {
        std::string_view rest = line.substr(4);
        const auto sp = rest.find(' ');
        const std::string_view name = rest.substr(0, sp);
        const std::string msg = sp == std::string_view::npos ? std::string(name) : std::string(rest.substr(sp + 1));
        return Error{make_error_code(errc_from_name(name)), msg};
    }
    if (line != "OK" && line.substr(0, 3) != "OK ")
        return make_error(errc::protocol_error, "control reply is neither OK nor ERR");
    ReplyFields r;
    for (auto w : split_words(line.substr(2))) {
        const auto eq = w.find('=');
        if (eq == std::string_view::npos) return make_error(errc::protocol_error, "control reply field without '='");
        r.fields.emplace_back(std::string(w.substr(0, eq)), std::string(w.substr(eq + 1)));
    }
    return r;
}

Result<ControlClient> ControlClient::connect(const std::string& socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path)
        return make_error(errc::invalid_argument, "control socket path too long: " + socket_path);
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(errc::io_error, std::string("socket: ") + std::strerror(errno));
    ControlClient c(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return make_error(errc::unavailable, "cannot connect to the module at " + socket_path + ": " +
                                                 std::strerror(errno) + " (is `hsmcore serve` running?)");
    return c;
}

ControlClient::ControlClient(ControlClient&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) {
    o.fd_ = -1;
}

ControlClient& ControlClient::operator=(ControlClient&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
        buf_ = std::move(o.buf_);
    }
    return *this;
}

ControlClient::~ControlClient() {
    if (fd_ >= 0) ::close(fd_);
}

Result<ReplyFields> ControlClient::call(std::string_view request) {
    if (fd_ < 0) return make_error(errc::unavailable, "control connection closed");
    std::string req(request);
    req += '\n';
    std::size_t off = 0;
    while (off < req.size()) {
        const ssize_t n = ::send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd_);
            fd_ = -1;
            return make_error(errc::unavailable, std::string("control socket send: ") + std::strerror(errno));
        }
        off += static_cast<std::size_t>(n);
    }
    for (;;) {
        const auto nl = buf_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            return parse_reply(line);
        }
        if (buf_.size() > kMaxRequestBytes) return make_error(errc::protocol_error, "control reply too long");
        char tmp[16384];
        const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd_);
            fd_ = -1;
            return make_error(errc::unavailable, "the module closed the control connection");
        }
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

}  // namespace hsmaudit::hsmcore::host
