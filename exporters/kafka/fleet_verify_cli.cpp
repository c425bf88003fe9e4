#include "exporters/kafka/fleet_verify_cli.h"

#include <cstdio>
#include <iostream>

#include "base/files.h"
#include "base/json_text.h"
#include "exporters/kafka/fleet_verify.h"

namespace hsmaudit::exporters::kafka {

void add_fleet_options(CLI::App& verify, FleetArgs& a) {
    verify.add_option("--kafka", a.brokers, "verify a fleet from Kafka: bootstrap servers host:port,...");
    verify.add_option("--topic", a.topic, "--kafka: the audit topic")->capture_default_str();
    verify.add_option("--group", a.group,
                      "--kafka: consumer group: scale out over several verifiers, commit verified offsets and "
                      "chain state, resume where the group stopped");
    verify.add_option("--keys", a.keys_dir, "--kafka: directory of <serial>.key (0600) or <serial>.pub files");
    verify.add_flag("--from-beginning", a.from_beginning,
                    "--kafka with --group: ignore the group's committed offsets and state");
    verify
        .add_option("--idle-timeout", a.idle_timeout_s,
                    "--kafka: stop after this many seconds without a message (the end of every partition also stops)")
        ->capture_default_str();
    verify.add_option("--stale", a.stale_s, "--kafka: report appliances whose newest record is older than S seconds");
    verify.add_option("--kafka-property", a.properties, "--kafka: a librdkafka property k=v (TLS, SASL mechanism)");
    verify.add_option("--kafka-properties-file", a.properties_file, "--kafka: librdkafka properties, k=v lines");
    verify.add_option("--kafka-secret-properties-file", a.secret_properties_file,
                      "--kafka: secret librdkafka properties (sasl.password), k=v lines, mode 0600");
}

int run_fleet_verify(const FleetArgs& a, bool json) {
    auto fail = [](const std::string& m) {
        (void)std::fprintf(stderr, "hsmaudit: %s\n", m.c_str());
        return 2;
    };
    if (a.keys_dir.empty()) return fail("verify --kafka needs --keys DIR");
    FleetOptions o;
    o.brokers = a.brokers;
    o.topic = a.topic;
    o.group = a.group;
    o.keys_dir = a.keys_dir;
    o.from_beginning = a.from_beginning;
    o.jobs = a.jobs == 0 ? 1 : a.jobs;
    if (a.idle_timeout_s <= 0) return fail("--idle-timeout must be positive");
    o.idle_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(a.idle_timeout_s * 1000));
    if (a.stale_s > 0) o.stale = std::chrono::milliseconds(static_cast<std::int64_t>(a.stale_s * 1000));
    for (const auto& p : a.properties) {
        auto props = parse_property_list(p, "--kafka-property");
        if (!props) return fail(props.error().describe());
        for (const auto& [k, v] : *props)
            if (is_sensitive_property(k))
                return fail("--kafka-property " + k + ": a secret: use --kafka-secret-properties-file (mode 0600)");
        o.properties.insert(o.properties.end(), props->begin(), props->end());
    }
    if (!a.properties_file.empty()) {
        auto text = base::read_file(a.properties_file, 1 << 20);
        if (!text) return fail(text.error().describe());
        auto props = parse_property_lines(*text, a.properties_file);
        if (!props) return fail(props.error().describe());
        o.properties.insert(o.properties.end(), props->begin(), props->end());
    }
    if (!a.secret_properties_file.empty()) {
        auto text = base::read_secret_file(a.secret_properties_file, 1 << 16);
        if (!text) return fail(text.error().describe());
        auto props = parse_property_lines(*text, a.secret_properties_file);
        if (!props) return fail(props.error().describe());
        o.secret_properties = std::move(*props);
    }
    auto report = verify_fleet(o);
    if (!report) return fail(report.error().describe());
    if (json)
        std::cout << base::json_text(render_fleet_json(*report)) << "\n";
    else
        std::cout << render_fleet_text(*report);
    return report->verified() ? 0 : 1;
}

}  // namespace hsmaudit::exporters::kafka
