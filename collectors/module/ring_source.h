// ModuleRingSource: the collector that drains the module's audit NVRAM ring. It adapts the
// module's host interface (hsmcore::host::ModuleHost, in-process or cross-process) to the
// agent's AuditSource: entries rendered to their exact segment lines, acknowledgements and seal
// requests passed through.
//
// Thread-safety: used by the agent's drain thread only (like the ModuleHost it owns).
#pragma once

#include <memory>
#include <vector>

#include "agent/api/source.h"
#include "collectors/module/probe.h"
#include "hsmcore/host/module_host.h"

namespace hsmaudit::collectors {

class ModuleRingSource final : public agent::AuditSource {
public:
    explicit ModuleRingSource(std::unique_ptr<hsmcore::host::ModuleHost> host);

    Result<std::size_t> read(std::uint64_t after_entry_no, std::size_t max, std::chrono::milliseconds wait,
                             agent::EntryBatch& out) override;
    Status acknowledge(std::uint64_t entry_no) override;
    Status request_seal() override;
    Result<agent::SourceStatus> status() override;
    Result<std::string> checkpoint(std::uint64_t retained) override;
    Result<std::string> tree_head() override;

    /// The module's figures at the last status() call, for metrics (any thread).
    [[nodiscard]] const ModuleProbe& probe() const { return probe_; }

private:
    std::unique_ptr<hsmcore::host::ModuleHost> host_;
    std::vector<hsmcore::ring::EntryView> views_;
    std::string line_;
    ModuleProbe probe_;
};

}  // namespace hsmaudit::collectors
