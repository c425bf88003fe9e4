// Test harness for running the real hsmauditd as systemd would: a NOTIFY_SOCKET the test listens on
// (a unix datagram socket in a temp dir, SO_PASSCRED so each message carries its sender's pid), the
// daemon as a child process with stdout/stderr in files, and helpers to run short commands.
//
// Waits are bounded polls with generous limits: they only fail a stuck test, they never measure.
// Every process started here is stopped by its owner's destructor (SIGKILL if it did not exit).
// Thread-safety: single-threaded test code only.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hsmaudit::testing {

namespace fs = std::filesystem;

inline const std::string kHsmauditd = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmauditd";
inline const std::string kHsmaudit = std::string(HSMAUDIT_BINARY_DIR) + "/agent/hsmaudit";
inline constexpr std::chrono::seconds kStuck{60};  // a step that takes longer is stuck, not slow

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void spit(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

/// A private temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        // Short: a unix socket path must fit in sun_path (108 bytes).
        std::string tmpl = (fs::path(::testing::TempDir()) / "hsmd_XXXXXX").string();
        if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] bool ok() const { return !path_.empty(); }
    [[nodiscard]] std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// One sd_notify datagram: its sender and its assignments ("READY" -> "1", "STATUS" -> "...").
struct NotifyMessage {
    pid_t pid = 0;
    std::map<std::string, std::string> fields;
    [[nodiscard]] bool has(const std::string& k, const std::string& v) const {
        auto it = fields.find(k);
        return it != fields.end() && it->second == v;
    }
};

/// The service manager's end of NOTIFY_SOCKET.
class NotifyListener {
public:
    explicit NotifyListener(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) return;
        const int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path_.size() >= sizeof addr.sun_path) return;
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
        bound_ = true;
    }
    ~NotifyListener() {
        if (fd_ >= 0) ::close(fd_);
    }
    NotifyListener(const NotifyListener&) = delete;
    NotifyListener& operator=(const NotifyListener&) = delete;

    [[nodiscard]] bool ok() const { return bound_; }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] const std::vector<NotifyMessage>& messages() const { return messages_; }

    /// Receives until a message satisfies `pred` (returns its index) or `limit` passes (nullopt).
    /// Looks at messages already received from index `from` first.
    std::optional<std::size_t> wait_for(const std::function<bool(const NotifyMessage&)>& pred, std::size_t from = 0,
                                        std::chrono::milliseconds limit = kStuck) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (std::size_t i = from;; ++i) {
            while (i >= messages_.size()) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0 || !receive(left)) return std::nullopt;
            }
            if (pred(messages_[i])) return i;
        }
    }

private:
    bool receive(std::chrono::milliseconds limit) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
        char buf[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_, &msg, 0);
        if (n < 0) return false;
        NotifyMessage m;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred{};
                std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
                m.pid = cred.pid;
            }
        }
        std::istringstream lines(std::string(buf, static_cast<std::size_t>(n)));
        for (std::string line; std::getline(lines, line);) {
            const auto eq = line.find('=');
            if (eq != std::string::npos) m.fields[line.substr(0, eq)] = line.substr(eq + 1);
        }
        messages_.push_back(std::move(m));
        return true;
    }

    std::string path_;
    int fd_ = -1;
    bool bound_ = false;
    std::vector<NotifyMessage> messages_;
};

/// hsmauditd as a child process, environment as systemd's Type=notify with a watchdog gives it.
class Daemon {
public:
    /// `notify_socket` empty: no NOTIFY_SOCKET. `watchdog_usec` 0: no watchdog. `wrapper`: a command
    /// line the agent runs under (e.g. strace); pid() is then the wrapper's.
    Daemon(const std::string& config, const std::string& log_file, const std::string& notify_socket,
           std::uint64_t watchdog_usec, std::vector<std::string> wrapper = {})
        : log_file_(log_file) {
        pid_ = ::fork();
        if (pid_ != 0) return;
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
        if (!notify_socket.empty()) ::setenv("NOTIFY_SOCKET", notify_socket.c_str(), 1);
        if (watchdog_usec != 0) {
            // sd_watchdog_enabled() compares WATCHDOG_PID with getpid(): the pid survives exec, but
            // not a wrapper, whose child gets another; unset, it applies to whoever reads it.
            ::setenv("WATCHDOG_USEC", std::to_string(watchdog_usec).c_str(), 1);
            if (wrapper.empty()) ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
        }
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0) ::_exit(127);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        std::vector<std::string> args = std::move(wrapper);
        args.insert(args.end(), {kHsmauditd, "-c", config});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    ~Daemon() {
        if (pid_ > 0 && !exit_status_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
    }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] std::string log() const { return slurp(log_file_); }
    bool signal(int sig) const { return pid_ > 0 && !exit_status_ && ::kill(pid_, sig) == 0; }

    /// True while the process has not exited (reaps it when it has).
    bool running() {
        if (exit_status_) return false;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) exit_status_ = st;
        return !exit_status_;
    }
    /// The exit code (128+signal if killed by one), or nullopt if it did not exit within `limit`.
    std::optional<int> wait_exit(std::chrono::milliseconds limit = kStuck) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (running()) {
            if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        const int st = *exit_status_;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }

private:
    std::string log_file_;
    pid_t pid_ = -1;
    std::optional<int> exit_status_;
};

struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs a short command (no shell), stdin from /dev/null; output collected through files in `scratch`.
inline CommandResult run_command(const std::vector<std::string>& args, const std::string& scratch) {
    const std::string out_file = (fs::path(scratch) / ".cmd_stdout").string();
    const std::string err_file = (fs::path(scratch) / ".cmd_stderr").string();
    std::vector<std::string> storage = args;
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0) ::_exit(127);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    CommandResult r;
    int status = 0;
    if (pid > 0 && ::waitpid(pid, &status, 0) == pid)
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_file);
    r.err = slurp(err_file);
    return r;
}

/// Polls `pred` every 50 ms until it holds (true) or `limit` passes (false).
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = kStuck) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

/// A NotifyListener predicate: the message sets `k` to `v` ("READY", "1").
inline auto field_is(const std::string& k, const std::string& v) {
    return [k, v](const NotifyMessage& m) { return m.has(k, v); };
}

/// The regular files directly in `dir` (0 if it cannot be read).
inline std::size_t count_files(const std::string& dir) {
    std::error_code ec;
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file()) ++n;
    return n;
}

}  // namespace hsmaudit::testing
