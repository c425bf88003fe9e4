#include "collectors/journal/journal_config.h"

#include <array>

#include "collectors/journal/errc.h"

namespace hsmaudit::collectors::journal {
namespace {

constexpr std::array<std::string_view, 8> kPriorities = {"emerg",   "alert",  "crit", "err",
                                                         "warning", "notice", "info", "debug"};

}  // namespace

std::span<const base::KeySpec> journal_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"syslog.journal.enabled", base::KeyType::boolean, "false",
         "Read the systemd journal (sd-journal) into the syslog spool, each entry as one message with transport "
         "`journal` (collectors/journal/README.md)."},
        {"syslog.journal.units", base::KeyType::string, "",
         "Comma-separated systemd units whose entries are read (`_SYSTEMD_UNIT` matches, any of them). Empty: "
         "every unit, unless syslog.journal.matches selects."},
        {"syslog.journal.matches", base::KeyType::string, "",
         "Comma-separated journal matches `FIELD=value`: matches of one field are alternatives, matches of "
         "different fields (units included) must all hold, as in sd_journal_add_match(3)."},
        {"syslog.journal.directory", base::KeyType::path, "",
         "A directory of journal files to read instead of the local system journal (empty: the system journal; "
         "the agent's user then needs the `systemd-journal` group)."},
        {"syslog.journal.priority", base::KeyType::choice, "debug",
         "The priority floor: entries less severe than this are read and skipped (entries without a PRIORITY are "
         "kept).",
         0, INT64_MAX, "emerg|alert|crit|err|warning|notice|info|debug"},
        {"syslog.journal.start", base::KeyType::choice, "head",
         "Where the first start (no saved cursor) begins: `head`, the oldest entry the journal holds, or `tail`, "
         "only entries written from then on. Later starts resume at the saved cursor.",
         0, INT64_MAX, "head|tail"},
        {"syslog.journal.cursor_sync", base::KeyType::duration, "1s",
         "The longest time between reading an entry and saving the cursor past it (after the spool made it "
         "durable); a crash reads at most this much again.",
         10, 60'000},
    };
    return kKeys;
}

bool journal_enabled(const base::Config& config) {
    return config.has("syslog.journal.enabled") && config.boolean("syslog.journal.enabled");
}

Result<JournalOptions> journal_options(const base::Config& c) {
    JournalOptions o;
    o.directory = c.str("syslog.journal.directory");
    o.units = base::split_list(c.str("syslog.journal.units"));
    o.matches = base::split_list(c.str("syslog.journal.matches"));
    const auto& prio = c.str("syslog.journal.priority");
    for (std::size_t i = 0; i < kPriorities.size(); ++i)
        if (kPriorities[i] == prio) o.max_priority = static_cast<int>(i);
    o.start = c.str("syslog.journal.start") == "tail" ? StartAt::tail : StartAt::head;
    o.cursor_sync = std::chrono::milliseconds(c.integer("syslog.journal.cursor_sync"));
    o.max_message_bytes = static_cast<std::size_t>(c.integer("syslog.max_message_bytes"));
    if (auto st = validate(o); !st) {
        const char* key =
            st.error().message.find("match") != std::string::npos ? "syslog.journal.matches" : "syslog.journal.units";
        return make_error(errc::invalid_argument, c.locate(key) + ": " + key + ": " + st.error().describe());
    }
    return o;
}

}  // namespace hsmaudit::collectors::journal
