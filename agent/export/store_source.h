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
// (Archiver's DeliveryCursors), so a destination never needs to read an archive. A segment that
// vanishes all the same is skipped with a warning counted in skipped().
//
// Thread-safety: one runner's thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/export/runner.h"
#include "agent/store/state_layout.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

struct StoreSourceOptions {
    std::string state_dir;
    const mac::AuditKey* key = nullptr;  // to decrypt segments encrypted at rest; must outlive the source
    std::string serial;                  // the module's serial (event ids of non-audit streams)
    std::string host;                    // the appliance's host name
    bool chain_lines = false;            // also deliver open and seal entries (Event::entry)
};

std::unique_ptr<EventSource> make_store_event_source(StoreSourceOptions options);

/// Parses one line of alerts.jsonl into an Alert (for the alerts stream and tools).
Result<Alert> parse_alert_line(std::string_view line);

}  // namespace hsmaudit::agent
