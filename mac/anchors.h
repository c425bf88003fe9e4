// Anchors: chain-head checkpoints held off the box (mac/checkpoint.h, docs/FORMAT.md sections 4
// and 7), read from files and matched against the trail by the offline verifier. A trail must
// contain each validly signed checkpoint's record with the checkpoint's MAC and must reach the
// newest one.
//
// Thread-safety: load_anchor_files() and check_anchors() are reentrant; one call uses one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mac/checkpoint.h"
#include "mac/keys.h"
#include "mac/verifier.h"

namespace hsmaudit::mac {

/// Reads the checkpoints of each file (the agent's checkpoints.log, or a SIEM export with
/// `@checkpoint` lines embedded in other records) into options.anchors. An error (a usage or I/O
/// problem) for a file that cannot be read or holds no checkpoint at all.
Status load_anchor_files(const std::vector<std::string>& files, VerifyOptions& options);

/// Called for each record of the trail: the file it is in, its sequence number, MAC and line.
using AnchorRecordObserver =
    std::function<void(std::string_view file, std::uint64_t seq, const Mac& mac, std::uint64_t line)>;

/// Checks options.anchors of chain `chain` against the trail that `verify` reads: `verify` is run
/// once with an observer to pass every record to (empty without anchors). Faults go to `sink`;
/// counts and the matched checkpoints to `report`. Returns what `verify` returns.
Status check_anchors(const VerifyOptions& options, const ChainId& chain, VerifyReport& report,
                     const std::function<void(Fault&&)>& sink,
                     const std::function<Status(const AnchorRecordObserver&)>& verify);

}  // namespace hsmaudit::mac
