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

/// The configuration keys of the components this composition root names and agent/engine cannot:
/// the shared format keys, every exporter kind's own keys, the metrics endpoint's and the journal
/// source's (collectors/journal).
std::vector<base::KeySpec> component_config_keys();

}  // namespace hsmaudit::exporters
