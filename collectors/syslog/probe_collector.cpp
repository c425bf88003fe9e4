#include "collectors/syslog/probe_collector.h"

#include "agent/api/metric_families.h"

namespace hsmaudit::collectors::syslog {

std::vector<prometheus::MetricFamily> syslog_families(const std::vector<std::pair<std::string, ProbeStats>>& stats) {
    using namespace agent::metrics;
    struct Def {
        const char* name;
        const char* help;
        std::uint64_t ProbeStats::*field;
    };
    static constexpr Def kDefs[] = {
        {"hsmaudit_syslog_messages_received_total",
         "Syslog messages received and handed to the spool (malformed "
         "ones included).",
         &ProbeStats::received},
        {"hsmaudit_syslog_messages_malformed_total",
         "Received messages that did not parse as RFC 5424 or 3164 (kept, "
         "flagged, with their raw text).",
         &ProbeStats::malformed},
        {"hsmaudit_syslog_messages_oversized_total", "Received messages cut to syslog.max_message_bytes.",
         &ProbeStats::oversized},
        {"hsmaudit_syslog_datagrams_dropped_total",
         "Datagrams the kernel dropped because the socket's queue was full "
         "(counted when the next datagram arrives).",
         &ProbeStats::dropped},
        {"hsmaudit_syslog_framing_errors_total", "TCP frames with a bad octet count or cut by a closed connection.",
         &ProbeStats::framing_errors},
        {"hsmaudit_syslog_connections_accepted_total", "TCP connections accepted.", &ProbeStats::connections_accepted},
        {"hsmaudit_syslog_connections_rejected_total",
         "TCP connections refused (closed at once): at syslog.max_connections or syslog.max_connections_per_peer "
         "with no idle connection to drop.",
         &ProbeStats::connections_rejected},
        {"hsmaudit_syslog_connections_evicted_total",
         "Idle TCP connections closed to admit a new sender at a connection limit (the longest idle first).",
         &ProbeStats::connections_evicted},
        {"hsmaudit_syslog_connections_idle_closed_total",
         "TCP connections closed after syslog.tcp_idle_timeout without a byte.", &ProbeStats::connections_idle_closed},
        {"hsmaudit_syslog_datagrams_dropped_full_total",
         "Datagrams (UDP, unix socket) dropped because the spool was full (syslog.spool_queue_bytes).",
         &ProbeStats::dropped_full},
        {"hsmaudit_syslog_read_errors_total", "Failed reads on sockets or followed files.", &ProbeStats::read_errors},
        {"hsmaudit_syslog_thread_failures_total",
         "Listener or follower threads ended by an unexpected exception (the source stopped; see the log).",
         &ProbeStats::thread_failures},
    };
    std::vector<prometheus::MetricFamily> out;
    for (const Def& d : kDefs) {
        auto f = counter_family(d.name, d.help);
        for (const auto& [listener, s] : stats) add(f, s.*(d.field), {{"listener", listener}});
        out.push_back(std::move(f));
    }
    auto open = gauge_family("hsmaudit_syslog_connections_open", "TCP connections open now.");
    for (const auto& [listener, s] : stats) add(open, s.connections_open, {{"listener", listener}});
    out.push_back(std::move(open));
    return out;
}

std::vector<prometheus::MetricFamily> ProbeCollector::Collect() const {
    std::vector<std::pair<std::string, ProbeStats>> stats;
    stats.reserve(probes_.size());
    for (const auto& [listener, p] : probes_) stats.emplace_back(listener, p->snapshot());
    return syslog_families(stats);
}

}  // namespace hsmaudit::collectors::syslog
