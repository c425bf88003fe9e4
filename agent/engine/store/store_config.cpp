// Configuration keys of the store, next to the code that reads them (make_store_options).
#include "agent/engine/config_keys.h"
#include "agent/engine/store/audit_store.h"

namespace hsmaudit::agent {

std::span<const base::KeySpec> store_config_keys() {
    static constexpr base::KeySpec kKeys[] = {
        {"store.encrypt", base::KeyType::boolean, "true",
         "Encrypt segments and archives at rest (AES-256-GCM, key derived from the audit secret)."},
    };
    return kKeys;
}

AuditStoreOptions make_store_options(const base::Config& c, const std::string& audit_dir) {
    AuditStoreOptions o;
    o.dir = audit_dir;
    o.encrypt = c.boolean("store.encrypt");
    return o;
}

}  // namespace hsmaudit::agent
