// hsmaudit: the operator's and auditor's command-line tool.
//   hsmaudit secret init    create an audit chain's keys (audit.key, audit.pub, audit.sign)
//   hsmaudit secret export  wrap the audit secret under a domain passphrase
//   hsmaudit sample         write a sample trail through the real chain writer
//   hsmaudit verify         verify segment files and archives of them offline
//   hsmaudit status         what the running agent reports (agent/tools/status.h)
//   hsmaudit tail [-f]      stored audit events, decrypted and formatted (agent/tools/tail.h)
//   hsmaudit tap DEST [-f]  what a destination is sent, rendered, without sending (agent/tools/tap.h)
//   hsmaudit fsck           check (and --repair) a stopped agent's store (agent/tools/fsck.h)
//   hsmaudit prove          Merkle inclusion / consistency proofs; verify-proof checks one (agent/tools/proof.h)
// Exit codes: 0 success / verified, 1 integrity fault found, 2 usage or I/O error.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "agent/cli/man_pages.h"
#include "agent/daemon/exporter_registry.h"
#include "agent/engine/sample.h"
#include "agent/engine/store/archiver.h"
#include "agent/engine/verify_output.h"
#include "agent/tools/commands.h"
#include "agent/tools/proof.h"
#include "agent/tools/tap.h"
#include "base/files.h"
#include "base/json_text.h"
#include "exporters/kafka/fleet_verify_cli.h"
#include "mac/anchors.h"
#include "mac/keys.h"
#include "mac/record.h"
#include "mac/verifier.h"
#include "mac/wrap.h"

