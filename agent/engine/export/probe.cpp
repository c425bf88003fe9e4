#include "agent/engine/export/probe.h"

#include "agent/api/metric_families.h"

namespace hsmaudit::agent {

void ExportProbe::add(ExporterProbeSource source) {
    std::lock_guard lock(mutex_);
    sources_.push_back(std::move(source));
}

std::optional<double> exporter_lag_seconds(const RunnerStats& s, std::int64_t now_ms) {
    // The runner knows the time of the oldest event it has not delivered (read or waiting).
    if (s.oldest_undelivered_ms != 0)
        return std::max(0.0, static_cast<double>(now_ms - s.oldest_undelivered_ms) / 1000.0);
    const auto audit = static_cast<std::size_t>(Stream::audit);
    if (s.newest[audit] <= s.cursor[audit]) return 0.0;
    if (s.last_delivered_event_ms == 0) return std::nullopt;
    return std::max(0.0, static_cast<double>(now_ms - s.last_delivered_event_ms) / 1000.0);
}

std::vector<prometheus::MetricFamily> export_families(const std::vector<ExporterFigures>& exporters,
                                                      std::int64_t now_ms) {
    using namespace metrics;
    auto up = gauge_family("hsmaudit_exporter_up",
                           "1 while the destination is connected and delivering, 0 while it is down (backing off) "
                           "or starting.");
    auto delivered = counter_family("hsmaudit_exporter_events_delivered_total",
                                    "Events the destination acknowledged, by stream (filtered events count as "
                                    "delivered: the cursor moves over them).");
    auto filtered = counter_family("hsmaudit_exporter_events_filtered_total",
                                   "Events the destination's filter skipped (severity, classes).");
    auto sent = counter_family("hsmaudit_exporter_events_sent_total", "Events sent, resends included.");
    auto resent = counter_family("hsmaudit_exporter_events_resent_total",
                                 "Events sent again after a failure (retries; at-least-once delivery).");
    auto failures = counter_family("hsmaudit_exporter_failures_total",
                                   "Connect or transport failures (each followed by back-off and reconnection).");
    auto in_flight = gauge_family("hsmaudit_exporter_events_in_flight", "Events sent and not yet acknowledged.");
    auto lag = gauge_family("hsmaudit_exporter_lag_events",
                            "Events the store holds that the destination has not delivered, by stream (for the "
                            "audit stream: records).");
    auto lag_s =
        gauge_family("hsmaudit_exporter_lag_seconds",
                     "How far the destination is behind: the age of the oldest event it has not delivered (0 when "
                     "caught up).");
    auto last = gauge_family("hsmaudit_exporter_last_delivery_timestamp_seconds",
                             "When the destination last acknowledged events (Unix time; 0: not since the agent "
                             "started).");
    auto connects = counter_family("hsmaudit_exporter_connects_total", "Connections (or sessions) opened.");
    auto connect_failures = counter_family("hsmaudit_exporter_connect_failures_total",
                                           "Connections refused, failed TLS or authentication, or timed out.");
    auto bytes = counter_family("hsmaudit_exporter_sent_bytes_total", "Bytes the transport sent.");
    auto transport = counter_family("hsmaudit_exporter_transport_events_total",
                                    "The kind's own counters, by name (SNMP: traps_sent, informs_sent, informs_acked, "
                                    "inform_timeouts, inform_reports, held_down...).");
    auto cursor_failures = counter_family("hsmaudit_exporter_cursor_write_failures_total",
                                          "Writes of the destination's cursor file that failed (disk full, I/O error); "
                                          "delivery goes on and the write is retried with back-off.");
    auto store_failures = counter_family("hsmaudit_exporter_store_read_failures_total",
                                         "Reads of the store that failed for this destination (damaged or unreadable "
                                         "data it holds at, retried with back-off); not the destination's fault.");
    auto store_held = gauge_family("hsmaudit_exporter_store_held",
                                   "1 while a stream of the destination holds at a damaged or unreadable place of the "
                                   "store (store.damaged alert), by stream.");
    auto store_damage = counter_family("hsmaudit_exporter_store_damaged_places_total",
                                       "Damaged or unreadable places of the store this destination's reader met.");
    auto store_skipped = counter_family("hsmaudit_exporter_store_skipped_records_total",
                                        "Audit records skipped past damage in the store (each range announced in a "
                                        "store.damaged alert).");
    auto latency = histogram_family("hsmaudit_exporter_delivery_latency_seconds",
                                    "End to end: from an audit record's creation in the module to its "
                                    "acknowledgement by the destination.");

    for (const auto& e : exporters) {
        const auto& s = e.stats;
        const std::string& n = e.name;
        const std::string& t = e.type;
        add(up, s.state == RunnerState::up ? 1.0 : 0.0, {{"exporter", n}, {"type", t}});
        for (const Stream st : kAllStreams) {
            const auto i = static_cast<std::size_t>(st);
            if (!e.streams[i]) continue;
            const std::string stream(to_string(st));
            add(delivered, s.delivered[i], {{"exporter", n}, {"type", t}, {"stream", stream}});
            add(lag, s.newest[i] > s.cursor[i] ? s.newest[i] - s.cursor[i] : std::uint64_t{0},
                {{"exporter", n}, {"type", t}, {"stream", stream}});
            add(store_held, s.store_held[i] ? 1.0 : 0.0, {{"exporter", n}, {"type", t}, {"stream", stream}});
        }
        add(filtered, s.filtered, {{"exporter", n}, {"type", t}});
        add(sent, s.sent, {{"exporter", n}, {"type", t}});
        add(resent, s.resent, {{"exporter", n}, {"type", t}});
        add(failures, s.failures, {{"exporter", n}, {"type", t}});
        add(in_flight, s.in_flight, {{"exporter", n}, {"type", t}});
        add(cursor_failures, s.cursor_write_failures, {{"exporter", n}, {"type", t}});
        add(store_failures, s.store_read_failures, {{"exporter", n}, {"type", t}});
        add(store_damage, s.source.damaged_places, {{"exporter", n}, {"type", t}});
        add(store_skipped, s.source.skipped_records, {{"exporter", n}, {"type", t}});
        if (e.streams[static_cast<std::size_t>(Stream::audit)])
            if (auto l = exporter_lag_seconds(s, now_ms)) add(lag_s, *l, {{"exporter", n}, {"type", t}});
        add(last, seconds(s.last_delivery_ms), {{"exporter", n}, {"type", t}});
        add(connects, s.transport.connects, {{"exporter", n}, {"type", t}});
        add(connect_failures, s.transport.connect_failures, {{"exporter", n}, {"type", t}});
        add(bytes, s.transport.bytes_sent, {{"exporter", n}, {"type", t}});
        for (const auto& [counter, value] : s.transport.counters)
            add(transport, value, {{"exporter", n}, {"type", t}, {"counter", counter}});
        if (e.delivery_latency) add(latency, *e.delivery_latency, {{"exporter", n}, {"type", t}});
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&up,         &delivered,    &filtered,        &sent,
                    &resent,     &failures,     &in_flight,       &lag,
                    &lag_s,      &last,         &connects,        &connect_failures,
                    &bytes,      &transport,    &cursor_failures, &store_failures,
                    &store_held, &store_damage, &store_skipped,   &latency})
        if (!f->metric.empty()) out.push_back(std::move(*f));
    return out;
}

std::vector<prometheus::MetricFamily> ExportProbe::Collect() const {
    std::vector<ExporterFigures> figures;
    {
        std::lock_guard lock(mutex_);
        if (figures_) figures = figures_();
        for (const auto& src : sources_) {
            ExporterFigures f{src.name, src.type, src.streams, src.stats ? src.stats() : RunnerStats{}, std::nullopt};
            if (src.delivery_latency) f.delivery_latency = src.delivery_latency->snapshot();
            figures.push_back(std::move(f));
        }
    }
    return export_families(figures, now_ms_ ? now_ms_() : 0);
}

}  // namespace hsmaudit::agent
