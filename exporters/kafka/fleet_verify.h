// Fleet verification: `hsmaudit verify --kafka BROKERS --topic T --keys DIR [--group G]`. Consumes
// the audit topic the Kafka exporter fills (key = module serial, header `line` = the exact segment
// line, header `entry` = record|open|seal) and verifies each appliance's chain from the stream with
// mac's rules (docs/FORMAT.md section 3; docs/KAFKA.md "Fleet verification"):
//
//   - with open and seal entries in the stream (the destination's `chain_lines: true`), each
//     segment goes through mac::ChainVerifier exactly as a segment file would: record MACs under
//     the evolving epoch key, open/seal MACs, seal signatures, digests for public-key holders,
//     links between segments;
//   - records without their open entry (chain_lines off, or resuming mid-segment) are checked
//     record to record: HMAC(K_epoch, body || previous MAC) with the `epoch` header (or, lacking
//     it, the next epochs tried in turn), gaps, reorders;
//   - redeliveries (the exporter is at-least-once) are recognised: a record whose sequence number
//     was already verified, with the same MAC and a MAC that verifies, is counted, not a fault;
//   - boot counter going back, checkpoints (signature, and the record at their seq must carry
//     their MAC), appliances silent for longer than --stale.
//
// Keys: DIR/<serial>.key (the audit secret, mode 0600: checks everything) or DIR/<serial>.pub
// (seals and checkpoints only). A serial without either is reported (`no_key`) and not verified.
//
// Scale-out and resume: with --group the verifier is one member of a Kafka consumer group. Each
// partition's offset is committed only after its messages were verified, together with the
// verification state of every serial in that partition (epoch, next seq, last MAC, boot, last time)
// in the commit's metadata, so whichever member gets the partition next resumes exactly there.
//
// Thread-safety: verify_fleet() runs on the calling thread; StreamChain is single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "exporters/kafka/kafka_config.h"
#include "mac/chain_verifier.h"
#include "mac/keys.h"
#include "base/result.h"

namespace hsmaudit::exporters::kafka {

struct FleetFault {
    std::string kind;   // mac's fault kinds (record_mac_mismatch, sequence_gap, ...) or no_key, stale,
                        // boot_counter_decreased, malformed_message, anchor_bad_signature, anchor_mismatch
    std::string where;  // "<topic>[<partition>]@<offset>"
    std::uint64_t seq = 0;
    std::string message;
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

/// One appliance's chain, verified message by message.
class StreamChain {
public:
    /// `key` or `pub` (or neither: no_key). `max_faults` caps the faults kept (all are counted).
    StreamChain(std::string serial, std::optional<mac::AuditKey> key, std::optional<mac::AuditPub> pub,
                std::size_t max_faults);
    ~StreamChain();
    StreamChain(const StreamChain&) = delete;
    StreamChain& operator=(const StreamChain&) = delete;

    void resume(const ChainState& state);
    void feed(const StreamMessage& m);
    /// Ends the run: an open segment stays open (not a fault); unreached checkpoints are counted;
    /// `stale_ms`/`now_ms`: a chain whose newest record is older is reported stale.
    void finish(std::optional<std::int64_t> stale_ms, std::int64_t now_ms);
    [[nodiscard]] ChainState state() const { return state_; }
    [[nodiscard]] const SerialReport& report() const { return report_; }
    SerialReport& report() { return report_; }

private:
    struct Seen {
        std::uint64_t seq;
        std::uint64_t epoch;
        mac::Mac mac;
    };
    void fault(std::string kind, const std::string& where, std::uint64_t seq, std::string message);
    void record(const StreamMessage& m);
    void open(const StreamMessage& m);
    void seal(const StreamMessage& m);
    void checkpoint(const StreamMessage& m);
    bool mac_ok(std::uint64_t epoch, std::string_view body, const mac::Mac& prev, const mac::Mac& mac);
    std::optional<std::uint64_t> find_epoch(std::string_view body, const mac::Mac& prev, const mac::Mac& mac);
    void observed(std::uint64_t seq, const mac::Mac& mac);
    const Seen* seen(std::uint64_t seq) const;
    void remember(std::uint64_t seq, std::uint64_t epoch, const mac::Mac& mac);

    std::string serial_;
    std::optional<mac::AuditKey> key_;
    std::optional<mac::AuditPub> pub_;
    std::size_t max_faults_;
    std::unique_ptr<mac::EpochKeyDeriver> deriver_;
    std::optional<mac::HmacSha256> hmac_;
    std::optional<std::uint64_t> hmac_epoch_;      // the epoch hmac_ is keyed for
    std::unique_ptr<mac::ChainVerifier> segment_;  // while an open entry's segment is being verified
    ChainState state_;
    std::deque<Seen> recent_;  // the last kRecent records verified: redeliveries are checked against them
    std::string last_open_;
    std::string last_seal_;
    std::map<std::uint64_t, mac::Mac> pending_anchors_;  // checkpoints ahead of the stream
    std::string where_;
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
};

/// Consumes and verifies until every assigned partition is at its end (or idle_timeout passes
/// without a message). Errors: usage and I/O (brokers unreachable, topic missing, keys unreadable);
/// integrity faults are in the report.
Result<FleetReport> verify_fleet(const FleetOptions& options);

nlohmann::json render_fleet_json(const FleetReport& report);
std::string render_fleet_text(const FleetReport& report);

}  // namespace hsmaudit::exporters::kafka
