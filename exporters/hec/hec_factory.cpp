// The "splunk_hec" kind for the registration list (agent/daemon/exporter_registry.cpp): builds a
// HecExporter with the destination's formatter (format: hec, the default for this kind).
#include "exporters/common/host_port.h"
#include "exporters/common/tls_files.h"
#include "exporters/formats/formatter.h"
#include "exporters/hec/errc.h"
#include "exporters/hec/hec_exporter.h"
#include "exporters/hec/protocol.h"

namespace hsmaudit::exporters::hec {
namespace {

std::string key_of(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + ".splunk_hec." + std::string(k);
}

/// HEC's event endpoint takes HEC envelopes only: another format would be refused by Splunk
/// (HEC code 6) and block the destination at its first batch. Without a format key, hec.
Result<formats::FormatOptions> hec_format(const base::Config& config, std::string_view name) {
    auto options = formats::read_format_options(config, name, formats::SyslogHeader::none);
    if (!options) return std::move(options).error();
    if (config.origin("exporters." + std::string(name) + ".format") == "default")
        options->kind = formats::FormatKind::hec;
    if (options->kind != formats::FormatKind::hec)
        return make_error(errc::config_error, "exporters." + std::string(name) +
                                                  ".format: a splunk_hec destination sends HEC envelopes: set "
                                                  "format: hec (got '" +
                                                  std::string(formats::to_string(options->kind)) + "')");
    return options;
}

Result<std::unique_ptr<formats::Formatter>> hec_formatter(const agent::ExporterContext& context) {
    auto options = hec_format(context.config, context.name);
    if (!options) return std::move(options).error();
    return formats::make_formatter(*options);
}

/// What `hsmaudit tap` shows: the envelope each event becomes (batching and gzip aside).
Result<agent::EventRenderer> renderer(const base::Config& config, std::string_view name) {
    auto options = hec_format(config, name);
    if (!options) return std::move(options).error();
    return formats::as_renderer(formats::make_formatter(*options));
}

Result<std::unique_ptr<agent::Exporter>> create(const agent::ExporterContext& context) {
    auto options = read_hec_options(context.config, context.name);
    if (!options) return std::move(options).error();
    auto formatter = hec_formatter(context);
    if (!formatter) return std::move(formatter).error();
    // A channel per exporter (per start or reload): an ackId only means something on the
    // connection that got it, so there is nothing to keep across restarts (docs/SIEM.md).
    auto channel = make_channel_id();
    if (!channel) return std::move(channel).error();
    return std::unique_ptr<agent::Exporter>(
        std::make_unique<HecExporter>(std::move(*options), std::move(*formatter), std::move(*channel)));
}

std::string endpoint(const base::Config& config, std::string_view name) {
    auto target = common::parse_host_port(config.str(key_of(name, "target")), key_of(name, "target"));
    if (!target) return "";
    return "tcp:" + target->first + ":" + target->second;
}

Status validate(const agent::ExporterContext& context) {
    auto options = read_hec_options(context.config, context.name);
    if (!options) return std::move(options).error();
    auto formatter = hec_formatter(context);
    if (!formatter) return std::move(formatter).error();
    if (!options->tls) return {};
    return common::check_tls_files(key_of(context.name, ""), options->ca, options->cert, options->key);
}

}  // namespace

agent::ExporterFactory factory() {
    return {"splunk_hec", hec_config_keys, create, endpoint, validate, renderer};
}

}  // namespace hsmaudit::exporters::hec
