// EmbeddedWorkload: the built-in client of the embedded default. It drives the in-process module
// at a steady rate with a mix of real operations (sign, verify, encrypt, key generation, login),
// so the whole flow (module -> ring -> agent -> store) runs with nothing else installed.
//
// Thread-safety: start()/stop() from the owner; stats() from any thread. Owns one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "base/result.h"
#include "hsmcore/module/module.h"

namespace hsmaudit::agent {

struct WorkloadMix {
    unsigned sign = 70, verify = 10, encrypt = 10, keygen = 5, login = 5;
};
/// Parses "sign=70,verify=10,encrypt=10,keygen=5,login=5" (any subset; others 0).
Result<WorkloadMix> parse_workload_mix(std::string_view text);

struct WorkloadStats {
    std::uint64_t ops = 0;
    std::uint64_t refused = 0;  // refused with LOG_FULL: the module was blocked
    std::uint64_t errors = 0;
};

class EmbeddedWorkload {
public:
    EmbeddedWorkload(hsmcore::module::Module& module, std::string module_dir, unsigned rate, WorkloadMix mix);
    ~EmbeddedWorkload();
    EmbeddedWorkload(const EmbeddedWorkload&) = delete;
    EmbeddedWorkload& operator=(const EmbeddedWorkload&) = delete;

    /// Logs in (PINs from the module's client.pins), creates its keys and starts the thread.
    Status start();
    void stop();
    [[nodiscard]] WorkloadStats stats() const;

private:
    Status prepare();
    void run(std::stop_token stop);
    void one_op(std::uint64_t n);

    hsmcore::module::Module& module_;
    std::string dir_;
    unsigned rate_;
    WorkloadMix mix_;
    std::uint64_t session_ = 0;
    std::uint64_t sign_key_ = 0;
    std::uint64_t aes_key_ = 0;
    std::string co_pin_;
    std::string signature_;
    std::atomic<std::uint64_t> ops_{0}, refused_{0}, errors_{0};
    std::jthread thread_;
};

}  // namespace hsmaudit::agent
