#include "agent/daemon/embedded_workload.h"

#include <chrono>

#include "agent/api/errc.h"
#include "agent/api/thread_guard.h"
#include "hsmcore/errc.h"
#include "mac/record.h"

namespace hsmaudit::agent {

Result<WorkloadMix> parse_workload_mix(std::string_view text) {
    WorkloadMix m{0, 0, 0, 0, 0};
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        const auto eq = item.find('=');
        std::uint64_t v = 0;
        if (eq == std::string_view::npos || !mac::parse_u64(item.substr(eq + 1), v) || v > 1000)
            return make_error(errc::config_error, "workload mix item '" + std::string(item) + "' is not name=weight");
        const std::string_view name = item.substr(0, eq);
        const auto w = static_cast<unsigned>(v);
        if (name == "sign")
            m.sign = w;
        else if (name == "verify")
            m.verify = w;
        else if (name == "encrypt")
            m.encrypt = w;
        else if (name == "keygen")
            m.keygen = w;
        else if (name == "login")
            m.login = w;
        else
            return make_error(errc::config_error, "unknown workload operation '" + std::string(name) +
                                                      "' (sign, verify, encrypt, keygen, login)");
    }
    if (m.sign + m.verify + m.encrypt + m.keygen + m.login == 0)
        return make_error(errc::config_error, "the workload mix has no operation");
    return m;
}

EmbeddedWorkload::EmbeddedWorkload(hsmcore::module::Module& module, std::string module_dir, unsigned rate,
                                   WorkloadMix mix)
    : module_(module), dir_(std::move(module_dir)), rate_(rate), mix_(mix) {}

EmbeddedWorkload::~EmbeddedWorkload() {
    stop();
}

Status EmbeddedWorkload::prepare() {
    auto pins = hsmcore::module::load_client_pins(dir_);
    if (!pins) return std::move(pins).error();
    auto it = pins->find({"CO", 1});
    if (it == pins->end()) return make_error(errc::config_error, dir_ + "/client.pins has no Crypto Officer PIN");
    co_pin_ = it->second;
    auto s = module_.open_session(1);
    if (!s) return std::move(s).error();
    session_ = s->handle;
    auto l = module_.login(session_, hsmcore::module::Role::co, co_pin_);
    if (!l) return std::move(l).error();
    auto k = module_.generate_key(session_, hsmcore::module::KeyAlg::ec_p256, "workload signing key");
    if (!k) return std::move(k).error();
    sign_key_ = k->handle;
    auto a = module_.generate_key(session_, hsmcore::module::KeyAlg::aes256, "workload data key");
    if (!a) return std::move(a).error();
    aes_key_ = a->handle;
    auto sig = module_.sign(session_, sign_key_, "hsmaudit workload");
    if (!sig) return std::move(sig).error();
    signature_ = sig->data;
    return {};
}

Status EmbeddedWorkload::start() {
    if (rate_ == 0) return {};
    HSMAUDIT_TRY(prepare());
    thread_ = std::jthread([this](std::stop_token st) { run(st); });
    return {};
}

void EmbeddedWorkload::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

WorkloadStats EmbeddedWorkload::stats() const {
    return WorkloadStats{ops_.load(), refused_.load(), errors_.load()};
}

void EmbeddedWorkload::one_op(std::uint64_t n) {
    const unsigned total = mix_.sign + mix_.verify + mix_.encrypt + mix_.keygen + mix_.login;
    // A fixed, interleaved pattern (n * a large odd constant) spreads the kinds evenly.
    unsigned pick = static_cast<unsigned>((n * 2654435761ULL) % total);
    Result<hsmcore::module::Reply> r = hsmcore::module::Reply{};
    if (pick < mix_.sign) {
        r = module_.sign(session_, sign_key_, "payload " + std::to_string(n));
    } else if ((pick -= mix_.sign) < mix_.verify) {
        r = module_.verify(session_, sign_key_, "hsmaudit workload", signature_);
    } else if ((pick -= mix_.verify) < mix_.encrypt) {
        r = module_.encrypt(session_, aes_key_, "payload " + std::to_string(n));
    } else if ((pick -= mix_.encrypt) < mix_.keygen) {
        r = module_.generate_key(session_, hsmcore::module::KeyAlg::ec_p256, "workload key");
        if (r) (void)module_.destroy_object(session_, r->handle);
    } else {
        r = module_.logout(session_);
        if (r) r = module_.login(session_, hsmcore::module::Role::co, co_pin_);
    }
    ++ops_;
    if (!r) {
        if (r.error().code == hsmcore::errc::log_full)
            ++refused_;
        else
            ++errors_;
    }
}

void EmbeddedWorkload::run(std::stop_token stop) {
    // Last resort: an exception (out of memory in the module emulator) stops the workload, never
    // the agent. No AlertSink here: it is logged critical and counted as an error.
    const bool ok = detail::run_guarded("embedded workload", [&] {
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        std::uint64_t done = 0;
        while (!stop.stop_requested()) {
            const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
            const auto due = static_cast<std::uint64_t>(elapsed * rate_);
            // Catch up at most one second of work at a time, so a stall is not followed by a storm.
            const std::uint64_t limit = std::min<std::uint64_t>(due, done + rate_);
            while (done < limit && !stop.stop_requested()) one_op(done++);
            if (due > done + rate_) done = due - rate_;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    if (!ok) ++errors_;
}

}  // namespace hsmaudit::agent