namespace {

namespace fs = std::filesystem;
using namespace hsmaudit;

constexpr int kExitOk = 0;
constexpr int kExitFault = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnproven = 3;  // verify: no fault, but records nothing authenticated (docs/FORMAT.md 3.1)

int fail(const std::string& message) {
    std::cerr << "hsmaudit: " << message << "\n";
    return kExitUsage;
}

int cmd_secret_init(const std::string& dir) {
    auto keys = mac::generate_chain_keys();
    if (!keys) return fail(keys.error().describe());
    if (auto st = mac::write_key_dir(dir, *keys); !st) return fail(st.error().describe());
    std::cout << "created audit chain " << mac::hex_encode(keys->key.chain()) << " in " << dir << "\n"
              << "  " << (fs::path(dir) / mac::kAuditKeyFile).string() << "   audit secret (0600): verifies records\n"
              << "  " << (fs::path(dir) / mac::kAuditPubFile).string() << "   public key: verifies seals\n"
              << "  " << (fs::path(dir) / mac::kAuditSignFile).string() << "  signing key (0600): the module's\n";
    return kExitOk;
}

int cmd_secret_export(const std::string& dir, const std::string& pass_file, const std::string& out, unsigned cost) {
    if (cost < 14 || cost > 22) return fail("--kdf-cost must be between 14 and 22");
    auto key = mac::load_audit_key((fs::path(dir) / mac::kAuditKeyFile).string());
    if (!key) return fail(key.error().describe());
    auto pass = mac::read_passphrase_file(pass_file);
    if (!pass) return fail(pass.error().describe());
    mac::WrapParams params;
    params.scrypt_n = 1ULL << cost;
    auto blob = mac::wrap_audit_key(*key, *pass, params);
    mac::secure_zero(pass->data(), pass->size());
    if (!blob) return fail(blob.error().describe());
    if (auto st = base::write_file_atomic(out, *blob, 0600, false); !st) return fail(st.error().describe());
    std::cout << "wrapped the audit secret of chain " << mac::hex_encode(key->chain()) << " into " << out << "\n";
    return kExitOk;
}

int cmd_sample(const std::string& dir, const std::string& out, const agent::SampleOptions& opt) {
    auto key = mac::load_audit_key((fs::path(dir) / mac::kAuditKeyFile).string());
    if (!key) return fail(key.error().describe());
    auto signer = mac::load_signing_key((fs::path(dir) / mac::kAuditSignFile).string());
    if (!signer) return fail(signer.error().describe());
    auto paths = agent::write_sample_trail(*key, *signer, out, opt);
    if (!paths) return fail(paths.error().describe());
    const std::uint64_t sealed = paths->size() - 1;
    std::cout << "wrote " << opt.records << " records in " << paths->size() << " segments (" << sealed
              << " sealed, 1 open) to " << out << "\n";
    return kExitOk;
}

struct VerifyArgs {
    std::string key_file;
    std::string wrapped_file;
    std::string pass_file;
    std::string pub_file;
    bool require_sealed = false;
    std::string chain;
    std::string serial;
    bool accept_unproven_tail = false;
    std::vector<std::string> anchors;
    bool all_chains = false;
    bool json = false;
    bool quiet = false;
    unsigned jobs = 0;  // 0: the number of online CPUs
    std::vector<std::string> paths;
};

/// `--jobs` unless given: the CPUs online (at least 1).
unsigned online_cpus() {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1U : static_cast<unsigned>(std::min(n, 256L));
}

int cmd_verify(const VerifyArgs& a) {
    mac::VerifyOptions opt;
    opt.require_sealed = a.require_sealed;
    if (!a.chain.empty()) {
        mac::ChainId id{};
        if (a.chain.size() != 2 * id.size() || !mac::hex_decode(a.chain, id))
            return fail("--chain: give the chain id as 32 lowercase hex digits");
        opt.expect_chain = id;
    }
    if (!a.serial.empty()) opt.expect_serial = a.serial;
    opt.all_chains = a.all_chains;
    opt.jobs = a.jobs == 0 ? online_cpus() : a.jobs;
    if (auto st = mac::load_anchor_files(a.anchors, opt); !st) return fail(st.error().describe());
    auto secret = agent::tools::load_audit_secret(a.key_file, a.wrapped_file, a.pass_file);
    if (!secret) return fail(secret.error().describe());
    if (*secret) opt.key.emplace(std::move(**secret));
    if (!a.pub_file.empty()) {
        auto pub = mac::load_audit_pub(a.pub_file);
        if (!pub) return fail(pub.error().describe());
        if (opt.key && pub->chain != opt.key->chain())
            return fail(a.pub_file + " is for chain " + mac::hex_encode(pub->chain) + ", the audit key for chain " +
                        mac::hex_encode(opt.key->chain()));
        opt.pub.emplace(std::move(*pub));
    }
    if (!opt.key && !opt.pub) return fail("give --key, --wrapped-key or --pubkey");
    const bool tty = !a.json && !a.quiet && ::isatty(STDERR_FILENO) == 1;
    if (tty) {
        opt.progress = [](std::uint64_t done, std::uint64_t total) {
            (void)std::fprintf(stderr, "\rverifying: %llu of %llu MiB", static_cast<unsigned long long>(done >> 20),
                               static_cast<unsigned long long>(total >> 20));
            (void)std::fflush(stderr);
        };
    }
    // Each segment encrypted at rest is read through two buffers of a chunk's size (1-2 MiB; reused
    // across the segment's chunks). glibc's default thresholds map such blocks fresh from the kernel
    // (mmap) and unmap them when the segment ends, so every segment faults ~3 MiB of pages in again:
    // 500,000 records in 5 segments took 10,000 page faults and 0.54 s against 2,550 and 0.35 s
    // with these settings (strace -k: 35 mmaps, all from the two buffers). This short-lived process
    // keeps them in its heap instead.
    (void)::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)::mallopt(M_TRIM_THRESHOLD, 512 << 20);
    const agent::TarExpander archives;  // .tar/.tgz archives of segments, alongside loose segment files
    opt.containers = &archives;
    auto report = mac::verify_paths(a.paths, opt);
    if (tty) (void)std::fprintf(stderr, "\r\033[K");
    if (!report) return fail(report.error().describe());
    if (a.json)
        std::cout << base::json_text(agent::render_report_json(*report)) << "\n";
    else if (!a.quiet)
        std::cout << agent::render_report_text(*report);
    if (!report->verified()) return kExitFault;
    if (!report->proven() && !a.accept_unproven_tail) {
        if (!a.quiet && !a.json)
            std::cerr << "hsmaudit: " << report->unproven_records
                      << " records are not authenticated (the open tail, without the audit secret): exit status 3;"
                         " verify with --key, or accept them with --accept-unproven-tail\n";
        return kExitUnproven;
    }
    return kExitOk;
}

