// The "relp" kind for the registration list (agent/daemon/exporter_registry.cpp): builds a RelpExporter with
// the destination's formatter. Kept apart from the transport so the transport builds and is tested
// without the formats library.
#include "exporters/common/host_port.h"
#include "exporters/common/tls_files.h"
#include "exporters/formats/formatter.h"
#include "exporters/relp/errc.h"
#include "exporters/relp/relp_exporter.h"

namespace hsmaudit::exporters::relp {
namespace {

std::string key_of(std::string_view name, std::string_view k) {
    return "exporters." + std::string(name) + ".relp." + std::string(k);
}

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
    auto options = read_relp_options(context.config, context.name);
    if (!options) return std::move(options).error();
    // librelp's OpenSSL driver loads the CA into one process-wide SSL_CTX when its first session
    // opens: two RELP destinations with different CAs would trust whichever connected first.
    for (const auto& other : context.config.instances("exporters")) {
        if (other == context.name || !context.config.has("exporters." + other + ".type") ||
            context.config.str("exporters." + other + ".type") != "relp")
            continue;
        const std::string& other_ca = context.config.str(key_of(other, "ca"));
        if (options->tls && context.config.boolean(key_of(other, "tls")) && other_ca != options->ca)
            return make_error(errc::config_error, key_of(context.name, "ca") +
                                                      ": every RELP/TLS destination must use the same CA file (" +
                                                      key_of(other, "ca") + " is '" + other_ca +
                                                      "'): librelp keeps one process-wide OpenSSL context");
    }
    auto formatter = formatter_of(context.config, context.name);
    if (!formatter) return std::move(formatter).error();
    return std::unique_ptr<agent::Exporter>(std::make_unique<RelpExporter>(std::move(*options), std::move(*formatter)));
}

std::string endpoint(const base::Config& config, std::string_view name) {
    auto target = common::parse_host_port(config.str(key_of(name, "target")), key_of(name, "target"));
    if (!target) return "";
    return "tcp:" + target->first + ":" + target->second;
}

/// create() has no side effects (it builds the options and the formatter); the TLS files are
/// loaded as librelp's OpenSSL driver will at the first connect.
Status validate(const agent::ExporterContext& context) {
    auto exporter = create(context);
    if (!exporter) return std::move(exporter).error();
    if (!context.config.boolean(key_of(context.name, "tls"))) return {};
    return common::check_tls_files(key_of(context.name, ""), context.config.str(key_of(context.name, "ca")),
                                   context.config.str(key_of(context.name, "cert")),
                                   context.config.str(key_of(context.name, "key")));
}

}  // namespace

agent::ExporterFactory factory() {
    return {"relp", relp_config_keys, create, endpoint, validate, renderer};
}

}  // namespace hsmaudit::exporters::relp
