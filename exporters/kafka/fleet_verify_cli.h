// The `--kafka` branch of `hsmaudit verify`: its options and its run, kept here so the CLI's
// main file only adds them (agent/cli/hsmaudit_main.cpp).
//
// Thread-safety: called from the CLI's main thread.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace hsmaudit::exporters::kafka {

struct FleetArgs {
    std::string brokers;
    std::string topic = "hsm.audit";
    std::string group;
    std::string keys_dir;
    bool from_beginning = false;
    double idle_timeout_s = 10;
    double stale_s = 0;
    std::vector<std::string> properties;  // k=v
    std::string properties_file;
    std::string secret_properties_file;
    unsigned jobs = 1;  // `verify --jobs`: threads verifying partitions (set by the CLI's main)
};

/// Adds --kafka, --topic, --group, --keys, --from-beginning, --idle-timeout, --stale,
/// --kafka-property, --kafka-properties-file, --kafka-secret-properties-file to `verify`.
void add_fleet_options(CLI::App& verify, FleetArgs& args);

/// Runs the fleet verification; prints the report (text or JSON) on stdout. Exit code: 0 every
/// appliance verified, 1 an integrity fault (or an appliance without key, or stale), 2 usage or I/O.
int run_fleet_verify(const FleetArgs& args, bool json);

}  // namespace hsmaudit::exporters::kafka
