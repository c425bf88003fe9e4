#include "collectors/journal/probe_collector.h"

#include "agent/api/metric_families.h"

namespace hsmaudit::collectors::journal {

std::vector<prometheus::MetricFamily> journal_families(const ProbeStats& s) {
    using namespace agent::metrics;
    struct Def {
        const char* name;
        const char* help;
        std::uint64_t ProbeStats::*field;
    };
    static constexpr Def kDefs[] = {
        {"hsmaudit_journal_entries_received_total", "Journal entries handed to the syslog spool.",
         &ProbeStats::received},
        {"hsmaudit_journal_entries_skipped_total", "Journal entries below syslog.journal.priority (read, not spooled).",
         &ProbeStats::skipped},
        {"hsmaudit_journal_entries_oversized_total",
         "Spooled entries whose MESSAGE was cut to syslog.max_message_bytes.", &ProbeStats::oversized},
        {"hsmaudit_journal_entries_escaped_total",
         "Spooled entries whose MESSAGE held control characters (a line break) or bytes that are not UTF-8 (kept "
         "escaped, exactly recoverable).",
         &ProbeStats::escaped},
        {"hsmaudit_journal_refused_total", "Times the spool's queue was full and the source waited (nothing dropped).",
         &ProbeStats::refused},
        {"hsmaudit_journal_read_errors_total", "Failed sd-journal reads (retried from the last entry read).",
         &ProbeStats::read_errors},
        {"hsmaudit_journal_gaps_total",
         "The saved or last read entry was no longer in the journal (vacuumed): entries may be missing.",
         &ProbeStats::gaps},
        {"hsmaudit_journal_cursor_damaged_total", "Damaged cursor files (the selection was read again from the head).",
         &ProbeStats::cursor_damaged},
        {"hsmaudit_journal_cursor_saves_total", "Cursor files written after the spool made the entries durable.",
         &ProbeStats::cursor_saves},
        {"hsmaudit_journal_cursor_save_failures_total",
         "Failed spool commits or cursor writes (the previous cursor stays).", &ProbeStats::cursor_save_failures},
        {"hsmaudit_journal_thread_failures_total",
         "The source's thread ended by an unexpected exception (the source stopped; see the log).",
         &ProbeStats::thread_failures},
    };
    std::vector<prometheus::MetricFamily> out;
    for (const Def& d : kDefs) {
        auto f = counter_family(d.name, d.help);
        add(f, s.*(d.field));
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<prometheus::MetricFamily> ProbeCollector::Collect() const {
    return journal_families(probe_.snapshot());
}

}  // namespace hsmaudit::collectors::journal
