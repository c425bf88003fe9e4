#include "exporters/kafka/kafka_config.h"

#include <algorithm>
#include <cctype>

#include "agent/api/event.h"
#include "base/files.h"
#include "exporters/kafka/errc.h"

namespace hsmaudit::exporters::kafka {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// Settings the exporter's guarantees rest on: a pass-through property may not change them.
constexpr std::string_view kOwnedProperties[] = {"enable.idempotence",
                                                 "bootstrap.servers",
                                                 "metadata.broker.list",
                                                 "partitioner",
                                                 "message.timeout.ms",
                                                 "delivery.timeout.ms",
                                                 "dr_msg_cb",
                                                 "dr_cb",
                                                 "opaque",
                                                 "enable.gapless.guarantee"};

Status check_pass_through(const Properties& props, std::string_view what, bool secret) {
    for (const auto& [k, v] : props) {
        if (std::find(std::begin(kOwnedProperties), std::end(kOwnedProperties), k) != std::end(kOwnedProperties))
            return make_error(errc::config_error,
                              std::string(what) + ": property '" + k +
                                  "' is set by the exporter (use the exporters.*.kafka.* key, or it is fixed: "
                                  "idempotence is always on)");
        if (!secret && is_sensitive_property(k))
            return make_error(errc::config_error, std::string(what) + ": property '" + k +
                                                      "' holds a secret: put it in "
                                                      "exporters.<name>.kafka.secret_properties_file (mode 0600)");
    }
    return {};
}

}  // namespace

