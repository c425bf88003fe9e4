// Fleet verification: `hsmaudit verify --kafka BROKERS --topic T --keys DIR [--group G]`. Consumes
// the audit topic the Kafka exporter fills (key = module serial, header `line` = the exact segment
// line, header `entry` = record|open|seal, header `epoch`) and verifies each appliance's chain from
// the stream (docs/KAFKA.md "Fleet verification").
//
// The chain logic is mac's: each appliance's messages go to a mac::StreamVerifier, which applies
// mac::ChainVerifier's rules (docs/FORMAT.md section 3) and reports mac::FaultKind faults, named
// as `hsmaudit verify` names them: whole segments when the stream carries their open and seal
// lines (the destination's `chain_lines: true`), record to record from a known position otherwise,
// redeliveries recognised (the exporter is at-least-once), epochs bounded, checkpoints matched.
// This file is the consumer side: Kafka, partitions, group membership, offsets and the state
// committed with them, reading messages, key files, the checks of the stream beyond the chain
// (FleetFaultKind: no key, stale appliance, boot counter going back, a message without `line`),
// and the JSON and text reports.
//
// Keys: DIR/<serial>.key (the audit secret, mode 0600: checks everything) or DIR/<serial>.pub
// (seals and checkpoints only). A serial without either is reported (`no_key`) and not verified.
//
// Scale-out and resume: with --group the verifier is one member of a Kafka consumer group. Each
// partition's offset is committed only after its messages were verified, together with the
// verification state of every serial in that partition (epoch, next seq, last MAC, boot, last time)
// in the commit's metadata, so whichever member gets the partition next resumes exactly there.
//
// Parallel: with FleetOptions::jobs > 1 the messages are verified on that many threads, every
// partition's messages on one of them in the order consumed (a partition's chains are
// independent of the others'); offsets and state are committed, and chains finished, only once
// every message consumed before was verified. The report is the one a single thread gives.
//
// Thread-safety: verify_fleet() consumes on the calling thread and joins the threads it starts
// before it returns; ApplianceStream is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "exporters/kafka/kafka_config.h"
#include "mac/keys.h"
#include "mac/stream_verifier.h"
#include "mac/verifier.h"

