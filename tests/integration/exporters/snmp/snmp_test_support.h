// Test support for the SNMP exporter's integration tests: the IETF base MIBs (installed by
// scripts/setup), a free loopback UDP port, and a Debian snmptrapd started on it with its own
// configuration in a temp dir, stopped (by pid) when the fixture goes.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/common/process.h"

namespace hsmaudit::testing::snmp {

/// Where scripts/setup installs the IETF base MIBs (HSMAUDIT_BASE_MIBS overrides); "" if missing.
inline std::string base_mib_dir() {
    const char* env = std::getenv("HSMAUDIT_BASE_MIBS");
    const std::string dir = env != nullptr && *env != '\0' ? env : "/usr/local/share/hsmaudit/mibs";
    return std::filesystem::exists(dir + "/SNMPv2-SMI") ? dir : std::string();
}
inline constexpr const char* kMissingMibs =
    "the IETF base MIBs (SNMPv2-SMI...) are not installed: run scripts/setup (it installs them into "
    "/usr/local/share/hsmaudit/mibs, or HSMAUDIT_BASE_MIBS)";

inline std::string project_mib_dir() {
    return std::string(HSMAUDIT_SOURCE_DIR) + "/config/mibs";
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
inline int free_udp_port() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

inline std::string make_temp_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "hsmaudit-snmp-XXXXXX").string();
    return ::mkdtemp(t.data()) != nullptr ? t : std::string();
}

inline void write_file(const std::string& path, const std::string& text, unsigned mode = 0600) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
}

/// Debian's snmptrapd on udp:127.0.0.1:port, logging to <dir>/traps.log with HSMAUDIT-MIB names.
class TrapReceiver {
public:
    TrapReceiver(std::string dir, int port, const std::string& config) : dir_(std::move(dir)), port_(port) {
        write_file(dir_ + "/snmptrapd.conf", config);
        log_ = dir_ + "/traps.log";
        std::filesystem::create_directories(dir_ + "/persist");
        // snmptrapd keeps state (its engine boots) under SNMP_PERSISTENT_DIR: the temp dir, not /var/lib/snmp.
        ::setenv("SNMP_PERSISTENT_DIR", (dir_ + "/persist").c_str(), 1);
        proc_ = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/snmptrapd", "-f", "-C", "-c", dir_ + "/snmptrapd.conf", "-Lf", log_,
                                     "-p", dir_ + "/snmptrapd.pid", "-m", "HSMAUDIT-MIB:SNMPv2-MIB", "-M",
                                     base_mib_dir() + ":" + project_mib_dir(),
                                     "udp:127.0.0.1:" + std::to_string(port_)},
            dir_ + "/snmptrapd.out", dir_ + "/snmptrapd.err");
        // Ready once it logged its banner.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until && log().find("NET-SNMP version") == std::string::npos)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ~TrapReceiver() { stop(); }
    TrapReceiver(const TrapReceiver&) = delete;
    TrapReceiver& operator=(const TrapReceiver&) = delete;

    void stop() {
        if (proc_ && proc_->running()) {
            proc_->signal(SIGTERM);
            if (!proc_->wait(std::chrono::seconds(10))) proc_->signal(SIGKILL);
        }
    }
    [[nodiscard]] bool running() const { return proc_ && proc_->running(); }
    [[nodiscard]] std::string log() const { return Process::slurp(log_); }
    [[nodiscard]] std::string errors() const { return Process::slurp(dir_ + "/snmptrapd.err"); }

    /// The notifications logged so far: one string per PDU ("... snmpTrapOID.0 = OID: HSMAUDIT-MIB::x\t...").
    [[nodiscard]] std::vector<std::string> notifications() const {
        std::vector<std::string> out;
        std::istringstream in(log());
        for (std::string line; std::getline(in, line);)
            if (line.find("snmpTrapOID.0 = OID: ") != std::string::npos) out.push_back(line);
        return out;
    }
    /// Waits (bounded: a safety net, not an assertion) until `n` notifications were logged.
    std::vector<std::string> wait_for(std::size_t n, std::chrono::seconds limit = std::chrono::seconds(20)) const {
        const auto until = std::chrono::steady_clock::now() + limit;
        auto got = notifications();
        while (got.size() < n && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            got = notifications();
        }
        return got;
    }
    [[nodiscard]] int port() const { return port_; }

private:
    std::string dir_;
    int port_;
    std::string log_;
    std::unique_ptr<Process> proc_;
};

/// The value snmptrapd logged for `object` (e.g. "HSMAUDIT-MIB::hsmNotifyCondition.0") in one
/// notification line: the text after "= TYPE: " up to the next tab.
inline std::string varbind(const std::string& line, const std::string& object) {
    const auto at = line.find(object + " = ");
    if (at == std::string::npos) return "<missing>";
    auto v = line.substr(at + object.size() + 3);
    v = v.substr(0, v.find('\t'));
    const auto colon = v.find(": ");
    return colon == std::string::npos ? v : v.substr(colon + 2);
}

inline std::string trap_name(const std::string& line) {
    return varbind(line, "SNMPv2-MIB::snmpTrapOID.0");
}

}  // namespace hsmaudit::testing::snmp
