// Configuration of the Kafka exporter (keys "exporters.*.kafka.*", declared here, next to the code
// that reads them) and the librdkafka property handling shared with the fleet verifier: pass-through
// properties, secret properties read from a 0600 file, and masking so that no secret is ever logged.
//
// Thread-safety: free functions and value types.
#pragma once

#include <array>
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/config/config.h"
#include "base/result.h"
#include "exporters/kafka/detail/rdkafka_handles.h"

namespace hsmaudit::exporters::kafka {

/// librdkafka properties, in the order they are applied (a later one overrides an earlier one).
using Properties = std::vector<std::pair<std::string, std::string>>;

/// The keys "exporters.*.kafka.*".
std::span<const base::KeySpec> kafka_config_keys();

/// What one Kafka destination is configured with.
struct ProducerOptions {
    std::string name;                   // the destination ("exporters.<name>")
    std::string brokers;                // bootstrap.servers
    std::array<std::string, 4> topics;  // indexed by agent::Stream: audit, syslog, alerts, checkpoints
    std::string partitioner = "consistent_random";
    Properties properties;                               // pass-through, applied after the exporter's own settings
    Properties secret_properties;                        // from the 0600 file; values never logged
    std::chrono::milliseconds connect_timeout{10'000};   // metadata probe at connect()
    std::chrono::milliseconds flush_timeout{10'000};     // rd_kafka_flush at disconnect()
    std::chrono::milliseconds send_timeout{30'000};      // longest send() blocks on a full local queue
    std::chrono::milliseconds message_timeout{300'000};  // message.timeout.ms: a delivery fails after this
    bool line_header = true;  // carry the exact segment line in header "line" (the fleet verifier needs it)

    /// One line for logs and `--check-config`: brokers, topics, properties with secrets masked.
    [[nodiscard]] std::string describe() const;
};

/// Reads "exporters.<name>.kafka.*" (and the secret file). An error names the key that is wrong.
Result<ProducerOptions> producer_options(const base::Config& config, std::string_view name);

/// True for properties that hold secrets (sasl.password, ssl.key.password, ssl.key.pem,
/// *.secret, ...): refused inline, accepted only from a secret file, masked in every output.
bool is_sensitive_property(std::string_view name);

/// "k=v,k=v" (spaces around items ignored; a value may not contain a comma: use a properties file).
Result<Properties> parse_property_list(std::string_view text, std::string_view what);
/// One "k=v" per line; blank lines and lines starting with '#' ignored. Errors name `what` and the
/// line, never a value.
Result<Properties> parse_property_lines(std::string_view text, std::string_view what);
/// "k=v, k=***" with sensitive values masked.
std::string describe_properties(const Properties& props);

/// A librdkafka configuration with `plain` then `secret` applied. Errors name the property; for
/// a secret property, never its value.
Result<detail::ConfPtr> make_conf(const Properties& plain, const Properties& secret);

}  // namespace hsmaudit::exporters::kafka
