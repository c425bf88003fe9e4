#include "agent/daemon/exporter_registry.h"

#include "collectors/journal/journal_config.h"
#include "exporters/formats/formatter.h"
#include "exporters/hec/hec_exporter.h"
#include "exporters/kafka/kafka_exporter.h"
#include "exporters/prometheus/endpoint.h"
#include "exporters/relp/relp_exporter.h"
#include "exporters/snmp/snmp_exporter.h"
#include "exporters/syslog/syslog_exporter.h"

namespace hsmaudit::exporters {

std::span<const agent::ExporterFactory> builtin_exporters() {
    static const agent::ExporterFactory kFactories[] = {
        // One line per kind.
        kafka::factory(),   // kafka
        relp::factory(),    // relp
        syslog::factory(),  // syslog
        snmp::factory(),    // snmp
        hec::factory(),     // splunk_hec
    };
    return kFactories;
}

std::vector<base::KeySpec> component_config_keys() {
    std::vector<base::KeySpec> keys;
    const auto formats = formats::format_config_keys();
    keys.insert(keys.end(), formats.begin(), formats.end());
    for (const auto& f : builtin_exporters()) {
        const auto own = f.keys();
        keys.insert(keys.end(), own.begin(), own.end());
    }
    const auto metrics = prometheus::metrics_config_keys();  // the /metrics endpoint (not an event exporter)
    keys.insert(keys.end(), metrics.begin(), metrics.end());
    // The journal source's keys (syslog.journal.*, not an exporter): agent/engine's key list cannot name a
    // collector, and every program that checks or documents the configuration passes this list.
    const auto journal = collectors::journal::journal_config_keys();
    keys.insert(keys.end(), journal.begin(), journal.end());
    return keys;
}

}  // namespace hsmaudit::exporters
