// Issue 17's "Done when" for the intake, against the real hsmauditd as a process (so its peak RSS,
// VmHWM, is its own): with 200 idle TCP connections open and 8 connections flooding 64 KiB lines
// of invalid UTF-8 (each bad byte becomes 4 bytes of JSON, twice: msg and raw), a normal sender's
// messages all arrive in the spool, the agent's peak RSS stays under 128 MiB, and authorised
// scrapes of /metrics keep answering. Before issue 17: 64 idle connections locked every sender
// out, the flood drove RSS to 534-610 MB, and two idle connections to the metrics port timed
// every scrape out.
//
// The figures (peak RSS, the normal messages' latency from send to spool line, scrape latencies,
// the spool's full spells, bytes flooded) are printed as
// one line "FIGURES {json}"; bench/agent/intake_flood.py runs this test for docs/BENCHMARKS.md.
// HSMAUDIT_FLOOD_SECONDS sets how long the normal sender sends while the flood runs (default 6).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "base/unique_fd.h"
#include "daemon_harness.h"
#include "exporters/prometheus/basic_auth.h"

namespace {

using namespace hsmaudit::testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kIdle = 200;
constexpr int kFlooders = 8;
constexpr std::size_t kFloodLine = std::size_t{64} * 1024;
constexpr std::uint64_t kRssLimit = 128ULL << 20;
constexpr auto kScrapeBound = 5s;  // metrics.request_timeout (2 s) plus slack for a loaded machine

/// A blocking TCP connection to 127.0.0.1:port with send and receive timeouts (so no thread can hang).
int connect_to(int port, std::chrono::milliseconds timeout = 2s) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// Sends all of `data` unless a send times out or fails (the flood's connections are held back by
/// the agent's full spool: a timeout there is expected, and the loop checks whether to stop).
bool send_all(int fd, std::string_view data, const std::atomic<bool>* stop = nullptr) {
    while (!data.empty()) {
        const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && stop != nullptr && !stop->load())
            continue;
        return false;
    }
    return true;
}

std::string base64(const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

struct Scrape {
    int status = 0;
    double seconds = 0;
    std::string body;
};

/// One GET /metrics with basic auth over a fresh connection (the endpoint has no keep-alive).
Scrape scrape(int port, const std::string& auth) {
    Scrape s;
    const auto t0 = Clock::now();
    const int fd = connect_to(port, 15s);
    if (fd >= 0) {
        const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic " + auth +
                                "\r\nConnection: close\r\n\r\n";
        std::string resp;
        if (send_all(fd, req)) {
            char buf[65536];
            for (;;) {
                const auto n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                resp.append(buf, static_cast<std::size_t>(n));
            }
        }
        ::close(fd);
        if (resp.starts_with("HTTP/1.1 ")) s.status = std::atoi(resp.c_str() + 9);
        const auto body = resp.find("\r\n\r\n");
        if (body != std::string::npos) s.body = resp.substr(body + 4);
    }
    s.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return s;
}

/// A sample's value from a scrape ("name{labels} value" or "name value"); -1 if absent.
double sample(const std::string& body, const std::string& name) {
    const auto at = body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::atof(body.c_str() + at + name.size() + 2);
}

/// The bytes of `path` from `offset` on ("" if it cannot be read).
std::string read_from(const std::string& path, std::uintmax_t offset) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// "2026-12-04T12:00:00.123Z" (a spool line's time) in Unix milliseconds; 0 if it is not one.
std::int64_t parse_time_ms(const std::string& t) {
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(std::lround(q * static_cast<double>(v.size() - 1))))];
}

std::uint64_t vm_kib(pid_t pid, const std::string& field) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(field + ":")) return std::stoull(line.substr(field.size() + 1));
    return 0;
}

