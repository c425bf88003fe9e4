#include "agent/engine/pipeline/probe.h"

#include <limits>
#include <string>

#include "agent/api/metric_families.h"

namespace hsmaudit::agent {

std::vector<prometheus::MetricFamily> drain_families(const DrainStats& d, const LatencyHistogram::Snapshot& batch,
                                                     const LatencyHistogram::Snapshot& record) {
    using namespace metrics;
    std::vector<prometheus::MetricFamily> out;
    out.push_back(gauge("hsmaudit_ring_fill_ratio",
                        "Fraction of the module's audit ring in use (0..1), at the drain's last status read.",
                        d.ring_fill));
    out.push_back(gauge("hsmaudit_ring_fill_peak_ratio", "Highest ring fill ratio seen since the agent started.",
                        d.ring_fill_peak));
    // Not filling is +Inf rather than -1, so `< N` comparisons work without a special case.
    out.push_back(gauge("hsmaudit_ring_predicted_full_seconds",
                        "Predicted seconds until the ring reaches the module's reserve (it then blocks), from the "
                        "fill's net rise over alerts.predict_window; +Inf when the ring is not filling.",
                        d.seconds_to_reserve < 0 ? std::numeric_limits<double>::infinity() : d.seconds_to_reserve));
    out.push_back(counter("hsmaudit_drain_entries_total",
                          "Ring entries (records, segment opens and seals) stored and acknowledged.",
                          static_cast<double>(d.entries)));
    out.push_back(counter("hsmaudit_drain_records_verified_total",
                          "Audit records checked by the online chain verifier.",
                          static_cast<double>(d.records_verified)));
    out.push_back(counter("hsmaudit_drain_records_stored_total",
                          "Audit records durable in the store (fsynced) and acknowledged to the module.",
                          static_cast<double>(d.records)));
    out.push_back(counter("hsmaudit_drain_stored_bytes_total",
                          "Segment bytes committed to the store (the lines, before encryption at rest).",
                          static_cast<double>(d.bytes_stored)));
    out.push_back(counter("hsmaudit_drain_commits_total", "Store commits (fsync, then acknowledgement).",
                          static_cast<double>(d.commits)));
    out.push_back(counter("hsmaudit_drain_seals_total", "Segment seals drained (segments closed and rotated).",
                          static_cast<double>(d.seals)));
    out.push_back(counter("hsmaudit_drain_checkpoints_total",
                          "Signed chain-head checkpoints kept (once the store holds the records they name).",
                          static_cast<double>(d.checkpoints)));
    out.push_back(counter("hsmaudit_drain_step_failures_total",
                          "Drain steps that failed (I/O, module unreachable); each is alerted and retried.",
                          static_cast<double>(d.step_failures)));
    out.push_back(gauge("hsmaudit_drain_failing",
                        "1 while drain steps fail (the store cannot write: a full disk, I/O errors; or the module "
                        "is unreachable) and are retried with back-off; nothing is acknowledged meanwhile.",
                        d.failing ? 1.0 : 0.0));
    out.push_back(counter("hsmaudit_store_reopens_total",
                          "Times the audit store was re-opened through its recovery path after a failed write or "
                          "fsync.",
                          static_cast<double>(d.store_reopens)));
    out.push_back(gauge("hsmaudit_drain_acks_paused",
                        "1 while retention holds the drain at the store quota (nothing is read or acknowledged).",
                        d.acks_paused ? 1.0 : 0.0));
    out.push_back(gauge("hsmaudit_drain_last_step_timestamp_seconds",
                        "When the drain last completed a step or a retry after a failed one (Unix time).",
                        seconds(d.last_step_ms)));
    out.push_back(gauge("hsmaudit_chain_last_sequence", "Sequence number of the newest record stored.",
                        static_cast<double>(d.last_seq)));
    out.push_back(gauge("hsmaudit_drain_acknowledged_entry",
                        "Entry number through which the module was told "
                        "the entries are durable.",
                        static_cast<double>(d.acked_entry_no)));

    // Every kind, zeros included: a rule can then use rate() from the first scrape on, and the
    // label set is bounded by mac::FaultKind.
    auto faults = counter_family("hsmaudit_chain_verification_failures_total",
                                 "Faults the online chain verifier found, by kind (each also raised as an alert "
                                 "chain.<kind>); the entries are stored all the same.");
    for (std::size_t k = 0; k < d.faults_by_kind.size(); ++k)
        add(faults, d.faults_by_kind[k], {{"kind", std::string(mac::to_string(static_cast<mac::FaultKind>(k)))}});
    out.push_back(std::move(faults));

    auto b = histogram_family("hsmaudit_drain_batch_duration_seconds",
                              "Time from reading a batch from the ring to acknowledging it: verify, append, commit "
                              "(fsync) and acknowledge.");
    add(b, batch);
    out.push_back(std::move(b));
    auto r = histogram_family("hsmaudit_drain_record_latency_seconds",
                              "Age of each record (module timestamp to agent clock) when it became durable and "
                              "acknowledged; includes any offset between the two clocks.");
    add(r, record);
    out.push_back(std::move(r));
    return out;
}

std::vector<prometheus::MetricFamily> DrainProbe::Collect() const {
    return drain_families(drain_.stats(), drain_.batch_latency().snapshot(), drain_.record_latency().snapshot());
}

}  // namespace hsmaudit::agent
