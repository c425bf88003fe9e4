// The "syslog" kind for the registration list (agent/daemon/exporter_registry.cpp): builds a SyslogExporter
// with the destination's formatter. Kept apart from the transport so the transport builds and is
// tested without the formats library.
#include "exporters/common/host_port.h"
#include "exporters/common/tls_files.h"
#include "exporters/formats/formatter.h"
#include "exporters/syslog/errc.h"
#include "exporters/syslog/syslog_exporter.h"

namespace hsmaudit::exporters::syslog {
namespace {

/// The destination's formatter: a syslog receiver, so CEF, LEEF and JSON get an RFC 5424 header
/// unless `syslog_header` says otherwise.
Result<std::unique_ptr<formats::Formatter>> formatter_of(const base::Config& config, std::string_view name) {
    return formats::make_formatter(config, name, formats::SyslogHeader::rfc5424);
}

Result<agent::EventRenderer> renderer(const base::Config& config, std::string_view name) {
    auto f = formatter_of(config, name);
    if (!f) return std::move(f).error();
    return formats::as_renderer(std::move(*f));
}

Result<std::unique_ptr<agent::Exporter>> create(const agent::ExporterContext& context) {
    auto options = read_syslog_options(context.config, context.name);
    if (!options) return std::move(options).error();
    auto formatter = formatter_of(context.config, context.name);
    if (!formatter) return std::move(formatter).error();
    return std::unique_ptr<agent::Exporter>(
        std::make_unique<SyslogExporter>(std::move(*options), std::move(*formatter)));
}

std::string endpoint(const base::Config& config, std::string_view name) {
    const std::string prefix = "exporters." + std::string(name) + ".syslog.";
    auto target = common::parse_host_port(config.str(prefix + "target"), prefix + "target");
    if (!target) return "";
    const bool udp = config.str(prefix + "protocol") == "udp";
    return std::string(udp ? "udp:" : "tcp:") + target->first + ":" + target->second;
}

/// create() has no side effects (options and formatter); the TLS files are loaded as connect()
/// loads them (protocol tls only: udp and tcp name none).
Status validate(const agent::ExporterContext& context) {
    auto exporter = create(context);
    if (!exporter) return std::move(exporter).error();
    const std::string prefix = "exporters." + context.name + ".syslog.";
    if (context.config.str(prefix + "protocol") != "tls") return {};
    return common::check_tls_files(prefix, context.config.str(prefix + "ca"), context.config.str(prefix + "cert"),
                                   context.config.str(prefix + "key"));
}

}  // namespace

agent::ExporterFactory factory() {
    return {"syslog", syslog_config_keys, create, endpoint, validate, renderer};
}

}  // namespace hsmaudit::exporters::syslog
