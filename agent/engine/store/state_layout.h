// Where the agent keeps each of its stores under its state directory (agent.state_dir): one
// place for the paths the service writes and the tools and exporters read.
// Thread-safety: free functions on values.
#pragma once

#include <filesystem>
#include <string>

namespace hsmaudit::agent {

// Inside <state>/audit (the audit store, agent/engine/store/audit_store.h): the names every reader of
// the store uses (the store, fsck, tail, the exporters' reader, the archiver, the probe).
inline constexpr char kOpenSegmentDir[] = "current";              // the open segment
inline constexpr char kSealedSegmentDir[] = "ready_for_archive";  // sealed segments waiting for the archiver
inline constexpr char kPositionFileName[] = "position";           // what is durable (audit_store.h)
inline constexpr char kQuarantineDir[] = "quarantine";            // what `hsmaudit fsck --repair` moved aside
// archive/ (kArchiveDir, agent/engine/store/archiver.h): the archiver's bundles.

/// <state>/audit: the audit store (segments, archives, position).
inline std::string audit_dir_of(const std::string& state_dir) {
    return (std::filesystem::path(state_dir) / "audit").string();
}
/// <state>/syslog/spool: the syslog spool's files.
inline std::string spool_dir_of(const std::string& state_dir) {
    return (std::filesystem::path(state_dir) / "syslog" / "spool").string();
}
/// <state>/alerts/alerts.jsonl: the durable alert log.
inline std::string alerts_file_of(const std::string& state_dir) {
    return (std::filesystem::path(state_dir) / "alerts" / "alerts.jsonl").string();
}
/// <state>/checkpoints/checkpoints.log: the module's signed chain-head checkpoints.
inline std::string checkpoints_file_of(const std::string& state_dir) {
    return (std::filesystem::path(state_dir) / "checkpoints" / "checkpoints.log").string();
}

}  // namespace hsmaudit::agent
