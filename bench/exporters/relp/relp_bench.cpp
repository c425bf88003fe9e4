// relp_bench: the hsmaudit side of the RELP/TLS figure (bench/exporters/relp/relp_vs_rsyslog.py).
//
//   relp_bench send --target H:P --ca F --cert F --key F --peer NAME [--count N] [--window W]
//       delivers N synthetic audit records through a real ExportRunner and RelpExporter in the
//       exporter's shipped configuration (RelpOptions' defaults; --window overrides the window, a
//       non-default configuration), and prints once every record is acknowledged:
//       "records=N seconds=S records_per_second=R failures=F cpu_seconds=C generation_cpu_seconds=G"
//       where C is the process's user+sys CPU time (getrusage(RUSAGE_SELF): every thread, from
//       start-up to the last acknowledgement, TLS handshake included) and G the part of it spent
//       generating the synthetic records (the runner thread's CPU time inside EventSource::read,
//       CLOCK_THREAD_CPUTIME_ID): C - G is what delivery costs.
//   relp_bench lines --count N --out FILE
//       writes the same N records, rendered exactly as `send` renders them (RFC 5424), one per line:
//       the input rsyslog forwards for the comparison.
#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "agent/engine/export/runner.h"
#include "exporters/common/host_port.h"
#include "exporters/formats/formatter.h"
#include "exporters/relp/relp_exporter.h"

namespace {

using namespace hsmaudit;

agent::Event make_event(std::uint64_t seq) {
    agent::Event e;
    e.stream = agent::Stream::audit;
    e.position = seq;
    e.serial = "150123";
    e.host = "hsm1.example";
    e.time_ms = 1'760'000'000'000 + static_cast<std::int64_t>(seq);
    e.record.seq = seq;
    e.record.time_ms = e.time_ms;
    e.record.serial = e.serial;
    e.record.boot = 7;
    e.record.partition = 1;
    e.record.role = "CU";
    e.record.session = 42;
    e.record.event = "LUNA_SIGN";
    e.record.event_class = "usage";
    e.mac_hex = std::string(64, 'a');
    e.event_id = agent::make_event_id(e);
    return e;
}

class Source final : public agent::EventSource {
public:
    explicit Source(std::uint64_t n) : n_(n) {}
    Result<std::size_t> read(agent::Stream s, std::uint64_t after, std::size_t max,
                             std::vector<agent::Event>& out) override {
        if (s != agent::Stream::audit) return std::size_t{0};
        const double t0 = thread_cpu();
        std::size_t k = 0;
        for (std::uint64_t q = after + 1; q <= n_ && k < max; ++q, ++k) out.push_back(make_event(q));
        generation_cpu_.store(generation_cpu_.load() + thread_cpu() - t0);
        return k;
    }
    Result<std::uint64_t> newest(agent::Stream s) override { return s == agent::Stream::audit ? n_ : 0; }
    Result<std::uint64_t> before_oldest(agent::Stream) override { return std::uint64_t{0}; }

    /// CPU seconds spent generating records (written by the runner thread, read after it stopped).
    [[nodiscard]] double generation_cpu() const { return generation_cpu_.load(); }

private:
    static double thread_cpu() {
        timespec ts{};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
    }
    std::uint64_t n_;
    std::atomic<double> generation_cpu_{0.0};
};

double process_cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}

class NoAlerts final : public agent::AlertSink {
public:
    void alert(agent::Alert&& a) override { std::cerr << "alert: " << a.kind << ": " << a.message << "\n"; }
};

int usage() {
    std::cerr << "usage: relp_bench send --target H:P --ca F --cert F --key F --peer NAME [--count N] [--window W]\n"
                 "       relp_bench lines --count N --out FILE\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    std::string target, ca, cert, key, peer, out;
    std::uint64_t count = 200'000;
    int window = 0;  // 0: RelpOptions' default
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--target")
            target = v;
        else if (k == "--ca")
            ca = v;
        else if (k == "--cert")
            cert = v;
        else if (k == "--key")
            key = v;
        else if (k == "--peer")
            peer = v;
        else if (k == "--out")
            out = v;
        else if (k == "--count")
            count = std::stoull(v);
        else if (k == "--window")
            window = std::stoi(v);
        else
            return usage();
    }
    auto formatter = exporters::formats::make_formatter(exporters::formats::FormatOptions{});
    if (mode == "lines") {
        std::ofstream f(out, std::ios::binary | std::ios::trunc);
        std::string line;
        for (std::uint64_t s = 1; s <= count; ++s) {
            line.clear();
            formatter->format(make_event(s), line);
            f << line << '\n';
        }
        return f ? 0 : 1;
    }
    if (mode != "send") return usage();
    auto t = exporters::common::parse_host_port(target, "--target");
    if (!t) {
        std::cerr << t.error().describe() << "\n";
        return 2;
    }
    exporters::relp::RelpOptions o;
    o.host = t->first;
    o.port = t->second;
    o.ca = ca;
    o.cert = cert;
    o.key = key;
    o.permitted_peers = {peer};
    if (window > 0) o.window = window;
    agent::RunnerOptions ro;
    ro.name = "bench";
    ro.streams = {true, false, false, false};
    NoAlerts alerts;
    auto now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
    auto source = std::make_unique<Source>(count);
    const Source* source_view = source.get();
    auto runner =
        agent::ExportRunner::open(ro, std::make_unique<exporters::relp::RelpExporter>(o, std::move(formatter)),
                                  std::move(source), alerts, now_ms);
    if (!runner) {
        std::cerr << runner.error().describe() << "\n";
        return 1;
    }
    const auto start = std::chrono::steady_clock::now();
    (*runner)->start();
    const auto deadline = start + std::chrono::minutes(5);
    while ((*runner)->delivered_through(agent::Stream::audit) < count && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // <= 5 ms late; few wake-ups in cpu_seconds
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = process_cpu_seconds();
    (*runner)->stop();
    const auto stats = (*runner)->stats();
    if (stats.cursor[0] < count) {
        std::cerr << "incomplete: " << stats.cursor[0] << " of " << count << ": " << stats.last_error << "\n";
        return 1;
    }
    std::printf(
        "records=%llu seconds=%.3f records_per_second=%.0f failures=%llu cpu_seconds=%.3f "
        "generation_cpu_seconds=%.3f\n",
        static_cast<unsigned long long>(count), seconds, static_cast<double>(count) / seconds,
        static_cast<unsigned long long>(stats.failures), cpu, source_view->generation_cpu());
    return 0;
}
