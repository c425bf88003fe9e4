// The registration entry of the Kafka exporter (agent/daemon/exporter_registry.cpp lists it).
#include <memory>

#include "base/logger.h"
#include "exporters/formats/formatter.h"
#include "exporters/kafka/kafka_config.h"
#include "exporters/kafka/kafka_exporter.h"

namespace hsmaudit::exporters::kafka {
namespace {

/// The destination's format options: a Kafka topic carries JSON unless the destination names
/// another format, and no syslog header unless `syslog_header` names one.
Result<formats::FormatOptions> format_of(const base::Config& config, std::string_view name) {
    auto format = formats::read_format_options(config, name, formats::SyslogHeader::none);
    if (!format) return std::move(format).error();
    if (config.origin("exporters." + std::string(name) + ".format") == "default")
        format->kind = formats::FormatKind::json;
    return format;
}

Result<agent::EventRenderer> renderer(const base::Config& config, std::string_view name) {
    auto format = format_of(config, name);
    if (!format) return std::move(format).error();
    return formats::as_renderer(formats::make_formatter(*format));
}

Result<std::unique_ptr<agent::Exporter>> create(const agent::ExporterContext& context) {
    auto options = producer_options(context.config, context.name);
    if (!options) return std::move(options).error();
    auto format = format_of(context.config, context.name);
    if (!format) return std::move(format).error();
    base::logger().info("{}", options->describe());  // secrets masked
    return std::unique_ptr<agent::Exporter>(
        std::make_unique<KafkaExporter>(std::move(*options), formats::make_formatter(*format)));
}

std::string endpoint(const base::Config& config, std::string_view name) {
    const std::string& brokers = config.str("exporters." + std::string(name) + ".kafka.brokers");
    return "tcp:" + brokers.substr(0, brokers.find(','));
}

/// What create() checks (librdkafka's properties, the property files and their modes, the
/// format), without its log line.
Status validate(const agent::ExporterContext& context) {
    auto options = producer_options(context.config, context.name);
    if (!options) return std::move(options).error();
    auto format = format_of(context.config, context.name);
    if (!format) return std::move(format).error();
    return {};
}

}  // namespace

agent::ExporterFactory factory() {
    return {"kafka", &kafka_config_keys, &create, &endpoint, &validate, &renderer};
}

}  // namespace hsmaudit::exporters::kafka
