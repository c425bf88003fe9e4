#include "exporters/prometheus/process_collector.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/api/metric_families.h"
#include "base/version/version.h"

#ifndef HSMAUDIT_BUILD_TYPE
#define HSMAUDIT_BUILD_TYPE "unknown"
#endif

namespace hsmaudit::exporters::prometheus {
namespace {

#if defined(__clang__)
constexpr char kCompiler[] = "clang " __clang_version__;
#else
constexpr char kCompiler[] = "gcc " __VERSION__;
#endif

double clock_seconds(clockid_t id) {
    timespec ts{};
    if (::clock_gettime(id, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

std::optional<ProcessFigures> read_process_figures() {
    std::ifstream in("/proc/self/stat");
    std::string stat;
    if (!std::getline(in, stat)) return std::nullopt;
    // "pid (comm) state ..." - comm may hold spaces and parentheses: fields start after the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string s; fields >> s;) f.push_back(s);
    if (f.size() < 22) return std::nullopt;
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    ProcessFigures p;
    try {
        p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tick;  // utime, stime (fields 14, 15)
        const double start_ticks = std::stod(f[19]);                   // starttime (22), since boot
        p.virtual_bytes = std::stod(f[20]);                            // vsize (23)
        p.resident_bytes = std::stod(f[21]) * page;                    // rss (24), pages
        p.start_time_seconds = clock_seconds(CLOCK_REALTIME) - clock_seconds(CLOCK_BOOTTIME) + start_ticks / tick;
    } catch (const std::exception&) {
        return std::nullopt;
    }
    std::error_code ec;
    double fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
    p.open_fds = fds > 0 ? fds - 1 : 0;  // the iterator's own descriptor
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = static_cast<double>(lim.rlim_cur);
    return p;
}

std::vector<::prometheus::MetricFamily> ProcessCollector::Collect() const {
    using namespace agent::metrics;
    std::vector<::prometheus::MetricFamily> out;
    const auto p = read_process_figures();
    if (!p) return out;
    out.push_back(
        counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p->cpu_seconds));
    out.push_back(gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p->resident_bytes));
    out.push_back(gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p->virtual_bytes));
    out.push_back(gauge("process_open_fds", "Number of open file descriptors.", p->open_fds));
    out.push_back(gauge("process_max_fds", "Maximum number of open file descriptors.", p->max_fds));
    out.push_back(gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                        p->start_time_seconds));
    return out;
}

std::vector<::prometheus::MetricFamily> BuildInfoCollector::Collect() const {
    using namespace agent::metrics;
    auto f = gauge_family("hsmaudit_build_info",
                          "Always 1; the labels say which hsmaudit build is running (version, compiler, build type).");
    add(f, 1.0,
        {{"version", std::string(base::version())}, {"compiler", kCompiler}, {"build_type", HSMAUDIT_BUILD_TYPE}});
    return {std::move(f)};
}

}  // namespace hsmaudit::exporters::prometheus
