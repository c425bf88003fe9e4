// The `hsmaudit status`, `tail` and `fsck` commands as the CLI runs them: argument checks, key
// loading, output on stdout (errors on stderr) and the exit code (0 ok, 1 fault, 2 usage or I/O).
//
// Thread-safety: each function runs on the caller's thread; run_tail with follow loops until
// the process is stopped.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/config/config.h"
#include "base/result.h"
#include "mac/keys.h"

namespace hsmaudit::agent::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFault = 1;
inline constexpr int kExitUsage = 2;

/// Where a command finds the agent's files (exactly one of state_dir and config).
struct StoreArgs {
    std::string state_dir;
    std::string config;
    std::string key;  // audit.key; default from the configuration
    bool json = false;
    std::vector<base::KeySpec> plugin_keys;  // the exporter kinds' keys, so a full configuration loads
};

/// The audit secret an offline command was given: `--key audit.key`, or `--wrapped-key FILE` with
/// `--passphrase-file FILE` (mac/wrap.h). nullopt if neither; an error if both, or naming the file
/// for an unreadable, malformed or wrongly unlocked one.
Result<std::optional<mac::AuditKey>> load_audit_secret(const std::string& key_file, const std::string& wrapped_file,
                                                       const std::string& pass_file);

int run_status(const StoreArgs& args);

struct TailArgs : StoreArgs {
    std::size_t lines = 10;
    bool follow = false;
    unsigned poll_ms = 250;
};
int run_tail(const TailArgs& args);

struct FsckArgs : StoreArgs {
    bool repair = false;
};
int run_fsck(const FsckArgs& args);

}  // namespace hsmaudit::agent::tools
