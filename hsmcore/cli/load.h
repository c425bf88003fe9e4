// `hsmcore load`: a client workload against a serving module, over its control socket.
//
// Thread-safety: run_load() owns its worker threads and joins them before returning.
#pragma once

#include <cstdint>
#include <map>
#include <stop_token>
#include <string>

#include "base/result.h"

namespace hsmaudit::hsmcore::cli {

struct LoadOptions {
    std::string dir;
    double rate = 1000;  // operations per second, all threads together (0: as fast as possible)
    double duration_s = 10;
    std::string mix = "sign=70,verify=10,encrypt=10,keygen=5,login=5";
    unsigned threads = 2;
    std::uint64_t seed = 1;
    std::string done_log;  // if set: "SEQ EVENT" for every record of an operation reported done
};

struct LoadStats {
    std::uint64_t ops = 0;      // operations attempted
    std::uint64_t done = 0;     // reported done
    std::uint64_t refused = 0;  // refused with log_full
    std::uint64_t errors = 0;   // any other error
    std::uint64_t lost = 0;     // threads that lost their connection
    double elapsed_s = 0;
    std::map<std::string, std::uint64_t> by_op;
    [[nodiscard]] double ops_per_s() const { return elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0; }
};

/// Parses "sign=70,verify=10,..." into weights (unknown names are an error naming them).
Result<std::map<std::string, unsigned>> parse_mix(const std::string& mix);

Result<LoadStats> run_load(const LoadOptions& options, std::stop_token stop);

}  // namespace hsmaudit::hsmcore::cli