namespace hsmaudit::exporters::kafka {

/// Faults of the stream beyond the chain (the chain's own are mac::FaultKind).
enum class FleetFaultKind : std::uint8_t {
    no_key,                  // no key file for the serial: its records are not verified
    stale,                   // no record for longer than --stale
    boot_counter_decreased,  // the module's boot counter went back
    malformed_message,       // a message without the `line` header
};
std::string_view to_string(FleetFaultKind kind);

struct FleetFault {
    std::variant<mac::FaultKind, FleetFaultKind> kind;
    std::string where;  // "<topic>[<partition>]@<offset>" (the keys directory for no_key)
    std::uint64_t seq = 0;
    std::string message;
    /// The kind as reported: mac::to_string()'s names for chain faults, as `hsmaudit verify`.
    [[nodiscard]] std::string_view kind_name() const;
};

/// What the stream showed of one appliance.
struct SerialReport {
    std::string serial;
    std::int32_t partition = -1;
    std::string key_kind;  // "key" (audit secret), "pub" (public key), "none"
    bool resumed = false;  // state came from the group's committed metadata
    std::uint64_t records = 0;
    std::uint64_t redelivered = 0;  // duplicates recognised (same seq, same MAC)
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::int64_t last_time_ms = 0;
    std::uint64_t epoch = 0;
    std::uint32_t boot = 0;
    std::uint64_t boot_changes = 0;
    std::uint64_t segments = 0;  // open entries verified
    std::uint64_t seals = 0;     // seal entries verified
    std::uint64_t macs_checked = 0;
    std::uint64_t checkpoints = 0;        // checkpoints whose signature verified
    std::uint64_t anchors_matched = 0;    // ... and whose record was seen with the same MAC
    std::uint64_t anchors_unreached = 0;  // ... whose record the stream has not reached (yet)
    std::vector<FleetFault> faults;       // at most max_faults_per_serial
    std::uint64_t faults_total = 0;
    [[nodiscard]] bool verified() const { return faults_total == 0; }
};

struct FleetReport {
    std::string topic;
    std::string group;
    std::uint64_t messages = 0;
    std::vector<SerialReport> serials;  // sorted by serial
    [[nodiscard]] bool verified() const;
};

/// Where one serial's chain stands: what a restart needs to continue (committed as metadata).
struct ChainState {
    std::uint64_t epoch = 0;
    bool epoch_known = false;
    std::uint64_t next_seq = 1;
    mac::Mac last_mac{};
    bool mac_known = false;  // false: the first record seen is taken as the start
    std::uint32_t boot = 0;
    std::int64_t last_time_ms = 0;
};
/// "<serial>:<epoch|->:<next_seq>:<mac hex|->:<boot>:<last_time_ms>" entries joined by ';', "v1;" first.
std::string encode_states(const std::map<std::string, ChainState, std::less<>>& states);
Result<std::map<std::string, ChainState, std::less<>>> decode_states(std::string_view text);

/// One message of the audit topic, as the verifier needs it.
struct StreamMessage {
    std::string kind = "audit";          // header "kind": the stream (audit, checkpoints)
    std::string entry = "record";        // header "entry": record, open, seal
    std::optional<std::uint64_t> epoch;  // header "epoch"
    std::string line;                    // header "line"
    std::string source;                  // "<topic>[<partition>]", for reports
    std::uint64_t offset = 0;
};

/// The StreamMessage a consumed message makes: its headers "kind", "entry", "line" and "epoch" (a
/// malformed epoch is ignored, as if absent) as `header(name)` gives them (nullopt: absent).
/// Pure; the fleet verifier's only reading of a message's headers (fuzzed by kafka_message_fuzz).
StreamMessage stream_message(std::string source, std::uint64_t offset,
                             const std::function<std::optional<std::string_view>(const char* name)>& header);

/// One appliance's messages: its chain verified by a mac::StreamVerifier, and the checks of the
/// stream beyond the chain (boot counter, staleness, a message without `line`).
class ApplianceStream {
public:
    /// `key` or `pub` (or neither: nothing verified, the caller reports no_key). `max_faults` caps
    /// the faults kept (all are counted).
    ApplianceStream(std::string serial, std::optional<mac::AuditKey> key, std::optional<mac::AuditPub> pub,
                    std::size_t max_faults);
    ~ApplianceStream();
    ApplianceStream(const ApplianceStream&) = delete;
    ApplianceStream& operator=(const ApplianceStream&) = delete;

    void resume(const ChainState& state);
    void feed(const StreamMessage& m);
    /// Ends the run: an open segment stays open (not a fault); unreached checkpoints are counted;
    /// `stale_ms`/`now_ms`: a chain whose newest record is older is reported stale.
    void finish(std::optional<std::int64_t> stale_ms, std::int64_t now_ms);
    [[nodiscard]] ChainState state() const;
    [[nodiscard]] const SerialReport& report() const { return report_; }
    void set_partition(std::int32_t partition) { report_.partition = partition; }
    void fault(FleetFault f);

private:
    void sync();

    std::size_t max_faults_;
    std::unique_ptr<mac::StreamVerifier> chain_;  // nullptr without a key
    ChainState resumed_;                          // without a key, committed again as it came
    std::uint32_t boot_ = 0;
    std::int64_t last_time_ms_ = 0;
    SerialReport report_;
};

struct FleetOptions {
    std::string brokers;
    std::string topic;
    std::string group;  // "" : no group, read every partition from the beginning, commit nothing
    std::string keys_dir;
    bool from_beginning = false;                     // with a group: ignore committed offsets and state
    std::chrono::milliseconds idle_timeout{10'000};  // stop after this long without a message
    std::optional<std::chrono::milliseconds> stale;  // report appliances silent for longer
    Properties properties;                           // librdkafka pass-through (TLS, SASL mechanism)
    Properties secret_properties;                    // from a 0600 file
    std::size_t max_faults_per_serial = 1000;
    std::function<std::int64_t()> now_ms;  // wall clock (injected in tests)
    unsigned jobs = 1;                     // threads verifying messages (1: the consuming thread)
};

/// Consumes and verifies until every assigned partition is at its end (or idle_timeout passes
/// without a message). Errors: usage and I/O (brokers unreachable, topic missing, keys unreadable);
/// integrity faults are in the report.
Result<FleetReport> verify_fleet(const FleetOptions& options);

nlohmann::json render_fleet_json(const FleetReport& report);
std::string render_fleet_text(const FleetReport& report);

}  // namespace hsmaudit::exporters::kafka
