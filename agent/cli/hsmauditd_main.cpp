// hsmauditd: the audit agent service.
//   hsmauditd -c FILE                 run (Type=notify under systemd)
//   hsmauditd -c FILE --check-config  validate the configuration and exit
//   hsmauditd --config-reference      print docs/CONFIG.md
// Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT finish the current batch and stop.
// Exit codes (the unit's RestartPreventExitStatus=2 relies on them):
//   0  clean stop (SIGTERM/SIGINT), or --check-config found the configuration valid
//   1  a start-up or run-time failure that may pass on retry: the module not reachable, the store
//      locked or unreadable, an address in use, an unexpected error
//   2  a usage or configuration error: a bad option, a configuration file that is invalid (never
//      worth a restart; --check-config finds every one: agent/daemon/agent_config.h)
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "agent/api/agent_health.h"
#include "agent/api/thread_guard.h"
#include "agent/cli/man_pages.h"
#include "agent/daemon/agent_config.h"
#include "agent/daemon/exporter_registry.h"
#include "agent/daemon/service.h"
#include "agent/engine/config_keys.h"
#include "base/journal_sink.h"
#include "base/logger.h"
#include "exporters/prometheus/endpoint.h"
#include "exporters/prometheus/errc.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::agent;

constexpr int kExitFailure = 1;  // start-up or run-time failure (may pass on retry)
constexpr int kExitUsage = 2;    // usage or configuration error

/// The exporter kinds built into this program (its registration list) and their keys.
ServicePlugins plugins() {
    return ServicePlugins{hsmaudit::exporters::builtin_exporters(), hsmaudit::exporters::component_config_keys()};
}

/// The one load path of --check-config, the start and SIGHUP (agent/daemon/agent_config.h).
Result<base::Config> load(const std::string& path) {
    return load_agent_config(path, plugins());
}

/// /health and /ready (docs/METRICS.md) from the service's status snapshot (any thread).
exporters::prometheus::HealthChecks health_checks(const Service& service) {
    auto answer = [](const HealthVerdict& v) { return exporters::prometheus::HealthAnswer{v.ok, v.reason}; };
    return {[&service, answer] { return answer(assess_liveness(service.status().get(), wall_clock_ms())); },
            [&service, answer] { return answer(assess_readiness(service.status().get(), wall_clock_ms())); }};
}

/// sd_notify wrapper: a no-op outside systemd (NOTIFY_SOCKET unset).
void notify(const std::string& state) {
    (void)sd_notify(0, state.c_str());
}

