// A child process for integration tests (shared by every suite under tests/integration/): fork + execv with
// stdout/stderr to files, stopped (SIGKILL) and reaped by the destructor if still running, so no test leaves a process
// behind.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hsmaudit::testing {

class Process {
public:
    Process(const std::vector<std::string>& argv, const std::string& out_file, const std::string& err_file)
        : out_file_(out_file), err_file_(err_file) {
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            const int in = ::open("/dev/null", O_RDONLY);
            const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (in < 0 || out < 0 || err < 0) ::_exit(127);
            ::dup2(in, 0);
            ::dup2(out, 1);
            ::dup2(err, 2);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Process() {
        if (running()) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    bool running() {
        if (status_) return false;
        int st = 0;
        const pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) status_ = st;
        return !status_;
    }
    void signal(int sig) {
        if (running()) ::kill(pid_, sig);
    }
    /// Waits for the exit; returns the exit code (128 + signal if killed), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (running()) {
            if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
    }
    [[nodiscard]] std::string out() const { return slurp(out_file_); }
    [[nodiscard]] std::string err() const { return slurp(err_file_); }

    static std::string slurp(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string out_file_;
    std::string err_file_;
};

/// Runs a command to completion; returns (exit code, stdout).
inline std::pair<int, std::string> run(const std::vector<std::string>& argv, const std::string& tmp_prefix,
                                       std::chrono::milliseconds timeout = std::chrono::milliseconds(120000)) {
    Process p(argv, tmp_prefix + ".out", tmp_prefix + ".err");
    auto code = p.wait(timeout);
    return {code.value_or(-1), p.out() + p.err()};
}

}  // namespace hsmaudit::testing
