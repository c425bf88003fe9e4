// net-snmp as a library, for exporters/snmp only (detail/: no other module includes it).
//
// net-snmp keeps process-wide state (its default store, the USM user list, the engine-time cache,
// the transport registry); NetSnmpLibrary is the one object that initializes it, once per process,
// with everything that would read or write files outside the agent's control switched off: no
// snmp.conf, no persistent state under /var/lib/snmp, no MIB files (the exporter sends numeric
// OIDs). Its log goes to the agent's log. It is never shut down (other exporters may still use it;
// the process exit releases it).
//
// Thread-safety: NetSnmpLibrary::ensure() may be called from any thread (std::call_once). Sessions
// are opened with the single-session API (snmp_sess_*), each used by one thread at a time.
#pragma once

// net-snmp's headers need this order.
// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
// clang-format on

#include <memory>

namespace hsmaudit::exporters::snmp::detail {

class NetSnmpLibrary {
public:
    /// Initializes net-snmp once for the process.
    static void ensure();
};

struct PduDeleter {
    void operator()(netsnmp_pdu* p) const noexcept {
        if (p != nullptr) snmp_free_pdu(p);
    }
};
using UniquePdu = std::unique_ptr<netsnmp_pdu, PduDeleter>;

/// A session of the single-session API (snmp_sess_open); closed by the destructor.
struct SessionDeleter {
    void operator()(void* s) const noexcept {
        if (s != nullptr) snmp_sess_close(s);
    }
};
using UniqueSession = std::unique_ptr<void, SessionDeleter>;

}  // namespace hsmaudit::exporters::snmp::detail
