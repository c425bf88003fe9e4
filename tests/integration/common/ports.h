// Loopback ports for tests (hermetic: each test asks for its own).
// Thread-safety: free functions, no shared state.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace hsmaudit::testing {

/// A port on 127.0.0.1 free right now for sockets of `type` (bound, read back, closed): a server
/// the test starts binds it (with SO_REUSEADDR), or nothing does and a client finds it closed.
/// 0 if the kernel would not give one.
inline int free_port(int type = SOCK_STREAM) {
    const int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) return 0;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

}  // namespace hsmaudit::testing
