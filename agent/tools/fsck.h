// `hsmaudit fsck`: checks an audit store offline (the agent stopped) and, with --repair, puts it
// back into a state the agent can resume from, without deleting anything: what does not belong
// or cannot be trusted is moved into <audit>/quarantine/, and every action is reported.
//
// Checked: the position file (both slots; which one is current), the open segment against the
// committed length (longer: uncommitted bytes; shorter or unreadable: damage), every segment
// with the chain verifier (every fault listed), and files that do not belong in the store.
// Repaired: uncommitted bytes are cut (and kept in quarantine/), a segment sealed after the last
// commit is moved back (as the agent's own recovery does), unexplained files are moved aside,
// and a damaged or missing position file is rebuilt from what the files prove (the last complete
// record of the open segment). Sealed segments with integrity faults are never rewritten or
// moved: they are evidence, and their other records are still needed.
//
// Thread-safety: fsck_store() must be the only writer of the store while it runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/engine/store/audit_store.h"
#include "base/result.h"
#include "mac/keys.h"
#include "mac/verifier.h"

namespace hsmaudit::agent::tools {

struct FsckOptions {
    std::string audit_dir;               // <state>/audit
    const mac::AuditKey* key = nullptr;  // required: decrypts and verifies
    bool repair = false;
};

/// Something wrong with the store, and what --repair did about it.
struct FsckFinding {
    std::string kind;  // position_damaged, position_missing, uncommitted_bytes, uncommitted_segment,
                       // sealed_after_commit, open_segment_short, open_segment_damaged, open_segment_missing,
                       // unexplained_file, not_in_chain, chain_fault
    std::string path;
    std::string message;
    std::string action;  // what --repair did ("" if nothing)
};

struct FsckReport {
    std::vector<std::string> checked;  // what was examined and found, in order, for people
    std::vector<FsckFinding> findings;
    std::optional<StorePosition> position;  // the position the store resumes from (after a rebuild: the new one)
    mac::VerifyReport verify;
    bool repaired = false;  // --repair changed something

    [[nodiscard]] bool clean() const { return findings.empty(); }
};

/// Checks (and with options.repair, repairs) the store. An error only for usage and I/O problems
/// (no store, no key, the key belongs to another chain, a file that cannot be read).
Result<FsckReport> fsck_store(const FsckOptions& options);

std::string render_fsck_text(const FsckReport& report, bool repair);
nlohmann::json render_fsck_json(const FsckReport& report);

}  // namespace hsmaudit::agent::tools
