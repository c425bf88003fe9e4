// hsmcore: the module emulator's command line (init, serve, status, load, drain, secret export, pubkey).
// Exit codes: 0 success, 1 the operation failed, 2 usage or I/O error.
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/program/program.h"
#include "hsmcore/appliance/appliance.h"
#include "hsmcore/cli/drain.h"
#include "hsmcore/cli/load.h"
#include "hsmcore/cli/signals.h"
#include "hsmcore/errc.h"
#include "hsmcore/host/control_server.h"
#include "hsmcore/host/module_host.h"
#include "hsmcore/module/module.h"
#include "hsmcore/ring/ring.h"
#include "mac/keys.h"
#include "mac/wrap.h"

namespace {

namespace fs = std::filesystem;
using namespace hsmaudit;
using json = nlohmann::json;

int fail(const Error& e, int code = 2) {
    (void)std::fprintf(stderr, "hsmcore: %s\n", e.describe().c_str());
    return code;
}

int cmd_init(const hsmcore::module::InitOptions& opt, const std::string& dir) {
    auto st = hsmcore::module::Module::init(dir, opt);
    if (!st) return fail(st.error());
    std::printf("module %s initialised in %s: ring %zu bytes, audit mask %s\n", opt.serial.c_str(), dir.c_str(),
                opt.ring_bytes, opt.audit_mask.c_str());
    std::printf("PINs for test clients are in %s/%s (mode 0600)\n", dir.c_str(), hsmcore::module::kClientPinsFile);
    return 0;
}

int cmd_serve(const std::string& dir, const std::string& syslog_dest, bool sync_commits) {
    hsmcore::cli::SignalStop signals;  // before any thread starts
    hsmcore::module::ModuleOptions mopt;
    mopt.ring.sync_each_commit = sync_commits;
    auto m = hsmcore::module::Module::open(dir, mopt);
    if (!m) return fail(m.error());
    (void)std::fprintf(stderr, "hsmcore: %s\n", (*m)->recovery().summary().c_str());
    std::unique_ptr<appliance::Appliance> app;
    if (!syslog_dest.empty()) {
        appliance::ApplianceOptions aopt;
        aopt.destination = syslog_dest;
        auto a = appliance::Appliance::start(aopt);
        if (!a) return fail(a.error());
        app = std::move(*a);
    }
    hsmcore::host::ControlServer::LinkObserver links;
    if (app) {
        links = [a = app.get()](bool up, const std::string& client) {
            if (up)
                a->ntls_link_up(client, "client");
            else
                a->ntls_link_down(client, "client", "connection closed");
        };
    }
    auto server = hsmcore::host::ControlServer::start(**m, (fs::path(dir) / hsmcore::host::kControlSocket).string(), 64,
                                                      std::move(links));
    if (!server) return fail(server.error());
    std::printf("serving module %s (boot %u) on %s\n", (*m)->serial().c_str(), (*m)->boot(),
                (fs::path(dir) / hsmcore::host::kControlSocket).c_str());
    (void)std::fflush(stdout);
    // hsmcore.service is Type=notify: the control socket accepts connections from here on, so units
    // ordered after it (hsmauditd.service) start against a module that is up. A no-op outside systemd.
    (void)sd_notifyf(0, "READY=1\nSTATUS=serving module %s (boot %u)", (*m)->serial().c_str(), (*m)->boot());
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, signals.token(), [] { return false; });
    (void)sd_notify(0, "STOPPING=1");
    (*server)->stop();
    if (app) app->stop();
    (void)std::fprintf(stderr, "hsmcore: stopped cleanly\n");
    return 0;
}