int run(int argc, char** argv) {
    CLI::App app{
        "hsmaudit: audit chain tools for the HSM audit agent (exit 0 ok, 1 integrity fault, 2 usage or I/O error, "
        "3 verify: records not authenticated; status: 0 healthy, 1 unhealthy, 3 not running)"};
    app.require_subcommand(1);

    auto* secret = app.add_subcommand("secret", "create and export audit chain keys");
    secret->require_subcommand(1);
    std::string dir;
    auto* init = secret->add_subcommand("init", "create an audit secret and a signing key pair in --dir");
    init->add_option("--dir", dir, "directory for audit.key, audit.pub, audit.sign")->required();
    std::string pass_file, out;
    unsigned cost = 17;
    auto* exp = secret->add_subcommand("export", "wrap the audit secret under a domain passphrase");
    exp->add_option("--dir", dir, "directory holding audit.key")->required();
    exp->add_option("--passphrase-file", pass_file, "file whose first line is the passphrase (mode 0600)")->required();
    exp->add_option("--out", out, "wrapped secret to write (mode 0600)")->required();
    exp->add_option("--kdf-cost", cost, "scrypt cost: N = 2^cost, r = 8, p = 1 (14-22)")->capture_default_str();

    agent::SampleOptions sopt;
    std::string start_time;
    auto* sample = app.add_subcommand("sample", "write a realistic sample trail through the chain writer");
    sample->add_option("--dir", dir, "key directory (from 'secret init')")->required();
    sample->add_option("--records", sopt.records, "records to write")->required()->check(CLI::Range(1ULL, 1ULL << 40));
    sample->add_option("--segment-records", sopt.segment_records, "seal after this many records")
        ->required()
        ->check(CLI::Range(1ULL, 1ULL << 40));
    sample->add_option("--out", out, "directory for the segment files")->required();
    sample->add_option("--serial", sopt.serial, "module serial")->capture_default_str();
    sample->add_option("--seed", sopt.seed, "workload seed")->capture_default_str();
    sample->add_flag("--encrypt", sopt.encrypt,
                     "encrypt the segments at rest as the agent does by default (store.encrypt)");
    sample->add_option("--start-time", start_time, "time of the first record, YYYY-MM-DDTHH:MM:SS.mmmZ");

    VerifyArgs va;
    auto* verify = app.add_subcommand("verify", "verify segment files offline");
    verify->add_option("--key", va.key_file, "audit.key: checks every record MAC and every seal");
    verify->add_option("--wrapped-key", va.wrapped_file, "a wrapped audit secret (from 'secret export')");
    verify->add_option("--passphrase-file", va.pass_file, "passphrase for --wrapped-key (mode 0600)");
    verify->add_option("--pubkey", va.pub_file, "audit.pub: checks seal signatures and digests");
    verify->add_flag("--require-sealed", va.require_sealed, "treat an unsealed newest segment as a fault");
    verify->add_option("--chain", va.chain, "the chain id the trail must be of (32 hex digits): others are faults");
    verify->add_option("--serial", va.serial, "the module serial every segment must name: others are faults");
    verify->add_flag("--accept-unproven-tail", va.accept_unproven_tail,
                     "exit 0, not 3, when the only records not authenticated are the open tail's (--pubkey)");
    verify
        ->add_option("--anchors", va.anchors,
                     "files of signed chain-head checkpoints kept off the box (the agent's checkpoints.log, or a "
                     "SIEM export holding @checkpoint lines): the trail must reach each with the same MAC; other "
                     "lines are skipped and other chains' checkpoints ignored (both counted)")
        ->allow_extra_args(false);  // one file per --anchors (repeat it): the paths stay positional
    verify->add_flag("--all-chains", va.all_chains,
                     "list the checkpoints of other chains found in the --anchors files (always ignored and counted)");
    verify->add_flag("--json", va.json, "machine-readable report on stdout");
    verify->add_flag("-q,--quiet", va.quiet, "no output; the exit code tells");
    verify
        ->add_option("-j,--jobs", va.jobs,
                     "segments verified at once, on as many threads (default: the CPUs online; 1: one thread); "
                     "the report is the same for any value")
        ->check(CLI::Range(1U, 256U));
    verify->add_option("paths", va.paths, "segment files, archives of segments (.tar, .tgz) or directories");
    exporters::kafka::FleetArgs fleet_args;  // --kafka: verify a fleet from a Kafka topic (docs/KAFKA.md)
    exporters::kafka::add_fleet_options(*verify, fleet_args);

    // A full agent configuration names destinations: the tools accept the keys of every kind built in.
    const auto plugin_keys = exporters::component_config_keys();
    agent::tools::StoreArgs status_args;
    status_args.plugin_keys = plugin_keys;
    auto* status = app.add_subcommand(
        "status",
        "what the running agent reports: ring, drain, store, alerts (exit 0 healthy, 1 running but unhealthy, 2 usage "
        "or unreadable status, 3 not running)");
    status->add_option("--state-dir", status_args.state_dir, "the agent's state directory");
    status->add_option("-c,--config", status_args.config, "the agent's configuration file (for agent.state_dir)");
    status->add_flag("--json", status_args.json, "machine-readable output");

    agent::tools::TailArgs tail_args;
    tail_args.plugin_keys = plugin_keys;
    auto* tail = app.add_subcommand("tail", "print stored audit events, decrypted and formatted");
    tail->add_option("--state-dir", tail_args.state_dir, "the agent's state directory");
    tail->add_option("-c,--config", tail_args.config, "the agent's configuration file");
    tail->add_option("--key", tail_args.key, "audit.key (default: the configuration's audit key)");
    tail->add_option("-n,--lines", tail_args.lines, "print the last N records first")->capture_default_str();
    tail->add_flag("-f,--follow", tail_args.follow, "keep printing new records, across segment rotation");
    tail->add_flag("--json", tail_args.json, "one JSON object per record");

    agent::tools::TapArgs tap_args;
    tap_args.plugin_keys = plugin_keys;
    tap_args.factories = exporters::builtin_exporters();
    auto* tap = app.add_subcommand(
        "tap",
        "print what a destination is sent, rendered as its exporter renders it (format, syslog header, filters), "
        "one message per line, without sending anything or moving its cursor (exit 0 shown, 1 part of the store "
        "held at damage, 2 usage, configuration or I/O error, or an unknown destination)");
    tap->add_option("destination", tap_args.destination, "the destination's name (exporters.<name>)")->required();
    tap->add_option("-c,--config", tap_args.config, "the agent's configuration file")->required();
    tap->add_option("--key", tap_args.key, "audit.key (default: the configuration's audit key)");
    auto* tap_last =
        tap->add_option("-n,--last,--lines", tap_args.last, "print the last N messages of each stream first")
            ->capture_default_str();
    tap->add_flag("--from-start", tap_args.from_start, "print everything the store holds first")->excludes(tap_last);
    tap->add_flag("-f,--follow", tap_args.follow, "keep printing what is stored, as the destination would be sent it");
    tap->add_option("--stream", tap_args.streams,
                    "only these of the destination's streams (audit, syslog, alerts, checkpoints; repeat or "
                    "comma-separate)")
        ->allow_extra_args(false);
    tap->add_flag("--raw", tap_args.raw,
                  "the exact bytes of each message, then LF (default: control bytes shown as \\xNN, safe for a "
                  "terminal)");

    agent::tools::FsckArgs fsck_args;
    fsck_args.plugin_keys = plugin_keys;
    auto* fsck =
        app.add_subcommand("fsck", "check a stopped agent's store; --repair fixes it (exit 0 clean, 1 faults)");
    fsck->add_option("--state-dir", fsck_args.state_dir, "the agent's state directory");
    fsck->add_option("-c,--config", fsck_args.config, "the agent's configuration file");
    fsck->add_option("--key", fsck_args.key, "audit.key (default: the configuration's audit key)");
    fsck->add_flag("--repair", fsck_args.repair, "repair: cut uncommitted bytes, move damaged files to quarantine/");
    fsck->add_flag("--json", fsck_args.json, "machine-readable output");

    // Transparency-log proofs (docs/FORMAT.md section 10): agent/tools/proof.h.
    agent::tools::ProveArgs prove_args;
    auto* prove =
        app.add_subcommand("prove", "an inclusion proof for one record, or a consistency proof, from a trail");
    prove->add_option("--key", prove_args.key_file, "audit.key (reads the agent's encrypted store)");
    prove->add_option("--wrapped-key", prove_args.wrapped_file, "a wrapped audit secret");
    prove->add_option("--passphrase-file", prove_args.pass_file, "passphrase for --wrapped-key");
    prove->add_option("--pubkey", prove_args.pub_file, "audit.pub (plain segments)");
    prove->add_option("--seq", prove_args.seq, "inclusion: the record's sequence number");
    prove->add_option("--event-id", prove_args.event_id, "inclusion: the record's event id <serial>-<boot>-<seq>");
    prove->add_option("--checkpoint", prove_args.checkpoint,
                      "signed tree head to prove against: a note, or a file of @treehead lines (the newest is used)");
    prove->add_option("--size", prove_args.size, "or the tree size to prove against (default: the whole trail)");
    prove->add_option("--old-checkpoint", prove_args.old_checkpoint,
                      "consistency: the older signed tree head (a note, or a file of @treehead lines: the newest)");
    prove->add_option("--old-size", prove_args.old_size, "consistency: or the older tree size");
    prove->add_option("--sign-key", prove_args.sign_key, "audit.sign: sign tree heads no checkpoint signs");
    prove->add_option("-o,--out", prove_args.out, "proof file to write (default: stdout)");
    prove->add_option("paths", prove_args.paths, "segment files, archives or directories");
    agent::tools::VerifyProofArgs vp_args;
    auto* verify_proof = app.add_subcommand("verify-proof", "check a proof offline (exit 0 valid, 1 invalid)");
    verify_proof->add_option("--pubkey", vp_args.pub_file, "audit.pub");
    verify_proof->add_option("--vkey", vp_args.vkey, "or the note verifier key (the string, or a file)");
    verify_proof
        ->add_option("--checkpoint", vp_args.checkpoints, "signed tree heads for heads the proof does not embed")
        ->allow_extra_args(false);
    verify_proof->add_flag("-q,--quiet", vp_args.quiet, "no output; the exit code tells");
    verify_proof->add_option("proof", vp_args.proof_file, "the proof file")->required();

    base::add_version_flag(app, "hsmaudit");
    if (base::emit_generated_help(argc, argv, app, agent::hsmaudit_man_page(), std::cout)) return kExitOk;
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }

    if (*init) return cmd_secret_init(dir);
    if (*exp) return cmd_secret_export(dir, pass_file, out, cost);
    if (*sample) {
        if (!start_time.empty()) {
            auto t = mac::parse_time(start_time);
            if (!t) return fail("--start-time: " + t.error().message);
            sopt.start_time_ms = *t;
        }
        return cmd_sample(dir, out, sopt);
    }
    if (*verify && !fleet_args.brokers.empty()) {
        fleet_args.jobs = va.jobs == 0 ? online_cpus() : va.jobs;
        return exporters::kafka::run_fleet_verify(fleet_args, va.json);
    }
    if (*verify && va.paths.empty()) return fail("verify: give segment files or directories (or --kafka)");
    if (*verify) return cmd_verify(va);
    if (*status) return agent::tools::run_status(status_args);
    if (*tail) return agent::tools::run_tail(tail_args);
    if (*tap) return agent::tools::run_tap(tap_args);
    if (*fsck) return agent::tools::run_fsck(fsck_args);
    if (*prove) return agent::tools::run_prove(prove_args);
    if (*verify_proof) return agent::tools::run_verify_proof(vp_args);
    return kExitUsage;
}

}  // namespace

// The last resort: an exception that escapes (out of memory, a bug) is exit status 2 with a
// message, never an abort.
int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        (void)std::fprintf(stderr, "hsmaudit: unexpected error: %s\n", e.what());
    } catch (...) {
        (void)std::fprintf(stderr, "hsmaudit: unexpected error\n");
    }
    return 2;
}
