// The first sequence number the agent's audit store still holds: what a version 2 checkpoint
// states as `retained` (mac/checkpoint.h, docs/FORMAT.md section 7), so that deleting the oldest
// segments or archives is detectable by `hsmaudit verify --anchors`.
//
// Thread-safety: reentrant; reads the store's directories while the drain, the archiver and
// retention change them (see first_retained_seq()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mac/keys.h"

namespace hsmaudit::agent {

/// The first record's sequence number among what `audit_dir` holds: its oldest segment
/// (ready_for_archive/, current/: its open line, decrypted with `key` if encrypted at rest) and its
/// oldest archive (archive/: its manifest), whichever is lower. Segments are read before archives,
/// so a segment the archiver moves into an archive meanwhile is still counted, and a file deleted
/// meanwhile (retention) or unreadable is passed over: the value never exceeds what is held unless
/// it was deleted. nullopt if the store holds no segment (nothing to state).
/// One state directory holds one module's chain (archives of other serials are not told apart).
std::optional<std::uint64_t> first_retained_seq(const std::string& audit_dir, const mac::AuditKey& key);

}  // namespace hsmaudit::agent