int run(int argc, char** argv) {
    CLI::App app{"hsmauditd: drains, verifies and stores the HSM's audit trail"};
    std::string config_path;
    bool check = false;
    bool reference = false;
    app.add_option("-c,--config", config_path, "YAML configuration file (docs/CONFIG.md)");
    app.add_flag("--check-config", check, "validate the configuration and exit");
    app.add_flag("--config-reference", reference, "print the configuration reference (docs/CONFIG.md) and exit");
    base::add_version_flag(app, "hsmauditd");
    if (base::emit_generated_help(argc, argv, app, hsmauditd_man_page(), std::cout)) return 0;
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }
    if (reference) {
        const auto keys = all_config_keys(plugins().keys);
        std::cout << base::config_reference_markdown(keys);
        return 0;
    }
    if (config_path.empty()) {
        std::cerr << "hsmauditd: give a configuration file with -c FILE (see config/hsmauditd.yaml)\n";
        return kExitUsage;
    }
    // Under systemd with stderr on journald (the service and its ExecStartPre --check-config): the
    // journal, with priorities and fields (chosen once, here, before any other thread logs).
    const bool journal = base::use_journal_if_connected(base::logger(), "hsmauditd");
    // A configuration error: at error priority in the journal (journalctl -p err), else stderr text.
    auto refuse = [journal](const std::string& message) {
        if (journal)
            base::logger().error("{}", message);
        else
            std::cerr << "hsmauditd: " << message << "\n";
        return kExitUsage;
    };
    auto config = load(config_path);
    if (!config) return refuse(config.error().message);
    if (check) {
        std::cout << config_path << ": configuration OK\n";
        return 0;
    }
    base::logger().set_level(spdlog::level::from_str(config->str("agent.log_level")));

    // Signals are taken synchronously by this thread only; every thread started later inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    std::optional<exporters::prometheus::EndpointOptions> metrics_options;
    if (config->boolean("metrics.enabled")) metrics_options = exporters::prometheus::make_endpoint_options(*config);
    auto service = Service::create(std::move(*config), plugins());
    if (!service) return refuse(service.error().describe());
    // The configuration was checked whole by load(): what fails from here may pass on retry.
    auto started = (*service)->start();
    if (!started) {
        base::logger().error("cannot start: {}", started.error().describe());
        notify("STATUS=start failed: " + started.error().describe());
        (*service)->stop();
        return kExitFailure;
    }
    // Metrics (docs/METRICS.md): a bad web config is a configuration error; an endpoint that cannot
    // listen is logged and the agent keeps draining (the module's ring matters more than metrics;
    // Prometheus' HsmauditDown/HsmauditMetricsAbsent alerts notice).
    std::unique_ptr<exporters::prometheus::MetricsEndpoint> metrics;
    if (metrics_options) {
        auto m = exporters::prometheus::MetricsEndpoint::start(*metrics_options, (*service)->probes(),
                                                               health_checks(**service));
        if (m) {
            metrics = std::move(*m);
            base::logger().info("serving metrics on {} (port {})", metrics_options->listen, metrics->port());
        } else if (m.error().code == exporters::prometheus::errc::bind_failed) {
            base::logger().error("metrics disabled: {}", m.error().describe());
        } else {
            base::logger().error("cannot start: {}", m.error().describe());
            notify("STATUS=start failed: " + m.error().describe());
            (*service)->stop();
            return kExitFailure;
        }
    }
    notify("READY=1\nSTATUS=" + *started);

    std::uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
    std::uint64_t main_loop_failures = 0;
    for (;;) {
        timespec timeout{0, 200'000'000};
        siginfo_t info{};
        const int sig = sigtimedwait(&signals, &info, &timeout);
        if (sig == SIGTERM || sig == SIGINT) break;
        // Last resort: an exception from a reload, the health check or the status file must not
        // end the agent (the drain and the exporters run on their own threads). Logged (the
        // first, then every 100th) and the loop goes on.
        try {
            if (sig == SIGHUP) {
                notify("RELOADING=1");
                auto next = load(config_path);
                if (!next) {
                    base::logger().error("reload refused, keeping the running configuration: {}", next.error().message);
                    notify("READY=1\nSTATUS=reload refused: " + next.error().message);
                } else {
                    auto r = (*service)->reload(std::move(*next));
                    if (r) {
                        base::logger().info("{}", *r);
                        notify("READY=1\nSTATUS=" + *r);
                    } else {
                        // A destination that cannot be built: nothing was applied.
                        base::logger().error("reload refused, keeping the running configuration: {}",
                                             r.error().describe());
                        notify("READY=1\nSTATUS=reload refused: " + r.error().describe());
                    }
                }
            }
            const std::int64_t now = wall_clock_ms();
            if (watchdog && (*service)->healthy(now, static_cast<std::int64_t>(watchdog_usec / 1000)))
                notify("WATCHDOG=1");
            // The status snapshot (exporters read it) each second, status.json every agent.status_interval.
            (*service)->tick(now);
            main_loop_failures = 0;
        } catch (const std::exception& e) {
            if (main_loop_failures++ % 100 == 0)
                base::logger().critical("main loop: unexpected exception, caught (the agent goes on): {}", e.what());
        } catch (...) {
            if (main_loop_failures++ % 100 == 0)
                base::logger().critical("main loop: unexpected exception, caught (the agent goes on)");
        }
    }
    notify("STOPPING=1");
    base::logger().info("stopping: finishing the current batch");
    metrics.reset();  // no scrape reads the components from here on
    (*service)->stop();
    (void)detail::run_guarded("hsmauditd (last status file)", [&] { (void)(*service)->write_status(); });
    return 0;
}

}  // namespace

// The last resort: an exception that escapes (out of memory, a bug) is exit status 1 (a run-time
// failure) with a message, never an abort.
int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        (void)std::fprintf(stderr, "hsmauditd: unexpected error: %s\n", e.what());
    } catch (...) {
        (void)std::fprintf(stderr, "hsmauditd: unexpected error\n");
    }
    return kExitFailure;
}
