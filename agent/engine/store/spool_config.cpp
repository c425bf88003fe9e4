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
        {"syslog.spool_queue_bytes", base::KeyType::bytes, "16MiB",
         "Memory the spool may hold: messages received and not yet durable (each counted as its JSON line plus 128 "
         "bytes). When it is full, TCP connections and followed files are not read until it has drained to 3/4 "
         "(the senders are slowed down by TCP, nothing is dropped), and datagrams (UDP, unix socket) are dropped "
         "and counted (alert syslog.datagrams_dropped).",
         1 << 20, 1LL << 30},
        {"syslog.max_connections", base::KeyType::integer, "256",
         "TCP connections each TCP listener keeps open. At the limit a new connection replaces the one idle "
         "longest (no byte for 1 s); only when all are busy is it refused (alert syslog.connection_refused). Each "
         "takes a file descriptor: hsmauditd raises its soft RLIMIT_NOFILE to fit.",
         1, 100'000},
        {"syslog.max_connections_per_peer", base::KeyType::integer, "0",
         "TCP connections one source address may hold open per listener (the one idle longest of its own is "
         "replaced first). 0: no limit of its own (local senders all come from 127.0.0.1).",
         0, 100'000},
        {"syslog.tcp_idle_timeout", base::KeyType::duration, "10m",
         "A TCP connection that sends no byte for this long is closed (a sender reconnects when it has something "
         "to say). 0: never.",
         0, 7LL * 24 * 3600 * 1000},
    };
    return kKeys;
}

SpoolOptions make_spool_options(const base::Config& c, const std::string& dir) {
    SpoolOptions o;
    o.dir = dir;
    o.name = "syslog";
    o.quota_bytes = static_cast<std::uint64_t>(c.integer("syslog.spool_quota"));
    o.segment_max_bytes = static_cast<std::uint64_t>(c.integer("syslog.spool_segment_bytes"));
    o.queue_max_bytes = static_cast<std::uint64_t>(c.integer("syslog.spool_queue_bytes"));
    return o;
}

}  // namespace hsmaudit::agent
