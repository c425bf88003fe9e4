#include "agent/cli/man_pages.h"

namespace hsmaudit::agent {

base::ManPage hsmauditd_man_page() {
    base::ManPage page;
    page.name = "hsmauditd";
    page.section = 8;
    page.summary = "the HSM audit agent: drains, verifies and stores the module's audit trail";
    page.sections = {
        {"RUNNING AS A SERVICE",
         "The package runs hsmauditd as the system user hsmaudit under systemd (hsmauditd.service, "
         "Type=notify): ExecStartPre checks the configuration with --check-config, SIGHUP (systemctl reload) "
         "applies a changed configuration, SIGTERM (systemctl stop) finishes the current batch and exits 0. "
         "The module emulator runs as hsmcore.service.",
         {}},
        {"EXIT STATUS",
         "",
         {{"0", "clean stop (SIGTERM or SIGINT), or --check-config found the configuration valid"},
          {"1",
           "a start-up or run-time failure that may pass on retry: the module is not reachable, the store is "
           "locked, a port cannot be bound"},
          {"2", "usage or configuration error: the file is invalid and a restart will not help"}}},
        {"SIGNALS",
         "",
         {{"SIGHUP", "reload the configuration; a broken file is refused and the running configuration kept"},
          {"SIGTERM, SIGINT", "finish and commit the current batch, then exit 0"}}},
        {"FILES",
         "",
         {{"/etc/hsmaudit/hsmauditd.yaml", "the configuration (keys: /usr/share/doc/hsmaudit/CONFIG.md)"},
          {"/var/lib/hsmaudit", "the agent's state: store, archives, cursors, alerts, status.json"},
          {"/var/lib/hsmcore", "the module's directory (ring file, control socket) in connect mode"},
          {"/run/hsmaudit", "runtime files (sockets)"},
          {"/usr/lib/systemd/system/hsmauditd.service", "the systemd unit"}}},
        {"SEE ALSO", "hsmaudit(1), hsmcore(8), systemctl(1), journalctl(1)", {}},
    };
    return page;
}

base::ManPage hsmaudit_man_page() {
    base::ManPage page;
    page.name = "hsmaudit";
    page.section = 1;
    page.summary = "audit chain tools: keys, offline verification, proofs, the running agent's status and store";
    page.sections = {
        {"EXIT STATUS",
         "",
         {{"0", "success; verify: the trail verified; status: the agent runs and is healthy"},
          {"1",
           "an integrity fault was found (verify, fsck; verify-proof: the proof is invalid); status: the agent "
           "runs but is unhealthy (the reasons are printed); tap: a stream was held at damage in the store (named "
           "on stderr; what could be read was shown)"},
          {"2",
           "usage or I/O error; status: status.json is damaged or not the agent's; tap: also a configuration "
           "error, an unknown destination (the configured ones are named) or a kind that renders no message "
           "(snmp)"},
          {"3",
           "verify: no fault, but records are not authenticated (the open tail, checked without the audit "
           "secret); status: the agent is not running (no status file, its process gone, or the file stale)"}}},
        {"FILES",
         "",
         {{"/etc/hsmaudit/hsmauditd.yaml", "the agent's configuration, read by status, tail, tap and fsck with -c"},
          {"/var/lib/hsmaudit", "the agent's state directory"}}},
        {"SEE ALSO", "hsmauditd(8), hsmcore(8)", {}},
    };
    return page;
}

}  // namespace hsmaudit::agent
