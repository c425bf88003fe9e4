// Configuration keys of archiving and retention, next to the code that reads them
// (make_archiver_options, make_retention_options).
#include "agent/engine/config_keys.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/store/retention.h"

namespace hsmaudit::agent {

std::span<const base::KeySpec> archive_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"archive.interval", base::KeyType::duration, "1h",
         "Bundle the sealed segments of ready_for_archive/ into an archive (audit-<serial>-<first epoch>-<last "
         "epoch>.tgz, or .tar when segments are encrypted at rest) this often.",
         1'000, 7LL * 24 * 3'600'000},
        {"archive.max_segments", base::KeyType::integer, "64",
         "Bundle at once, without waiting for archive.interval, when more than this many sealed segments wait.", 1,
         1'000'000},
        {"archive.compress", base::KeyType::boolean, "true",
         "Compress archives with gzip (.tgz). Ignored for segments encrypted at rest: ciphertext does not compress, "
         "so they are stored as they are in a .tar."},
        {"store.quota", base::KeyType::bytes, "220GB",
         "Quota of the export area (open segment, ready_for_archive/, archive/). At the quota the oldest archives "
         "that every exporter has delivered are deleted; if none may be (no exporter configured, or not delivered "
         "yet) the agent alerts and stops acknowledging, so the module blocks rather than lose records.",
         1 << 20, 1LL << 50},
        {"store.quota_warning", base::KeyType::ratio, "0.9",
         "Alert (warning) when records that may not be deleted fill this fraction of store.quota; also where "
         "deletion stops once started."},
        {"store.quota_check_interval", base::KeyType::duration, "5s", "How often the export area is measured.", 100,
         3'600'000},
        {"store.min_free", base::KeyType::bytes, "1MiB",
         "Free space the file system of the store must keep: below it (statvfs, checked with the quota) the agent "
         "alerts store.disk_full and stops acknowledging, so the module blocks rather than lose records; "
         "acknowledgements resume once twice this is free.",
         0, 1LL << 50},
    };
    return kKeys;
}

ArchiverOptions make_archiver_options(const base::Config& c, const std::string& audit_dir) {
    ArchiverOptions o;
    o.audit_dir = audit_dir;
    o.interval = std::chrono::milliseconds(c.integer("archive.interval"));
    o.max_segments = static_cast<std::size_t>(c.integer("archive.max_segments"));
    o.compress = c.boolean("archive.compress");
    return o;
}

RetentionOptions make_retention_options(const base::Config& c, const std::string& audit_dir) {
    RetentionOptions o;
    o.audit_dir = audit_dir;
    o.quota_bytes = static_cast<std::uint64_t>(c.integer("store.quota"));
    o.warning_ratio = c.ratio("store.quota_warning");
    o.interval = std::chrono::milliseconds(c.integer("store.quota_check_interval"));
    o.min_free_bytes = static_cast<std::uint64_t>(c.integer("store.min_free"));
    return o;
}

}  // namespace hsmaudit::agent
