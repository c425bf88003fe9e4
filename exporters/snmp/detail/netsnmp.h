// net-snmp as a library, for exporters/snmp only (detail/: no other module includes it).
//
// net-snmp keeps process-wide state (its default store, the USM user list, the engine-time cache,
// the transport registry); NetSnmpLibrary is the one object that initializes it, once per process,
// with everything that would read or write files outside the agent's control switched off: no
// snmp.conf, no persistent state under /var/lib/snmp, no MIB files (the exporter sends numeric
// OIDs). Its log goes to the agent's log. It is never shut down (other exporters may still use it;
// the process exit releases it).
//
// Thread-safety: net-snmp is built without --enable-reentrant (Debian's NETSNMP_REENTRANT is
// unset), and even its single-session API (snmp_sess_*) touches process-wide state: the request-id
// counters (snmp_pdu_create), the USM user list and the engine-time cache (snmp_sess_open,
// set_enginetime, every v3 send and receive), the transport list, snmp_errno and the static buffer
// of snmp_api_errstring. Two exporters (each on its own runner thread) must therefore never be
// inside net-snmp at the same time. Because that state is the process's, so is the lock: it is a
// member of the process's one NetSnmpLibrary (instance()), the one place it lives, and every
// net-snmp call holds lock(). It is recursive: net-snmp calls back into the sender (the inform
// callback) while it is held, and the deleters below take it whether or not their owner already
// holds it. Hold it briefly: the sender waits for responses unlocked; the one wait under it is
// a v3 inform session's engine discovery inside snmp_sess_open (bounded by timeout x (retries+1)).
// Sessions are opened with the single-session API, each used by one thread at a time.
#pragma once

// net-snmp's headers need this order.
// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
// clang-format on

#include <memory>
#include <mutex>

namespace hsmaudit::exporters::snmp::detail {

class NetSnmpLibrary {
public:
    /// The process's instance; the first call (from any thread) initializes net-snmp.
    static NetSnmpLibrary& instance();

    /// Held around every net-snmp call (see above).
    [[nodiscard]] std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock(mutex_); }

    NetSnmpLibrary(const NetSnmpLibrary&) = delete;
    NetSnmpLibrary& operator=(const NetSnmpLibrary&) = delete;

private:
    NetSnmpLibrary();
    ~NetSnmpLibrary() = default;

    std::recursive_mutex mutex_;
};

struct PduDeleter {
    void operator()(netsnmp_pdu* p) const noexcept {
        if (p == nullptr) return;
        auto lock = NetSnmpLibrary::instance().lock();
        snmp_free_pdu(p);
    }
};
using UniquePdu = std::unique_ptr<netsnmp_pdu, PduDeleter>;

/// A session of the single-session API (snmp_sess_open); closed by the destructor.
struct SessionDeleter {
    void operator()(void* s) const noexcept {
        if (s == nullptr) return;
        auto lock = NetSnmpLibrary::instance().lock();
        snmp_sess_close(s);
    }
};
using UniqueSession = std::unique_ptr<void, SessionDeleter>;

}  // namespace hsmaudit::exporters::snmp::detail
