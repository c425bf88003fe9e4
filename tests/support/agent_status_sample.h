// A fully populated AgentStatus for tests: every field differs from its default, so a round trip
// that drops or confuses a field, or a reader that misses one, shows.
#pragma once

#include <cstdint>

#include "agent/api/agent_status.h"

namespace hsmaudit::testing {

inline agent::AgentStatus full_agent_status(std::int64_t time_ms = 1'768'471'200'000) {
    agent::AgentStatus s;
    s.time_ms = time_ms;
    s.version = "0.1.0";
    s.pid = 4242;
    s.started_ms = time_ms - 60'000;
    s.state_dir = "/var/lib/hsmaudit";
    s.error = "a test error";
    s.module = {"150123", "embedded", "running", 7, 1000, 3, 900, 2, 1, 5, 4};
    s.ring = agent::RingStatus{0.42, 0.61, 37.5, true, 16 << 20, 1 << 20, 7 << 20, 4711, 4713, 0.8};
    s.drain = agent::DrainStatus{10'000, 9'990,         4,    120,  2, 10'003, 19'990,
                                 812.5,  time_ms - 200, true, true, 3, 1,      time_ms - 100};
    s.store =
        agent::StoreStatus{"/var/lib/hsmaudit/audit", 10'003, "hsm_150123_00000004.log", 123'456, 3, 5 << 20, true};
    s.archive = agent::ArchiveStatus{9, 1, 8, 24, 2, 1, true, "audit-0001.tar", "disk full"};
    s.retention = agent::RetentionStatus{3'000'000'000, 1'000'000, 4'000'000'000, "warning",        true, 6,
                                         true,          2,         true,          "statvfs failed", true};
    s.alerts.counts = {{"ring.fill_warning", 2}, {"chain.record_mac_mismatch", 1}};
    s.alerts.recent = {{time_ms - 5000, "ring.fill_warning", "warning", "the ring is 42% full"},
                       {time_ms - 1000, "chain.record_mac_mismatch", "critical", "record 4711: MAC"}};
    s.syslog = agent::SyslogStatus{100, 2, 1, 3, 4, 5, agent::SyslogStatus::Spool{95, 6, 7, 8}};
    agent::ExporterStatus e;
    e.name = "siem";
    e.type = "relp";
    e.state = "down";
    e.peer = "relp+tls://siem.example:2514";
    e.cursor = {{"audit", 9'000}, {"alerts", 12}};
    e.delivered = {{"audit", 8'000}};
    e.filtered = 11;
    e.sent = 8'100;
    e.resent = 100;
    e.failures = 3;
    e.in_flight = 50;
    e.lag_records = 990;
    e.lag_seconds = 12.5;
    e.last_error = "connection refused";
    e.cursor_write_failures = 1;
    e.cursor_error = "ENOSPC";
    e.store_held = true;
    e.store_error = "damaged chunk";
    e.store_damaged_places = 2;
    e.store_skipped_records = 9;
    s.exporters = {e};
    s.checkpoint = {12, 1};
    s.workload = agent::WorkloadStatus{5000, 10, 1};
    s.status_file = {60, 2, 1, "EIO"};
    return s;
}

}  // namespace hsmaudit::testing
