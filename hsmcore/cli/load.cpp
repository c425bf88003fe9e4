#include "hsmcore/cli/load.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "hsmcore/errc.h"
#include "hsmcore/host/control_protocol.h"
#include "hsmcore/host/module_host.h"
#include "hsmcore/module/module.h"
#include "mac/crypto.h"

namespace hsmaudit::hsmcore::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kOps[] = {"sign", "verify", "encrypt", "keygen", "login"};

struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

struct Worker {
    LoadStats stats;
    std::vector<std::pair<std::uint64_t, std::string>> done;  // (seq, event)
};

std::string hex_of(std::uint64_t a, std::size_t bytes) {
    std::string raw(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i) raw[i] = static_cast<char>((a >> ((i % 8) * 8)) ^ i);
    return mac::hex_encode(mac::as_bytes(raw));
}

class Session {
public:
    Session(host::ControlClient& c, Worker& w, bool track) : c_(c), w_(w), track_(track) {}
    /// One request; records its seq as done if OK. Returns the reply, or the error.
    Result<host::ReplyFields> call(const std::string& req, const char* event) {
        auto r = c_.call(req);
        if (r && track_ && r->get_u64("seq") != 0) w_.done.emplace_back(r->get_u64("seq"), event);
        return r;
    }

private:
    host::ControlClient& c_;
    Worker& w_;
    bool track_;
};

void worker(const LoadOptions& opt, const std::map<std::string, unsigned>& mix, const std::string& pin_co,
            const std::string& pin_cu, unsigned index, Clock::time_point deadline, std::stop_token stop, Worker& w) {
    auto client = host::ControlClient::connect((std::filesystem::path(opt.dir) / host::kControlSocket).string());
    if (!client) {
        ++w.stats.lost;
        return;
    }
    Session s(*client, w, !opt.done_log.empty());
    Rng rng{opt.seed * 1000003 + index};
    auto classify = [&](const Error& e) {
        if (e.code == errc::log_full)
            ++w.stats.refused;
        else
            ++w.stats.errors;
        return e.code != errc::unavailable;
    };
    // Setup: a CO session with an EC key (sign/verify) and an AES key (encrypt); a side session for
    // the login operation. Retried while the module refuses (log full) until the deadline.
    std::uint64_t session = 0;
    std::uint64_t side = 0;
    std::uint64_t ec = 0;
    std::uint64_t aes = 0;
    std::string sig_data = hex_of(index, 32);
    std::string sig;
    for (;;) {
        if (Clock::now() >= deadline || stop.stop_requested()) return;
        auto step = [&]() -> Status {
            if (session == 0) {
                auto o = s.call("OPEN 1", "LUNA_OPEN_SESSION");
                if (!o) return std::move(o).error();
                session = o->get_u64("handle");
                auto l = s.call("LOGIN " + std::to_string(session) + " CO " + pin_co, "LUNA_LOGIN");
                if (!l) return std::move(l).error();
                auto o2 = s.call("OPEN 1", "LUNA_OPEN_SESSION");
                if (!o2) return std::move(o2).error();
                side = o2->get_u64("handle");
            }
            if (ec == 0) {
                auto k = s.call("GENKEY " + std::to_string(session) + " EC-P256 load-sign", "LUNA_GENERATE_KEY_PAIR");
                if (!k) return std::move(k).error();
                ec = k->get_u64("handle");
            }
            if (aes == 0) {
                auto k = s.call("GENKEY " + std::to_string(session) + " AES-256 load-enc", "LUNA_GENERATE_KEY");
                if (!k) return std::move(k).error();
                aes = k->get_u64("handle");
            }
            auto g = s.call("SIGN " + std::to_string(session) + " " + std::to_string(ec) + " " + sig_data, "LUNA_SIGN");
            if (!g) return std::move(g).error();
            sig = std::string(g->get("data"));
            return {};
        };
        auto st = step();
        if (st) break;
        if (!classify(st.error())) {
            ++w.stats.lost;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    unsigned total = 0;
    for (const auto& [k, v] : mix) total += v;
    const double per_thread = opt.rate > 0 ? opt.rate / opt.threads : 0;
    const auto interval =
        per_thread > 0 ? std::chrono::duration<double>(1.0 / per_thread) : std::chrono::duration<double>(0);
    auto next = Clock::now();
    const std::string ss = std::to_string(session);
    while (!stop.stop_requested()) {
        if (per_thread > 0) {
            next += std::chrono::duration_cast<Clock::duration>(interval);
            const auto now = Clock::now();
            if (next > now)
                std::this_thread::sleep_until(next);
            else if (now - next > std::chrono::milliseconds(200))
                next = now;  // do not burst after a stall
        }
        if (Clock::now() >= deadline) break;
        unsigned pick = static_cast<unsigned>(rng.next() % total);
        std::string op;
        for (const auto& [k, v] : mix) {
            if (pick < v) {
                op = k;
                break;
            }
            pick -= v;
        }
        ++w.stats.ops;
        ++w.stats.by_op[op];
        Status st;
        if (op == "sign") {
            auto r = s.call("SIGN " + ss + " " + std::to_string(ec) + " " + hex_of(rng.next(), 32), "LUNA_SIGN");
            if (!r) st = std::move(r).error();
        } else if (op == "verify") {
            auto r = s.call("VERIFY " + ss + " " + std::to_string(ec) + " " + sig_data + " " + sig, "LUNA_VERIFY");
            if (!r) st = std::move(r).error();
        } else if (op == "encrypt") {
            auto r = s.call("ENCRYPT " + ss + " " + std::to_string(aes) + " " + hex_of(rng.next(), 64), "LUNA_ENCRYPT");
            if (!r) st = std::move(r).error();
        } else if (op == "keygen") {
            auto r = s.call("GENKEY " + ss + " EC-P256 tmp", "LUNA_GENERATE_KEY_PAIR");
            if (!r) {
                st = std::move(r).error();
            } else {
                auto d = s.call("DESTROY " + ss + " " + std::to_string(r->get_u64("handle")), "LUNA_DESTROY_OBJECT");
                if (!d) st = std::move(d).error();
            }
        } else {
            auto r = s.call("LOGIN " + std::to_string(side) + " CU " + pin_cu, "LUNA_LOGIN");
            if (!r) {
                st = std::move(r).error();
            } else {
                auto o = s.call("LOGOUT " + std::to_string(side), "LUNA_LOGOUT");
                if (!o) st = std::move(o).error();
            }
        }
        if (st) {
            ++w.stats.done;
        } else if (!classify(st.error())) {
            ++w.stats.lost;
            return;
        }
    }
}

}  // namespace

Result<std::map<std::string, unsigned>> parse_mix(const std::string& mix) {
    std::map<std::string, unsigned> out;
    std::string_view rest = mix;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        const auto eq = item.find('=');
        std::uint64_t w = 0;
        if (eq == std::string_view::npos || !mac::parse_u64(item.substr(eq + 1), w) || w > 1000000)
            return make_error(errc::invalid_argument, "--mix: '" + std::string(item) + "' is not NAME=WEIGHT");
        const std::string name(item.substr(0, eq));
        bool known = false;
        for (const char* k : kOps) known = known || name == k;
        if (!known)
            return make_error(errc::invalid_argument,
                              "--mix: unknown operation '" + name + "' (sign, verify, encrypt, keygen, login)");
        if (w > 0) out[name] = static_cast<unsigned>(w);
    }
    if (out.empty()) return make_error(errc::invalid_argument, "--mix: no operation has a positive weight");
    return out;
}

