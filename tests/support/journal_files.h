// Journal files for tests, without a running journald: entries written in the journal export format
// (systemd.io/JOURNAL_EXPORT_FORMAT) and turned into a journal file by systemd-journal-remote (package
// systemd-journal-remote, scripts/setup). Running it again on the same output file appends to it.
//
// Thread-safety: free functions; safe on distinct paths.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace hsmaudit::testing {

using JournalFields = std::vector<std::pair<std::string, std::string>>;

/// systemd-journal-remote's path, "" if it is not installed.
inline std::string journal_remote_binary() {
    for (const char* p : {"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"})
        if (::access(p, X_OK) == 0) return p;
    return {};
}

/// One entry in the export format; values with control or non-ASCII bytes in the binary form.
inline std::string journal_export_entry(const JournalFields& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        bool binary = false;
        for (const unsigned char c : value)
            if (c < 0x20 || c >= 0x7f) binary = true;
        out += name;
        if (!binary) {
            out += '=';
            out += value;
        } else {
            out += '\n';
            std::uint64_t n = value.size();
            for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
            out += value;
        }
        out += '\n';
    }
    out += '\n';
    return out;
}

/// A plain entry: MESSAGE, PRIORITY, unit, a fixed boot id, realtime `usec`, monotonic `usec` too.
inline JournalFields journal_entry(std::string message, std::uint64_t usec, std::string unit = "hsm.service",
                                   int priority = 6) {
    return {{"__REALTIME_TIMESTAMP", std::to_string(usec)},
            {"__MONOTONIC_TIMESTAMP", std::to_string(usec)},
            {"_BOOT_ID", "0123456789abcdef0123456789abcdef"},
            {"MESSAGE", std::move(message)},
            {"PRIORITY", std::to_string(priority)},
            {"_SYSTEMD_UNIT", std::move(unit)},
            {"_HOSTNAME", "luna1"}};
}

/// Appends `entries` to the journal file `file` (created if missing; its name must end in .journal).
/// Returns systemd-journal-remote's exit status (0 = written), -1 if it could not be run.
inline int append_journal(const std::filesystem::path& file, const std::vector<JournalFields>& entries) {
    const std::string binary = journal_remote_binary();
    if (binary.empty()) return -1;
    const std::filesystem::path input = file.string() + ".export";
    {
        std::ofstream o(input, std::ios::binary | std::ios::trunc);
        for (const auto& e : entries) o << journal_export_entry(e);
    }
    const std::string output = "--output=" + file.string();
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const int null = ::open("/dev/null", O_RDWR);
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::dup2(null, 2);
        }
        ::execl(binary.c_str(), binary.c_str(), output.c_str(), input.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    std::filesystem::remove(input);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace hsmaudit::testing
