// ModuleHost: the host interface the agent (hsmauditd) uses to drain a module's audit ring.
//
//   read_after(after, max, out)  entries with entry number > after, oldest first, as zero-copy views
//                                into the mapped ring (valid until acknowledged)
//   ack_through(entry_no)        they are durable on the host: the module may reuse their space
//   status()                     capacity, used bytes and records, oldest/newest entry and record
//                                sequence, blocked flag, counters, boot counter, serial
//   seal()                       the module appends a seal entry and the next epoch's open entry
//   checkpoint(), tree_head()    the module's signed chain head; its signed Merkle tree head
//
// Entry numbers count every entry (records, opens, seals); record sequence numbers (the chain's)
// are inside record entries. Two implementations: in-process (module and agent in one process) and
// cross-process (the ring file mapped read-only + the module's control socket). See
// docs/ARCHITECTURE.md, "Host interface (hsmcore)".
//
// Thread-safety: a ModuleHost is used by one thread at a time (its read cursor is not shared);
// several ModuleHost objects may read the same ring concurrently, but only one should acknowledge.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "hsmcore/ring/entry_codec.h"
#include "hsmcore/ring/ring.h"
#include "mac/checkpoint.h"

namespace hsmaudit::hsmcore::module {
class Module;
}

namespace hsmaudit::hsmcore::host {

/// Name of the module's control socket inside its state directory.
inline constexpr char kControlSocket[] = "control.sock";

class ModuleHost {
public:
    virtual ~ModuleHost() = default;

    /// Appends up to `max` entries with entry_no > `after` to `out`; returns how many. errc::overrun if
    /// some of them were already acknowledged.
    virtual Result<std::size_t> read_after(std::uint64_t after, std::size_t max, std::vector<ring::EntryView>& out) = 0;
    /// Frees every entry up to and including `entry_no` (idempotent).
    virtual Status ack_through(std::uint64_t entry_no) = 0;
    virtual Result<ring::RingStatus> status() = 0;
    /// Seals the current epoch; returns the seal entry's number.
    virtual Result<std::uint64_t> seal() = 0;
    /// The module's signed chain-head checkpoint (mac/checkpoint.h): version 2 stating `retained`
    /// (the first sequence number the host's store still holds; the module refuses one beyond its
    /// head + 1), version 1 for 0.
    virtual Result<mac::Checkpoint> checkpoint(std::uint64_t retained) = 0;
    /// The module's signed tree head: a C2SP tlog-checkpoint signed note (mac/note.h) over the RFC
    /// 6962 tree of records 1..n, n the newest record (Module::tree_head()); several lines, each with LF.
    virtual Result<std::string> tree_head() = 0;
    /// The module serial (records carry it; it is not stored per entry).
    [[nodiscard]] virtual const std::string& serial() const = 0;
};

/// The embedded default: the agent and the module share one process. `module` must outlive the host.
std::unique_ptr<ModuleHost> make_in_process_host(module::Module& module);

/// The appliance layout: maps D/nvram.ring read-only and talks to `hsmcore serve` over D/control.sock.
Result<std::unique_ptr<ModuleHost>> connect_host(const std::string& dir);

/// The exact segment line of an entry (record: encode_record_body + " mac=" + hex + "\n"; open and
/// seal: the stored text), appended to `out`. Shared by the agent and `hsmcore drain`.
inline Status render_line(const ring::EntryView& e, std::string_view serial, std::string& out) {
    return ring::render_entry_line(e.entry, serial, out);
}

}  // namespace hsmaudit::hsmcore::host