int cmd_status(const std::string& dir, bool as_json) {
    auto reader = hsmcore::ring::RingReader::open((fs::path(dir) / hsmcore::ring::kRingFile).string());
    if (!reader) return fail(reader.error());
    const auto s = reader->status();
    const bool running = s.writer_pid != 0 && ::kill(static_cast<pid_t>(s.writer_pid), 0) == 0;
    const auto& c = s.counters;
    if (as_json) {
        json j = {{"serial", s.serial},
                  {"running", running},
                  {"pid", running ? s.writer_pid : 0},
                  {"boot", s.boot},
                  {"epoch", s.epoch},
                  {"capacity_bytes", s.capacity},
                  {"reserve_bytes", s.reserve},
                  {"used_bytes", s.used_bytes},
                  {"used_records", s.records_used()},
                  {"blocked", s.blocked},
                  {"oldest_entry", s.oldest_entry},
                  {"next_entry", s.next_entry},
                  {"oldest_seq", s.oldest_seq},
                  {"next_seq", s.next_seq},
                  {"counters",
                   {{"operation_requests", c.op_requests},
                    {"operation_errors", c.op_errors},
                    {"crypto_requests", c.crypto_requests},
                    {"crypto_errors", c.crypto_errors},
                    {"critical_events", c.critical_events},
                    {"noncritical_events", c.noncritical_events},
                    {"refused_log_full", c.refused_log_full},
                    {"unlogged_events", c.unlogged_events}}}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("module %s, boot %u, epoch %llu, %s\n", s.serial.c_str(), s.boot,
                static_cast<unsigned long long>(s.epoch),
                running ? ("served by pid " + std::to_string(s.writer_pid)).c_str() : "not running");
    std::printf("ring: %llu of %llu bytes used (%.1f%%), reserve %llu, %s\n",
                static_cast<unsigned long long>(s.used_bytes), static_cast<unsigned long long>(s.capacity),
                100.0 * static_cast<double>(s.used_bytes) / static_cast<double>(s.capacity),
                static_cast<unsigned long long>(s.reserve), s.blocked ? "BLOCKED (log full)" : "not blocked");
    std::printf("unacknowledged: entries %llu..%llu, records %llu..%llu (%llu records)\n",
                static_cast<unsigned long long>(s.oldest_entry), static_cast<unsigned long long>(s.next_entry - 1),
                static_cast<unsigned long long>(s.oldest_seq), static_cast<unsigned long long>(s.next_seq - 1),
                static_cast<unsigned long long>(s.records_used()));
    std::printf(
        "counters: operation requests %llu, operation errors %llu, crypto requests %llu, crypto errors %llu, "
        "critical events %llu, non-critical events %llu, refused (log full) %llu, unlogged %llu\n",
        static_cast<unsigned long long>(c.op_requests), static_cast<unsigned long long>(c.op_errors),
        static_cast<unsigned long long>(c.crypto_requests), static_cast<unsigned long long>(c.crypto_errors),
        static_cast<unsigned long long>(c.critical_events), static_cast<unsigned long long>(c.noncritical_events),
        static_cast<unsigned long long>(c.refused_log_full), static_cast<unsigned long long>(c.unlogged_events));
    return 0;
}

int cmd_load(const hsmcore::cli::LoadOptions& opt, bool as_json) {
    hsmcore::cli::SignalStop signals;
    auto r = hsmcore::cli::run_load(opt, signals.token());
    if (!r) return fail(r.error());
    if (as_json) {
        json j = {{"ops_per_s", r->ops_per_s()},    {"ops", r->ops},       {"done", r->done},
                  {"refused_log_full", r->refused}, {"errors", r->errors}, {"lost_connections", r->lost},
                  {"elapsed_s", r->elapsed_s},      {"by_op", r->by_op}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf(
            "achieved %.0f ops/s: %llu ops done in %.2f s, %llu refused (log full), %llu errors, %llu "
            "connections lost\n",
            r->ops_per_s(), static_cast<unsigned long long>(r->done), r->elapsed_s,
            static_cast<unsigned long long>(r->refused), static_cast<unsigned long long>(r->errors),
            static_cast<unsigned long long>(r->lost));
    }
    return 0;
}

int cmd_drain(const hsmcore::cli::DrainOptions& opt) {
    hsmcore::cli::SignalStop signals;
    auto r = hsmcore::cli::run_drain(opt, signals.token());
    if (!r) return fail(r.error(), r.error().code == hsmcore::errc::io_error ? 2 : 1);
    std::printf("drained %llu entries (%llu records, %llu seals) into %s; acknowledged through entry %llu\n",
                static_cast<unsigned long long>(r->entries), static_cast<unsigned long long>(r->records),
                static_cast<unsigned long long>(r->seals), opt.out.c_str(),
                static_cast<unsigned long long>(r->acked_through));
    return 0;
}

int cmd_secret_export(const std::string& dir, const std::string& pass_file, const std::string& out, unsigned cost) {
    auto key = mac::load_audit_key((fs::path(dir) / mac::kAuditKeyFile).string());
    if (!key) return fail(key.error());
    auto pass = mac::read_passphrase_file(pass_file);
    if (!pass) return fail(pass.error());
    mac::WrapParams p;
    p.scrypt_n = 1ULL << cost;
    auto blob = mac::wrap_audit_key(*key, *pass, p);
    if (!blob) return fail(blob.error());
    auto st = base::write_file_atomic(out, *blob, 0600, true);
    if (!st) return fail(st.error());
    std::printf("wrapped audit secret written to %s\n", out.c_str());
    return 0;
}

int cmd_pubkey(const std::string& dir, const std::string& out) {
    auto pub = mac::load_audit_pub((fs::path(dir) / mac::kAuditPubFile).string());
    if (!pub) return fail(pub.error());
    auto st = base::write_file_atomic(out, pub->serialize(), 0644, true);
    if (!st) return fail(st.error());
    std::printf("audit public key written to %s\n", out.c_str());
    return 0;
}

/// hsmcore(8) beyond its option tables (base/program/program.h).
base::ManPage man_page() {
    base::ManPage page;
    page.name = "hsmcore";
    page.section = 8;
    page.summary = "the emulated HSM module and its NVRAM audit ring";
    page.sections = {
        {"RUNNING AS A SERVICE",
         "The package runs `hsmcore serve --dir /var/lib/hsmcore` as the system user hsmcore (hsmcore.service). "
         "The agent, hsmauditd(8), reads the ring file and connects to the control socket there as a member of "
         "the group hsmcore.",
         {}},
        {"EXIT STATUS",
         "",
         {{"0", "success; serve: stopped cleanly by SIGTERM or SIGINT"},
          {"1", "the operation failed"},
          {"2", "usage or I/O error"}}},
        {"SIGNALS", "", {{"SIGTERM, SIGINT", "serve, load, drain --follow: stop cleanly"}}},
        {"FILES",
         "",
         {{"/var/lib/hsmcore", "the module's state directory (ring file, keys, control socket)"},
          {"/var/lib/hsmcore/audit.key", "the audit secret (0600)"},
          {"/usr/lib/systemd/system/hsmcore.service", "the systemd unit"}}},
        {"SEE ALSO", "hsmauditd(8), hsmaudit(1)", {}},
    };
    return page;
}

int run(int argc, char** argv) {
    CLI::App app{"hsmcore: the emulated cryptographic module and its NVRAM audit ring"};
    app.require_subcommand(1);
    std::string dir;

    hsmcore::module::InitOptions iopt;
    auto* init = app.add_subcommand("init", "create a new module (ring, audit keys, partitions, roles)");
    init->add_option("--dir", dir, "module state directory")->required();
    init->add_option("--ring-size", iopt.ring_bytes, "ring file size in bytes")->capture_default_str();
    init->add_option("--reserve", iopt.reserve_bytes, "bytes below which the module blocks (0: 1/16 of the ring)");
    init->add_option("--serial", iopt.serial, "module serial")->capture_default_str();
    init->add_option("--audit-mask", iopt.audit_mask, "initial audit classes (all, none, first,manage,...)")
        ->capture_default_str();

    std::string syslog_dest;
    bool sync_commits = false;
    auto* serve = app.add_subcommand("serve", "run the module and its control socket until SIGTERM/SIGINT");
    serve->add_option("--dir", dir, "module state directory")->required();
    serve->add_option("--syslog", syslog_dest, "also emit the appliance's host syslog: unix:/path, udp:H:P, tcp:H:P");
    serve->add_flag("--sync", sync_commits, "msync every commit (power-loss durability; slower)");

    bool as_json = false;
    auto* status = app.add_subcommand("status", "ring capacity, use, blocked flag, sequence range, counters");
    status->add_option("--dir", dir, "module state directory")->required();
    status->add_flag("--json", as_json, "JSON output");

    hsmcore::cli::LoadOptions lopt;
    auto* load = app.add_subcommand("load", "drive a client workload against a serving module");
    load->add_option("--dir", lopt.dir, "module state directory")->required();
    load->add_option("--rate", lopt.rate, "operations per second (0: unthrottled)")
        ->required()
        ->check(CLI::Range(0.0, 1e7));
    load->add_option("--duration", lopt.duration_s, "seconds")->required()->check(CLI::Range(0.001, 86400.0));
    load->add_option("--mix", lopt.mix, "operation weights")->capture_default_str();
    load->add_option("--threads", lopt.threads, "client connections")->capture_default_str();
    load->add_option("--seed", lopt.seed, "workload seed")->capture_default_str();
    load->add_option("--done-log", lopt.done_log, "write 'SEQ EVENT' for every record of an operation reported done");
    load->add_flag("--json", as_json, "JSON output");

    hsmcore::cli::DrainOptions dopt;
    auto* drain = app.add_subcommand("drain", "write ring entries out as segment files and acknowledge them");
    drain->add_option("--dir", dopt.dir, "module state directory")->required();
    drain->add_option("--out", dopt.out, "directory for hsm_<serial>_<epoch>.log files")->required();
    drain->add_flag("--follow", dopt.follow, "keep draining until SIGTERM/SIGINT");
    drain->add_option("--seal-every", dopt.seal_every, "ask for a seal every N records (0: never)")
        ->capture_default_str();
    drain->add_flag("--seal-at-end", dopt.seal_at_end, "seal the last segment when caught up");

    std::string pass_file;
    std::string out;
    unsigned cost = 17;
    auto* secret = app.add_subcommand("secret", "the audit secret");
    secret->require_subcommand(1);
    auto* exp = secret->add_subcommand("export", "wrap the audit secret under a passphrase (for hsmaudit verify)");
    exp->add_option("--dir", dir, "module state directory")->required();
    exp->add_option("--passphrase-file", pass_file, "file whose first line is the passphrase (mode 0600)")->required();
    exp->add_option("--out", out, "wrapped secret to write (mode 0600)")->required();
    exp->add_option("--kdf-cost", cost, "scrypt cost: N = 2^cost (14-22)")
        ->capture_default_str()
        ->check(CLI::Range(14u, 22u));

    auto* pubkey = app.add_subcommand("pubkey", "write the audit public key (audit.pub) for seal checks");
    pubkey->add_option("--dir", dir, "module state directory")->required();
    pubkey->add_option("--out", out, "file to write")->required();

    base::add_version_flag(app, "hsmcore");
    if (base::emit_generated_help(argc, argv, app, man_page(), std::cout)) return 0;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (init->parsed()) return cmd_init(iopt, dir);
    if (serve->parsed()) return cmd_serve(dir, syslog_dest, sync_commits);
    if (status->parsed()) return cmd_status(dir, as_json);
    if (load->parsed()) return cmd_load(lopt, as_json);
    if (drain->parsed()) return cmd_drain(dopt);
    if (exp->parsed()) return cmd_secret_export(dir, pass_file, out, cost);
    if (pubkey->parsed()) return cmd_pubkey(dir, out);
    return 2;
}

}  // namespace

// The last resort: an exception that escapes (out of memory, a bug) is exit status 2 with a
// message, never an abort.
int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        (void)std::fprintf(stderr, "hsmcore: unexpected error: %s\n", e.what());
    } catch (...) {
        (void)std::fprintf(stderr, "hsmcore: unexpected error\n");
    }
    return 2;
}