std::span<const base::KeySpec> kafka_config_keys() {
    using base::KeySpec;
    using base::KeyType;
    static constexpr KeySpec kKeys[] = {
        {"exporters.*.kafka.brokers", KeyType::string, "",
         "Kafka bootstrap servers, `host:port,host:port` (librdkafka `bootstrap.servers`). Required."},
        {"exporters.*.kafka.topic.audit", KeyType::string, "hsm.audit",
         "Topic for the module's audit records (key = module serial: one appliance's chain stays in one "
         "partition, in order)."},
        {"exporters.*.kafka.topic.syslog", KeyType::string, "hsm.syslog", "Topic for the appliance's syslog."},
        {"exporters.*.kafka.topic.alerts", KeyType::string, "hsm.alerts", "Topic for the agent's alerts."},
        {"exporters.*.kafka.topic.checkpoints", KeyType::string, "hsm.checkpoints",
         "Topic for the module's signed chain-head checkpoints (may be the audit topic)."},
        {"exporters.*.kafka.partitioner", KeyType::choice, "consistent_random",
         "How the key (module serial) picks a partition; `murmur2_random` matches Java clients' default.", 0, INT64_MAX,
         "consistent_random|consistent|murmur2_random|murmur2|fnv1a|fnv1a_random"},
        {"exporters.*.kafka.properties", KeyType::string, "",
         "librdkafka properties passed through, `k=v,k=v` (TLS, SASL mechanism, compression, batching). "
         "Secrets are refused here: use secret_properties_file."},
        {"exporters.*.kafka.properties_file", KeyType::path, "",
         "A file of librdkafka properties, one `k=v` per line (`#` comments), applied after `properties`."},
        {"exporters.*.kafka.secret_properties_file", KeyType::path, "",
         "A file (mode 0600) of secret librdkafka properties, one `k=v` per line (`sasl.password`, "
         "`ssl.key.password`). Never logged."},
        {"exporters.*.kafka.connect_timeout", KeyType::duration, "10s",
         "How long connecting waits for the cluster's metadata (brokers and topics) before it counts as down.", 100,
         600'000},
        {"exporters.*.kafka.flush_timeout", KeyType::duration, "10s",
         "At disconnect and stop: how long to wait for outstanding deliveries (rd_kafka_flush).", 0, 600'000},
        {"exporters.*.kafka.send_timeout", KeyType::duration, "30s",
         "How long sending may block on librdkafka's full local queue before the connection counts as broken.", 100,
         600'000},
        {"exporters.*.kafka.message_timeout", KeyType::duration, "5m",
         "librdkafka `message.timeout.ms`: a message not delivered in this time fails (the exporter reconnects "
         "and resends after the persisted prefix; the store buffers meanwhile).",
         1'000, 86'400'000},
        {"exporters.*.kafka.line_header", KeyType::boolean, "true",
         "Carry the exact segment line of each record in header `line` (what `hsmaudit verify --kafka` checks)."},
    };
    return kKeys;
}

bool is_sensitive_property(std::string_view name) {
    for (std::string_view needle : {"password", "secret", "ssl.key.pem", "sasl.oauthbearer.config", "token"})
        if (name.find(needle) != std::string_view::npos) return true;
    return false;
}

Result<Properties> parse_property_list(std::string_view text, std::string_view what) {
    Properties out;
    std::size_t item = 0;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view part = trim(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        ++item;
        if (part.empty()) continue;
        const auto eq = part.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return make_error(errc::config_error, std::string(what) + ": item " + std::to_string(item) +
                                                      " is not key=value (a value with a comma goes into a "
                                                      "properties file)");
        out.emplace_back(std::string(trim(part.substr(0, eq))), std::string(trim(part.substr(eq + 1))));
    }
    return out;
}

Result<Properties> parse_property_lines(std::string_view text, std::string_view what) {
    Properties out;
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        line = trim(line);
        if (line.empty() || line.front() == '#') continue;
        const auto eq = line.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return make_error(errc::config_error,
                              std::string(what) + ":" + std::to_string(line_no) + ": expected key=value");
        out.emplace_back(std::string(trim(line.substr(0, eq))), std::string(trim(line.substr(eq + 1))));
    }
    return out;
}

std::string describe_properties(const Properties& props) {
    std::string out;
    for (const auto& [k, v] : props) {
        if (!out.empty()) out += ", ";
        out += k;
        out += '=';
        out += is_sensitive_property(k) ? std::string("***") : v;
    }
    return out;
}

Result<detail::ConfPtr> make_conf(const Properties& plain, const Properties& secret) {
    detail::ConfPtr conf(rd_kafka_conf_new());
    char errstr[512];
    for (const auto* list : {&plain, &secret}) {
        const bool is_secret = list == &secret;
        for (const auto& [k, v] : *list) {
            errstr[0] = '\0';
            if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
                // librdkafka's message may quote the value: never show it for a secret.
                const bool hide = is_secret || is_sensitive_property(k);
                return make_error(errc::config_error,
                                  "librdkafka property '" + k +
                                      "': " + (hide ? std::string("rejected (value not shown)") : std::string(errstr)));
            }
        }
    }
    return conf;
}

std::string ProducerOptions::describe() const {
    std::string out = "kafka " + name + ": brokers=" + brokers + " topics=" + topics[0] + "," + topics[1] + "," +
                      topics[2] + "," + topics[3] + " partitioner=" + partitioner;
    if (!properties.empty()) out += " properties={" + describe_properties(properties) + "}";
    if (!secret_properties.empty()) out += " secret_properties={" + describe_properties(secret_properties) + "}";
    return out;
}

Result<ProducerOptions> producer_options(const base::Config& config, std::string_view name) {
    ProducerOptions o;
    o.name = std::string(name);
    const std::string p = "exporters." + o.name + ".kafka.";
    o.brokers = config.str(p + "brokers");
    if (trim(o.brokers).empty())
        return make_error(errc::config_error, p + "brokers: required (bootstrap servers, host:port,...)");
    for (auto s : agent::kAllStreams) {
        auto& t = o.topics[static_cast<std::size_t>(s)];
        t = config.str(p + "topic." + std::string(agent::to_string(s)));
        if (t.empty())
            return make_error(errc::config_error, p + "topic." + std::string(agent::to_string(s)) + ": empty");
    }
    o.partitioner = config.str(p + "partitioner");
    auto inline_props = parse_property_list(config.str(p + "properties"), p + "properties");
    if (!inline_props) return std::move(inline_props).error();
    HSMAUDIT_TRY(check_pass_through(*inline_props, p + "properties", false));
    o.properties = std::move(*inline_props);
    if (const auto& file = config.str(p + "properties_file"); !file.empty()) {
        auto text = base::read_file(file, 1 << 20);
        if (!text) return make_error(errc::io_error, p + "properties_file: " + text.error().describe());
        auto props = parse_property_lines(*text, file);
        if (!props) return std::move(props).error();
        HSMAUDIT_TRY(check_pass_through(*props, file, false));
        o.properties.insert(o.properties.end(), props->begin(), props->end());
    }
    if (const auto& file = config.str(p + "secret_properties_file"); !file.empty()) {
        auto text = base::read_secret_file(file, 1 << 16);
        if (!text) return make_error(errc::io_error, p + "secret_properties_file: " + text.error().describe());
        auto props = parse_property_lines(*text, file);
        if (!props) return std::move(props).error();
        HSMAUDIT_TRY(check_pass_through(*props, file, true));
        o.secret_properties = std::move(*props);
    }
    o.connect_timeout = std::chrono::milliseconds(config.integer(p + "connect_timeout"));
    o.flush_timeout = std::chrono::milliseconds(config.integer(p + "flush_timeout"));
    o.send_timeout = std::chrono::milliseconds(config.integer(p + "send_timeout"));
    o.message_timeout = std::chrono::milliseconds(config.integer(p + "message_timeout"));
    o.line_header = config.boolean(p + "line_header");
    // Fail now, not at the first connect: every property must be one librdkafka knows.
    if (auto conf = make_conf(o.properties, o.secret_properties); !conf) return std::move(conf).error();
    return o;
}

}  // namespace hsmaudit::exporters::kafka
