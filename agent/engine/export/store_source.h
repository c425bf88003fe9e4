// StoreEventSource: the EventSource every destination reads, over the agent's state directory:
//
//   audit        <state>/audit/ready_for_archive/*.log then current/*.log, in epoch order, only
//                what the store's position file says is durable (records with seq < next_seq; a
//                seal once its segment is committed as sealed), decrypted if encrypted at rest
//   syslog       <state>/syslog/spool/spool-*.log (the hash-chained syslog spool)
//   alerts       <state>/alerts/alerts.jsonl
//   checkpoints  <state>/checkpoints/checkpoints.log
//
// Each stream is followed incrementally: a file is read from where the last read stopped
// (encrypted segments chunk by chunk), so a caught-up destination reads only what is new, and a
// backlog of any size is read in bounded batches with bounded memory. A read whose `after` is
// not where the previous one ended repositions (at start, from the cursor file).
//
// Segments are archived (moved into tar files) only once every destination has delivered them
// (Archiver's DeliveryCursors), so a destination never needs to read an archive.
//
// Damage policy (the audit stream). The reader meets damage as: a chunk that fails
// authentication or has an impossible length, a torn chunk or a partial line at the end of a
// segment that is complete, a line that does not parse, a record out of sequence, records
// missing between two segments (a segment file missing), or a file it cannot read (EIO,
// permission). Reading the store is never the destination's fault: these are the codes
// errc::store_damaged / errc::store_unreadable, never a reason to disconnect a receiver.
//
//   * Skip, announced, only where the reader can prove where good data resumes: at the next
//     record line that parses and carries the expected sequence number, or a later one the
//     damage accounts for (at most one record per damaged line), at the next chunk that
//     authenticates (encrypted, when the damaged chunk's length is intact: authentication proves
//     its sequence numbers), or at the next segment's open line (framing lost, once the segment
//     is complete: not the open one and followed by a later one). The records in between,
//     first..last, are named in ONE critical `store.damaged` alert per damaged place (file name,
//     byte offset; one ledger for all destinations), which also reaches the SIEMs on the alerts
//     stream. Nothing is skipped silently. The open segment is read only up to the length the
//     position file commits, so a write in progress or bytes a recovery will cut are never
//     taken for damage.
//   * Hold, otherwise: framing lost in the open segment (no later segment yet), or a read that
//     fails. read() returns the error (after one `store.damaged` alert for the place); the runner
//     keeps its receiver connected, delivers its other streams and retries this one with
//     back-off. The hold ends by itself when the segment becomes complete (then the damaged
//     rest is skipped with a `store.damage_skipped` alert naming the records) or the file
//     becomes readable again (hsmaudit fsck --repair). Without a ledger (tools) or with
//     skip_damage off, every damaged place holds: the strict alternative.
//
// Why skip rather than hold until an operator repairs: a held destination holds back the
// archiver (it bundles only what every destination delivered) and retention, so one bad file
// would end, after the quota fills, in the drain pausing and the module blocking; and waiting
// does not make authenticated bytes authentic again. The damaged bytes stay in place (the
// archiver leaves a damaged segment in ready_for_archive, `hsmaudit verify`/`fsck` name it), the
// gap is alerted with its sequence numbers, and the SIEM sees every record before and after it.
// The reader checks framing, parsing and sequence, not record MACs (the drain verified them
// online; the archiver verifies again before archiving): an altered record that still parses
// is delivered as it is, and its MAC lets the SIEM or `hsmaudit verify` prove it altered.
//
// Thread-safety: one runner's thread; a StoreDamageLedger from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "agent/engine/export/runner.h"
#include "agent/engine/store/state_layout.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

/// The damaged places of the store every destination's reader found, shared by the readers so
/// that each place raises one alert however many destinations meet it (and however often a
/// held reader retries it). Thread-safety: any thread.
class StoreDamageLedger {
public:
    StoreDamageLedger(AlertSink& alerts, std::function<std::int64_t()> now_ms)
        : alerts_(alerts), now_ms_(std::move(now_ms)) {}
    /// A damaged place the reader skips: store.damaged (critical) the first time; if the place
    /// was first reported held, store.damage_skipped (critical) instead, once.
    void skipped(const std::string& file, std::uint64_t offset, const std::string& message, std::uint64_t seq);
    /// A damaged or unreadable place the reader holds at: store.damaged (critical) the first time.
    void held(const std::string& file, std::uint64_t offset, const std::string& message, std::uint64_t seq);
    /// Damaged places alerted so far.
    [[nodiscard]] std::uint64_t places() const;

private:
    using Place = std::pair<std::string, std::uint64_t>;
    AlertSink& alerts_;
    std::function<std::int64_t()> now_ms_;
    mutable std::mutex mutex_;
    std::set<Place> alerted_;
    std::set<Place> held_;
    std::set<Place> skip_alerted_;
};

struct StoreSourceOptions {
    std::string state_dir;
    const mac::AuditKey* key = nullptr;  // to decrypt segments encrypted at rest; must outlive the source
    std::string serial;                  // the module's serial (event ids of non-audit streams)
    std::string host;                    // the appliance's host name
    bool chain_lines = false;            // also deliver open and seal entries (Event::entry)
    /// Where damage is alerted (one ledger for every destination of the agent). Without one the
    /// reader never skips: it holds at any damage (fail-safe; tools and tests).
    std::shared_ptr<StoreDamageLedger> damage{};
    /// false: hold at every damaged place (alerted) until it is repaired, never skip (a stricter
    /// policy a deployment may choose; see the cost above).
    bool skip_damage = true;
};

std::unique_ptr<EventSource> make_store_event_source(StoreSourceOptions options);

/// Parses one line of alerts.jsonl into an Alert (for the alerts stream and tools).
Result<Alert> parse_alert_line(std::string_view line);

}  // namespace hsmaudit::agent
