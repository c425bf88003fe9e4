// `hsmaudit tap <destination>`: what a configured destination is sent, rendered, without sending
// it and without touching the destination's cursor, so an operator can check a SIEM's parser
// before wiring the destination.
//
// The tap builds what the destination's runner builds, from the same configuration: the events
// of its streams (exporters.<name>.streams) read from the store by the runner's own reader
// (make_store_event_source, with chain_lines as configured), the runner's filter (min_severity,
// classes: event_wanted), and the kind's renderer (ExporterFactory::renderer: the formatter the
// factory builds, syslog header included). Each message is the exporter's payload without the
// transport's framing (no octet count, RELP frame or Kafka record around it).
//
// Damage in the store is handled as the runner handles it (skipped where the reader can prove
// where good data resumes, held otherwise), but the tap writes no alert: each damaged place is
// a warning on stderr. The tap writes nothing at all: no cursor, no state, no connection.
//
// Thread-safety: a DestinationTap is used by one thread; the free functions are pure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api/event.h"
#include "agent/api/exporter.h"
#include "agent/tools/commands.h"
#include "base/config/config.h"
#include "base/result.h"
#include "mac/keys.h"

namespace hsmaudit::agent::tools {

/// What a tap reads besides the configuration.
struct TapSource {
    std::string state_dir;
    const mac::AuditKey* key = nullptr;  // decrypts the store (must outlive the tap); null for a plain one
    std::string serial;                  // the module's serial (event ids of the non-audit streams)
    std::string host;                    // the appliance's host name (agent.hostname, else the system's)
    /// Only these streams (of the destination's own): `--stream`. All true: every stream it has.
    std::array<bool, 4> only{true, true, true, true};
};

/// One message the destination would be sent.
struct TapMessage {
    Stream stream = Stream::audit;
    std::uint64_t position = 0;
    std::string bytes;  // exactly the exporter's payload (no transport framing, no LF)
};

class DestinationTap {
public:
    /// The destination `name` of `config` as its runner would be built: an error (errc
    /// invalid_argument) names the configured destinations when there is no such one, or says
    /// that the destination's kind renders no message (snmp); a bad key is named as at start.
    static Result<std::unique_ptr<DestinationTap>> open(const base::Config& config, const std::string& name,
                                                        std::span<const ExporterFactory> factories,
                                                        const TapSource& source);
    ~DestinationTap();
    DestinationTap(const DestinationTap&) = delete;
    DestinationTap& operator=(const DestinationTap&) = delete;

    /// The streams shown: the destination's, narrowed by TapSource::only.
    [[nodiscard]] const std::array<bool, 4>& streams() const { return streams_; }

    /// Shows everything the store still holds from the next poll() on.
    Status seek_oldest();
    /// Shows, from the next poll() on, the last `n` messages of each stream shown (the last n
    /// events the filter passes; fewer if the store holds fewer).
    Status seek_last(std::size_t n);
    /// Shows only what is stored from now on.
    Status seek_newest();

    /// Messages stored after the previous call (up to the destination's `batch` per stream per
    /// call), in each stream's order, streams taken in turn as the runner does. Empty: nothing
    /// new. A stream the store cannot be read at is skipped this time (a warning names it).
    Result<std::vector<TapMessage>> poll();
    /// Damaged places met, and streams held, since the last call: one message each (stderr).
    std::vector<std::string> take_warnings();
    /// True if a stream was held at damage (what could be read was shown).
    [[nodiscard]] bool incomplete() const { return incomplete_; }
    /// True if the last poll() read nothing (every event the filter skipped counts as read).
    [[nodiscard]] bool caught_up() const { return caught_up_; }

private:
    struct Impl;
    explicit DestinationTap(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
    std::array<bool, 4> streams_{};
    bool incomplete_ = false;
    bool caught_up_ = false;
};

/// A message as one terminal-safe line: bytes that could drive a terminal or break the line
/// (C0 controls, tab included, DEL, the C1 controls U+0080..U+009F, bytes that are not UTF-8)
/// are written as \xNN; everything else, backslashes included, as it is. Messages without such
/// bytes (every format's output today, except LEEF with `leef_delimiter: tab`) print unchanged.
std::string terminal_line(std::string_view message);

/// `hsmaudit tap` as the CLI runs it.
struct TapArgs : StoreArgs {
    std::string destination;
    std::size_t last = 10;                       // -n/--last: the last N messages of each stream first
    bool from_start = false;                     // --from-start: everything the store holds
    bool follow = false;                         // -f/--follow: then keep printing what is stored
    bool raw = false;                            // --raw: the exact bytes, one message per line (LF after each)
    std::vector<std::string> streams;            // --stream: only these of the destination's
    std::span<const ExporterFactory> factories;  // the kinds built in (the CLI's registration list)
    unsigned poll_ms = 250;
};
/// Exit 0: shown (perhaps nothing); 1: a stream was held at damage in the store (warnings on
/// stderr; what could be read was shown); 2: usage, configuration or I/O error, an unknown
/// destination (the configured ones named) or a kind that renders no message.
int run_tap(const TapArgs& args);

}  // namespace hsmaudit::agent::tools
