// The explicit list of exporter kinds hsmauditd knows (Envoy-style registration: no static
// self-registration). To add a kind: write exporters/<kind>/ with a factory function returning
// an agent::ExporterFactory, add it to builtin_exporters() in exporter_registry.cpp and its library to
// HSMAUDIT_EXPORTER_LIBS (docs/ARCHITECTURE.md, "How to add an exporter").
#pragma once

#include <span>
#include <vector>

#include "agent/api/exporter.h"
#include "base/config/config.h"

namespace hsmaudit::exporters {

/// Every exporter kind built into hsmauditd.
std::span<const agent::ExporterFactory> builtin_exporters();

/// The configuration keys of the exporters: the shared format keys and every kind's own keys; also the
/// metrics endpoint's and the journal source's (collectors/journal), which agent/engine cannot name.
std::vector<base::KeySpec> exporter_config_keys();

}  // namespace hsmaudit::exporters
