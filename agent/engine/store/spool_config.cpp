// Configuration keys of the syslog intake: where the appliance's syslog is received (read by
// agent/daemon/syslog_intake.cpp) and its spool (read here, make_spool_options).
#include "agent/engine/config_keys.h"
#include "agent/engine/store/event_spool.h"
#include "agent/engine/store/syslog_payload.h"

namespace hsmaudit::agent {

std::span<const base::KeySpec> syslog_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"syslog.listen", base::KeyType::string, "",
         "Comma-separated endpoints receiving the appliance's syslog: `unix:/run/hsmaudit/syslog.sock`, "
         "`udp:127.0.0.1:514`, `tcp:127.0.0.1:601` (octet counting or LF framing). Empty: none."},
        {"syslog.files", base::KeyType::string, "",
         "Comma-separated log files to follow across rotation (rename, truncation, inode reuse). Empty: none."},
        {"syslog.max_message_bytes", base::KeyType::bytes, "64KiB",
         "Longer messages are cut, flagged oversized and kept.", 480,
         static_cast<std::int64_t>(kMaxSyslogMessageBytes)},
        {"syslog.spool_quota", base::KeyType::bytes, "9700MB",
         "Size of the syslog spool; when full the oldest spool files are deleted first, as on the appliance.", 1 << 20,
         1LL << 50},
        {"syslog.spool_segment_bytes", base::KeyType::bytes, "16MiB", "Size of one spool file.", 4096, 1LL << 34},
    };
    return kKeys;
}

SpoolOptions make_spool_options(const base::Config& c, const std::string& dir) {
    SpoolOptions o;
    o.dir = dir;
    o.name = "syslog";
    o.quota_bytes = static_cast<std::uint64_t>(c.integer("syslog.spool_quota"));
    o.segment_max_bytes = static_cast<std::uint64_t>(c.integer("syslog.spool_segment_bytes"));
    return o;
}

}  // namespace hsmaudit::agent
