// Turns appliance happenings (NTLS links, logins, service restarts, sensor events) into syslog records.
#pragma once

#include <string>
#include <string_view>

#include "hsmcore/appliance/sensor_simulation.h"
#include "hsmcore/appliance/syslog_format.h"

namespace hsmaudit::appliance {

/// The enterprise number in our SD-IDs: 32473 is reserved for documentation (RFC 5612).
inline constexpr std::string_view kSdEnterprise = "32473";

/// Process ids the emulated host services log with (stable so tests and dashboards can rely on them).
/// A value type.
struct ProcessIds {
    int ntls = 1234;
    int lunash = 2345;
    int ipmievd = 811;
    int smartd = 812;
    int systemd = 1;
};

/// Which appliance role logged in (FACTS.md: admin, operator, monitor, audit).
enum class LoginRole : std::uint8_t { admin, operator_, monitor, audit };

/// Builds the appliance's host syslog messages, in the spirit of the vendor's (NTLS, lunash, ipmievd,
/// smartd; see docs in FACTS.md), each with an RFC 5424 structured-data element that carries the facts
/// so a collector need not parse the text (the vendor warns that texts change between releases).
/// Thread-safety: const member functions only after construction; safe to share between threads.
class ApplianceEvents {
public:
    ApplianceEvents(std::string hostname, Clock clock, ProcessIds pids = {});

    /// NTLS service start ("info : 0 : Starting up NTLS........").
    SyslogRecord ntls_startup() const;
    /// An NTLS client connected (link up) or went away (link down) - `reason` e.g. "closed by peer".
    SyslogRecord ntls_link_up(std::string_view client_address, std::string_view client_name) const;
    SyslogRecord ntls_link_down(std::string_view client_address, std::string_view client_name,
                                std::string_view reason) const;
    /// A login on the appliance shell; failed ones read "HSM Admin Login: incorrect password or PED key".
    SyslogRecord login(LoginRole role, std::string_view user, std::string_view from, bool success) const;
    /// A host service restarted ("ntls", "cbs", "snmpd", ...), by whom ("admin", "watchdog").
    SyslogRecord service_restart(std::string_view service, std::string_view by) const;
    /// A sensor event from SensorSimulation::tick. Severity: warning/critical when asserted, notice when
    /// cleared, informational for a reading change (critical readings stay critical).
    SyslogRecord sensor(const SensorEvent& event) const;

private:
    SyslogRecord base(Facility f, Severity s, std::string_view app, int pid, std::string_view msgid) const;

    std::string hostname_;
    Clock clock_;
    ProcessIds pids_;
};

const char* to_string(LoginRole role) noexcept;

}  // namespace hsmaudit::appliance
