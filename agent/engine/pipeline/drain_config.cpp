// Configuration keys of the drain, next to the code that reads them (make_drain_options).
#include "agent/api/errc.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/pipeline/drain.h"

namespace hsmaudit::agent {

std::span<const base::KeySpec> drain_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"drain.batch_max_entries", base::KeyType::integer, "16384", "Most entries read from the module per batch.", 1,
         1'000'000},
        {"drain.poll_wait", base::KeyType::duration, "20ms",
         "How long one read waits for new entries when the ring is empty.", 1, 1000},
        {"drain.commit_interval", base::KeyType::duration, "10ms",
         "Group commit: while the module writes less than a batch, the drain commits (fsync, acknowledgement to "
         "the module, wake-up of the destinations) at most this often, so that one commit serves every record "
         "that arrived meanwhile; records wait in the ring up to this long. A backlog is drained without pause. "
         "0 commits as soon as records arrive, at several times the CPU per record.",
         0, 1000},
        {"rotation.period", base::KeyType::choice, "hourly",
         "Seal and rotate the open segment at the start of each period (UTC), as `audit config rotation`.", 0,
         INT64_MAX, "never|hourly|daily|weekly|monthly"},
        {"rotation.max_segment_bytes", base::KeyType::bytes, "64MiB",
         "Seal and rotate once the open segment is this big.", 4096, 1LL << 40},
        {"alerts.ring_fill_warning", base::KeyType::ratio, "0.5",
         "Alert (warning) when the module's ring is this full."},
        {"alerts.ring_fill_critical", base::KeyType::ratio, "0.8",
         "Alert (critical) when the module's ring is this full."},
        {"alerts.predict_full_seconds", base::KeyType::integer, "60",
         "Alert when the ring is predicted to reach the module's reserve within this many seconds.", 1, 86'400},
        {"alerts.ring_reserve", base::KeyType::ratio, "0.05",
         "The fraction of the ring the module keeps in reserve (it blocks there); used for the prediction."},
        {"alerts.status_interval", base::KeyType::duration, "1s", "How often the ring's fill is read.", 50, 60'000},
        {"checkpoint.interval", base::KeyType::duration, "60s",
         "How often the agent takes the module's signed chain-head checkpoint (also at every seal); checkpoints "
         "go to <state>/checkpoints/checkpoints.log and to every exporter, so a copy off the box proves later "
         "that the trail was not truncated (`hsmaudit verify --anchors`).",
         1000, 86'400'000},
        {"checkpoint.tree_heads", base::KeyType::boolean, "true",
         "Keep an RFC 6962 Merkle tree over the drained records and take the module's signed tree head (a C2SP "
         "tlog-checkpoint note) with every checkpoint: one '@treehead <base64>' line in the checkpoints file; "
         "a root that differs from the agent's own tree raises treehead.mismatch (docs/FORMAT.md 10.5)."},
        {"alerts.clock_backwards_tolerance", base::KeyType::duration, "1s",
         "Alert when a record's module time is older than the previous record's by more than this.", 0, 86'400'000},
        {"alerts.predict_window", base::KeyType::duration, "10s",
         "The ring's fill trend (for the time-to-reserve prediction) is its net rise over this window.", 1000,
         3'600'000},
    };
    return kKeys;
}

DrainOptions make_drain_options(const base::Config& c) {
    DrainOptions o;
    o.batch_max_entries = static_cast<std::size_t>(c.integer("drain.batch_max_entries"));
    o.poll_wait = std::chrono::milliseconds(c.integer("drain.poll_wait"));
    o.commit_interval = std::chrono::milliseconds(c.integer("drain.commit_interval"));
    o.rotation = parse_rotation_period(c.str("rotation.period")).value();
    o.segment_max_bytes = static_cast<std::uint64_t>(c.integer("rotation.max_segment_bytes"));
    o.fill_warning = c.ratio("alerts.ring_fill_warning");
    o.fill_critical = c.ratio("alerts.ring_fill_critical");
    o.predict_warning_s = static_cast<double>(c.integer("alerts.predict_full_seconds"));
    o.reserve_fraction = c.ratio("alerts.ring_reserve");
    o.status_interval = std::chrono::milliseconds(c.integer("alerts.status_interval"));
    o.predict_window = std::chrono::milliseconds(c.integer("alerts.predict_window"));
    o.checkpoint_interval = std::chrono::milliseconds(c.integer("checkpoint.interval"));
    o.merkle_tree = c.boolean("checkpoint.tree_heads");
    o.clock_backwards_tolerance = std::chrono::milliseconds(c.integer("alerts.clock_backwards_tolerance"));
    return o;
}

}  // namespace hsmaudit::agent
