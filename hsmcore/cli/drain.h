// `hsmcore drain`: a minimal reader of the ring. It writes entries out as segment files
// hsm_<serial>_<epoch>.log, fsyncs them, records its position in OUT/.drain.state and only then
// acknowledges; it asks the module to seal every N records. The agent (hsmauditd) is the real drain.
//
// Thread-safety: run_drain() is single-threaded.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "base/result.h"

namespace hsmaudit::hsmcore::cli {

struct DrainOptions {
    std::string dir;
    std::string out;
    bool follow = false;
    std::uint64_t seal_every = 10000;  // records per segment (0: never ask for a seal)
    bool seal_at_end = false;          // when caught up, seal and stop before the next open entry: every file sealed
    std::size_t batch = 4096;
};

struct DrainStats {
    std::uint64_t entries = 0;
    std::uint64_t records = 0;
    std::uint64_t seals = 0;
    std::uint64_t files = 0;
    std::uint64_t acked_through = 0;
};

Result<DrainStats> run_drain(const DrainOptions& options, const std::stop_token& stop);

}  // namespace hsmaudit::hsmcore::cli
