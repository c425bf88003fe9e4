#include "collectors/module/probe.h"

#include "agent/api/metric_families.h"

namespace hsmaudit::collectors {

void ModuleProbe::record(const hsmcore::ring::RingStatus& st, std::int64_t now_ms) noexcept {
    capacity_.store(st.capacity, kRelaxed);
    reserve_.store(st.reserve, kRelaxed);
    used_bytes_.store(st.used_bytes, kRelaxed);
    used_records_.store(st.records_used(), kRelaxed);
    used_entries_.store(st.entries_used(), kRelaxed);
    boot_.store(st.boot, kRelaxed);
    blocked_.store(st.blocked, kRelaxed);
    const auto& c = st.counters;
    op_requests_.store(c.op_requests, kRelaxed);
    op_errors_.store(c.op_errors, kRelaxed);
    crypto_requests_.store(c.crypto_requests, kRelaxed);
    crypto_errors_.store(c.crypto_errors, kRelaxed);
    critical_events_.store(c.critical_events, kRelaxed);
    noncritical_events_.store(c.noncritical_events, kRelaxed);
    refused_log_full_.store(c.refused_log_full, kRelaxed);
    unlogged_events_.store(c.unlogged_events, kRelaxed);
    read_ms_.store(now_ms, kRelaxed);
    valid_.store(true, std::memory_order_release);
}

ModuleFigures ModuleProbe::snapshot() const noexcept {
    ModuleFigures f;
    f.valid = valid_.load(std::memory_order_acquire);
    f.capacity_bytes = capacity_.load(kRelaxed);
    f.reserve_bytes = reserve_.load(kRelaxed);
    f.used_bytes = used_bytes_.load(kRelaxed);
    f.used_records = used_records_.load(kRelaxed);
    f.used_entries = used_entries_.load(kRelaxed);
    f.boot = boot_.load(kRelaxed);
    f.blocked = blocked_.load(kRelaxed);
    f.counters.op_requests = op_requests_.load(kRelaxed);
    f.counters.op_errors = op_errors_.load(kRelaxed);
    f.counters.crypto_requests = crypto_requests_.load(kRelaxed);
    f.counters.crypto_errors = crypto_errors_.load(kRelaxed);
    f.counters.critical_events = critical_events_.load(kRelaxed);
    f.counters.noncritical_events = noncritical_events_.load(kRelaxed);
    f.counters.refused_log_full = refused_log_full_.load(kRelaxed);
    f.counters.unlogged_events = unlogged_events_.load(kRelaxed);
    f.read_ms = read_ms_.load(kRelaxed);
    return f;
}

std::vector<prometheus::MetricFamily> module_families(const ModuleFigures& f) {
    using namespace agent::metrics;
    std::vector<prometheus::MetricFamily> out;
    if (!f.valid) return out;
    const auto& c = f.counters;
    out.push_back(gauge("hsmaudit_ring_capacity_bytes", "Size of the module's audit ring data area.",
                        static_cast<double>(f.capacity_bytes)));
    out.push_back(gauge("hsmaudit_ring_reserve_bytes",
                        "Free space below which the module blocks (stops cryptography, LOG_FULL).",
                        static_cast<double>(f.reserve_bytes)));
    out.push_back(gauge("hsmaudit_ring_used_bytes", "Bytes of the ring holding entries not yet acknowledged.",
                        static_cast<double>(f.used_bytes)));
    out.push_back(gauge("hsmaudit_ring_used_records", "Audit records in the ring not yet acknowledged.",
                        static_cast<double>(f.used_records)));
    out.push_back(gauge("hsmaudit_ring_used_entries",
                        "Ring entries (records, segment opens and seals) not yet acknowledged.",
                        static_cast<double>(f.used_entries)));
    out.push_back(gauge("hsmaudit_module_blocked",
                        "1 while the module refuses cryptography because its audit ring is at the reserve.",
                        f.blocked ? 1.0 : 0.0));
    out.push_back(gauge("hsmaudit_module_boot_number", "The module's boot counter.", static_cast<double>(f.boot)));
    out.push_back(gauge("hsmaudit_module_status_timestamp_seconds",
                        "When the agent last read the module's status (Unix time).", seconds(f.read_ms)));
    // The module keeps these counters in NVRAM; they survive agent and module restarts and reset
    // only when the module is initialised again (rate() handles that as a counter reset).
    out.push_back(counter("hsmaudit_module_operation_requests_total",
                          "Operation requests the module received (its \"Operation Requests\" counter).",
                          static_cast<double>(c.op_requests)));
    out.push_back(counter("hsmaudit_module_operation_errors_total",
                          "Operations the module failed (its \"Operation Errors\" counter), refusals included.",
                          static_cast<double>(c.op_errors)));
    out.push_back(counter("hsmaudit_module_crypto_operation_requests_total",
                          "Cryptographic operation requests (its \"Crypto Operation Requests\" counter).",
                          static_cast<double>(c.crypto_requests)));
    out.push_back(counter("hsmaudit_module_crypto_operation_errors_total",
                          "Cryptographic operations that failed (its \"Crypto Operation Errors\" counter).",
                          static_cast<double>(c.crypto_errors)));
    auto refused = counter_family("hsmaudit_module_operations_refused_total",
                                  "Operations the module refused, by reason (log_full: the audit ring was at its "
                                  "reserve).");
    add(refused, c.refused_log_full, {{"reason", "log_full"}});
    out.push_back(std::move(refused));
    auto events = counter_family("hsmaudit_module_events_total", "Events the module counted, by criticality.");
    add(events, c.critical_events, {{"criticality", "critical"}});
    add(events, c.noncritical_events, {{"criticality", "non_critical"}});
    out.push_back(std::move(events));
    out.push_back(counter("hsmaudit_module_unlogged_events_total",
                          "Events that should have been audited but found no space (login, logout and sessions "
                          "proceed at the reserve).",
                          static_cast<double>(c.unlogged_events)));
    return out;
}

std::vector<prometheus::MetricFamily> ModuleProbeCollector::Collect() const {
    return module_families(probe_.snapshot());
}

}  // namespace hsmaudit::collectors
