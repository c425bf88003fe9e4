// Helpers of the Prometheus integration tests: temp dirs, free loopback ports, curl, promtool.
// Every process started is stopped (tests/integration/common/process.h); waits are bounded polls.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/common/ports.h"
#include "tests/integration/common/process.h"

namespace hsmaudit::testing::prom {

namespace fs = std::filesystem;

inline std::string tool(const std::string& name) {
    for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"})
        if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return std::string(dir) + name;
    return "";
}

class TempDir {
public:
    TempDir() {
        std::string t = (fs::path(::testing::TempDir()) / "hsmprom_XXXXXX").string();
        if (::mkdtemp(t.data()) != nullptr) path_ = t;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] std::string operator/(const std::string& n) const { return (fs::path(path_) / n).string(); }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline void write(const std::string& path, const std::string& text, unsigned mode = 0600) {
    std::ofstream(path, std::ios::trunc) << text;
    fs::permissions(path, static_cast<fs::perms>(mode));
}

inline std::string read(const std::string& path) {
    return Process::slurp(path);
}

using hsmaudit::testing::free_port;  // tests/integration/common/ports.h

struct HttpResult {
    int curl_exit = -1;
    int status = 0;  // 0 when no HTTP response (connection or TLS failure)
    std::string body;
};

/// GET with curl (10 s bound); `extra` are curl options (-u, --cacert, --cert...).
inline HttpResult http_get(const std::string& url, const std::string& scratch, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {tool("curl"),      "-s", "--max-time",  "10", "-o",
                                     scratch + ".body", "-w", "%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    Process p(argv, scratch + ".out", scratch + ".err");
    HttpResult r;
    r.curl_exit = p.wait(std::chrono::seconds(30)).value_or(-1);
    r.status = std::atoi(p.out().c_str());
    r.body = read(scratch + ".body");
    return r;
}

/// Runs a shell command line (for stdin redirection into promtool); returns exit code and output.
inline std::pair<int, std::string> sh(const std::string& command, const std::string& scratch) {
    return run({"/bin/sh", "-c", command}, scratch);
}

}  // namespace hsmaudit::testing::prom