Result<LoadStats> run_load(const LoadOptions& opt, std::stop_token stop) {
    auto mix = parse_mix(opt.mix);
    if (!mix) return std::move(mix).error();
    if (opt.threads == 0 || opt.threads > 256) return make_error(errc::invalid_argument, "--threads must be 1-256");
    if (opt.rate < 0 || opt.duration_s <= 0)
        return make_error(errc::invalid_argument, "--rate/--duration out of range");
    auto pins = module::load_client_pins(opt.dir);
    if (!pins) return std::move(pins).error();
    auto co = pins->find({"CO", 1});
    auto cu = pins->find({"CU", 1});
    if (co == pins->end() || cu == pins->end())
        return make_error(errc::not_found, opt.dir + "/client.pins has no CO or CU PIN for partition 1");
    // Fail early and clearly if nothing serves the module.
    auto probe = host::ControlClient::connect((std::filesystem::path(opt.dir) / host::kControlSocket).string());
    if (!probe) return std::move(probe).error();

    std::vector<Worker> workers(opt.threads);
    const auto start = Clock::now();
    const auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.duration_s));
    {
        std::vector<std::jthread> threads;
        for (unsigned i = 0; i < opt.threads; ++i)
            threads.emplace_back([&, i] { worker(opt, *mix, co->second, cu->second, i, deadline, stop, workers[i]); });
    }
    LoadStats total;
    total.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    for (const auto& w : workers) {
        total.ops += w.stats.ops;
        total.done += w.stats.done;
        total.refused += w.stats.refused;
        total.errors += w.stats.errors;
        total.lost += w.stats.lost;
        for (const auto& [k, v] : w.stats.by_op) total.by_op[k] += v;
    }
    if (!opt.done_log.empty()) {
        std::ofstream f(opt.done_log, std::ios::trunc);
        for (const auto& w : workers)
            for (const auto& [seq, ev] : w.done) f << seq << ' ' << ev << '\n';
        f.flush();
        if (!f) return make_error(errc::io_error, "cannot write " + opt.done_log);
    }
    return total;
}

}  // namespace hsmaudit::hsmcore::cli