TEST(IntakeFlood, NormalSenderArrivesRssBoundedScrapesAnswer) {
    ASSERT_TRUE(fs::exists(kHsmauditd)) << kHsmauditd << " is not built";
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    const char* env = std::getenv("HSMAUDIT_FLOOD_SECONDS");
    const int seconds = env != nullptr ? std::max(1, std::atoi(env)) : 6;
    // HSMAUDIT_FLOOD_QUEUE_BYTES: another syslog.spool_queue_bytes (e.g. 1GiB, to see what the
    // bound buys: bench/agent/intake_flood.py --queue-bytes).
    const char* queue = std::getenv("HSMAUDIT_FLOOD_QUEUE_BYTES");
    spit(dir / "web.yml",
         "basic_auth_users:\n  prometheus: '" + hsmaudit::exporters::prometheus::bcrypt_hash("s3cret", 4) + "'\n");
    fs::permissions(dir / "web.yml", fs::perms::owner_read | fs::perms::owner_write);
    // As shipped: the embedded module with a workload, records encrypted at rest, the spool's
    // defaults (16 MiB queue, 256 connections, 10 min idle timeout, 8 metrics threads).
    spit(dir / "hsmauditd.yaml",
         "agent:\n  state_dir: " + (dir / "state") + "\nmodule:\n  mode: embedded\n  dir: " + (dir / "module") +
             "\n  ring_size: 1MiB\n  workload:\n    rate: 200\n"
             "syslog:\n  listen: tcp:127.0.0.1:0\n" +
             (queue != nullptr ? "  spool_queue_bytes: " + std::string(queue) + "\n" : "") +
             "metrics:\n  enabled: true\n  listen: 127.0.0.1:0\n  web_config: " + (dir / "web.yml") + "\n");
    Daemon daemon(dir / "hsmauditd.yaml", dir / "hsmauditd.log", "", 0);
    int syslog_port = 0, metrics_port = 0;
    ASSERT_TRUE(eventually([&] {
        const std::string log = daemon.log();
        std::smatch m;
        if (std::regex_search(log, m, std::regex(R"(receiving syslog on tcp:127\.0\.0\.1:0 \(port (\d+)\))")))
            syslog_port = std::stoi(m[1]);
        if (std::regex_search(log, m, std::regex(R"(serving metrics on 127\.0\.0\.1:0 \(port (\d+)\))")))
            metrics_port = std::stoi(m[1]);
        return syslog_port != 0 && metrics_port != 0;
    })) << daemon.log();
    const std::string auth = base64("prometheus:s3cret");
    ASSERT_EQ(scrape(metrics_port, auth).status, 200);
    const std::uint64_t rss_before = vm_kib(daemon.pid(), "VmRSS");

    // 200 idle connections, then 2 idle ones to the metrics port (2 workers' worth, the old starvation).
    std::vector<hsmaudit::UniqueFd> idle;
    for (int i = 0; i < kIdle; ++i) {
        const int fd = connect_to(syslog_port);
        ASSERT_GE(fd, 0) << "idle connection " << i;
        idle.emplace_back(fd);
    }
    for (int i = 0; i < 2; ++i) idle.emplace_back(connect_to(metrics_port));

    // The flood: 8 connections, each sending 64 KiB lines of bytes 0x80-0xff (never valid UTF-8).
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> flooded{0};
    std::vector<std::thread> flood;
    flood.reserve(kFlooders);
    for (int i = 0; i < kFlooders; ++i) {
        flood.emplace_back([&, i] {
            std::mt19937 rng(static_cast<unsigned>(i));
            std::string line(kFloodLine, '\0');
            for (char& c : line) c = static_cast<char>(0x80 | (rng() & 0x7f));
            line.back() = '\n';
            const int fd = connect_to(syslog_port, 500ms);
            if (fd < 0) return;
            while (!stop.load() && send_all(fd, line, &stop)) flooded.fetch_add(line.size());
            ::close(fd);
        });
    }
    // Scrapes once a second throughout.
    std::vector<Scrape> scrapes;
    std::thread scraper([&] {
        while (!stop.load()) {
            const auto t0 = Clock::now();
            scrapes.push_back(scrape(metrics_port, auth));
            std::this_thread::sleep_until(t0 + 1s);
        }
    });

    // The normal sender: a new connection after all of that, 50 messages a second. (No ASSERT
    // until the threads are joined.)
    const int count = seconds * 50;
    std::string sender_error;
    {
        const int normal = connect_to(syslog_port, 20s);
        const auto t_start = Clock::now();
        for (int i = 0; i < count && normal >= 0; ++i) {
            char msg[128];
            (void)std::snprintf(msg, sizeof msg,
                                "<13>1 2026-12-04T12:00:00Z appliance app - - - normal-sender %06d %lld\n", i,
                                static_cast<long long>(wall_ms()));
            if (!send_all(normal, msg)) {
                sender_error = "message " + std::to_string(i) + ": " + std::strerror(errno);
                break;
            }
            std::this_thread::sleep_until(t_start + std::chrono::milliseconds(20 * (i + 1)));
        }
        if (normal < 0) sender_error = "cannot connect";
        if (normal >= 0) ::close(normal);
    }

    // Every normal message is in the spool, while the flood still runs. Each file is read on from
    // the end of the last complete line seen. A message's latency: the time its spool line got
    // (when the writer took it from the queue) less the send time it carries.
    std::set<int> seen;
    std::vector<double> latency_s;
    std::map<std::string, std::uintmax_t> searched;
    auto scan = [&] {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir / "state/syslog/spool", ec)) {
            const std::string path = e.path().string();
            const std::uintmax_t from = searched[path];
            std::string text = read_from(path, from);
            const auto complete = text.rfind('\n');
            if (complete == std::string::npos) continue;
            text.resize(complete + 1);
            for (std::size_t at = 0; (at = text.find("normal-sender ", at)) != std::string::npos; ++at) {
                const int id = std::atoi(text.c_str() + at + 14);
                if (!seen.insert(id).second) continue;
                const auto line = text.rfind('\n', at);
                const auto time_at = text.find(' ', line == std::string::npos ? 0 : line + 1);
                const long long sent = std::atoll(text.c_str() + at + 21);
                if (time_at != std::string::npos) {
                    const std::int64_t spooled = parse_time_ms(text.substr(time_at + 1, 24));
                    if (spooled > 0) latency_s.push_back(static_cast<double>(spooled - sent) / 1000.0);
                }
            }
            searched[path] = from + text.size();
        }
        return seen.size() == static_cast<std::size_t>(count);
    };
    const auto sent_all = Clock::now();
    const bool arrived = sender_error.empty() && eventually(scan, 120s);
    const double arrival_wait = std::chrono::duration<double>(Clock::now() - sent_all).count();
    stop = true;
    for (auto& t : flood) t.join();
    scraper.join();
    ASSERT_TRUE(sender_error.empty()) << sender_error;
    const Scrape last = scrape(metrics_port, auth);
    const std::uint64_t hwm = vm_kib(daemon.pid(), "VmHWM");
    ASSERT_TRUE(daemon.signal(SIGTERM));
    const auto exit_code = daemon.wait_exit(60s);

    double worst = 0;
    int answered = 0;
    for (const auto& s : scrapes) {
        worst = std::max(worst, s.seconds);
        answered += s.status == 200 ? 1 : 0;
    }
    const nlohmann::json figures = {
        {"seconds", seconds},
        {"normal_messages", count},
        {"normal_arrived", seen.size()},
        {"arrival_wait_s", arrival_wait},  // from the last normal send until the test saw all in the spool
        {"normal_latency_p50_s", percentile(latency_s, 0.5)},
        {"normal_latency_max_s", percentile(latency_s, 1.0)},
        {"flooded_mib", static_cast<double>(flooded.load()) / (1 << 20)},
        {"rss_before_mib", static_cast<double>(rss_before) / 1024},
        {"vm_hwm_mib", static_cast<double>(hwm) / 1024},
        {"scrapes", scrapes.size()},
        {"scrapes_answered", answered},
        {"scrape_worst_s", worst},
        {"spool_full_spells", sample(last.body, "hsmaudit_syslog_spool_full_spells_total")},
        {"spool_dropped", sample(last.body, "hsmaudit_syslog_spool_dropped_total")},
        {"connections_rejected", sample(last.body, "hsmaudit_syslog_connections_rejected_total{listener=\"all\"}")},
        {"connections_open", sample(last.body, "hsmaudit_syslog_connections_open{listener=\"all\"}")},
    };
    std::printf("FIGURES %s\n", figures.dump().c_str());

    EXPECT_TRUE(arrived) << seen.size() << " of " << count << " normal messages in the spool\n" << figures.dump();
    EXPECT_LT(hwm * 1024, kRssLimit) << figures.dump();
    // Fair reading: the normal sender is not served only after the flood (before the listener's
    // rounds rotated their start, its messages waited 8-14 s behind the flood connections).
    EXPECT_LT(percentile(latency_s, 1.0), 5.0) << figures.dump();
    EXPECT_GE(scrapes.size(), static_cast<std::size_t>(seconds / 2)) << figures.dump();
    EXPECT_EQ(answered, static_cast<int>(scrapes.size())) << figures.dump();
    EXPECT_LT(worst, std::chrono::duration<double>(kScrapeBound).count()) << figures.dump();
    EXPECT_EQ(last.status, 200);
    EXPECT_EQ(sample(last.body, "hsmaudit_syslog_connections_rejected_total{listener=\"all\"}"), 0) << figures.dump();
    EXPECT_EQ(exit_code, std::optional<int>(0)) << daemon.log();
}

}  // namespace
