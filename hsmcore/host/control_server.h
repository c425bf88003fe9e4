// ControlServer: the module's control socket (D/control.sock). It serves the host side (STATUS,
// ACK, SEAL) and the client side of the emulated module (sessions, logins, key operations) with
// the line protocol of control_protocol.h. One thread accepts; one thread serves each connection.
//
// Thread-safety: start() and stop() from one owning thread; the connection threads call the
// Module, which is thread-safe. The destructor stops and joins every thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "base/result.h"
#include "hsmcore/module/module.h"

namespace hsmaudit::hsmcore::host {

class ControlServer {
public:
    /// Told when a client's link comes up (its first module request: OPEN, LOGIN, SIGN...) and
    /// goes down (the connection closes): the appliance logs these as NTLS link events. Host
    /// requests (the agent's ACK, SEAL, STATUS, CHECKPOINT) do not make a client link.
    /// Called from connection threads.
    using LinkObserver = std::function<void(bool up, const std::string& client)>;

    /// Binds `socket_path` (replacing a stale socket file), mode 0660, and starts accepting.
    static Result<std::unique_ptr<ControlServer>> start(module::Module& module, std::string socket_path,
                                                        std::size_t max_connections = 64,
                                                        LinkObserver link_observer = {});
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    /// Stops accepting, closes every connection and joins the threads; removes the socket file.
    void stop();

    /// Handles one request line and returns the reply line (without LF). Public for tests.
    static std::string handle(module::Module& module, std::string_view request);

private:
    ControlServer(module::Module& module, std::string socket_path, int listen_fd, std::size_t max_connections);
    void accept_loop(const std::stop_token& stop);
    void serve_connection(const std::stop_token& stop, int fd, const std::shared_ptr<std::atomic<bool>>& done);

    struct Connection {
        std::jthread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };

    module::Module& module_;
    LinkObserver link_observer_;
    std::string socket_path_;
    int listen_fd_ = -1;
    std::size_t max_connections_;
    std::mutex mu_;
    std::list<Connection> connections_;
    std::jthread acceptor_;
};

}  // namespace hsmaudit::hsmcore::host
