// A synthetic store for runner tests: audit records 1..N (make_audit_event, rsyslog_fixture.h), nothing
// on the other streams. Needs agent/engine (agent::EventSource), so it is apart from rsyslog_fixture.h,
// which tests without the engine include.
// Thread-safety: immutable; read from the runner's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/engine/export/runner.h"
#include "tests/integration/exporters/relp/rsyslog_fixture.h"

namespace hsmaudit::testing::relp {

class SyntheticSource final : public agent::EventSource {
public:
    explicit SyntheticSource(std::uint64_t n) : n_(n) {}
    Result<std::size_t> read(agent::Stream stream, std::uint64_t after, std::size_t max,
                             std::vector<agent::Event>& out) override {
        if (stream != agent::Stream::audit) return std::size_t{0};
        std::size_t added = 0;
        for (std::uint64_t s = after + 1; s <= n_ && added < max; ++s, ++added) out.push_back(make_audit_event(s));
        return added;
    }
    Result<std::uint64_t> newest(agent::Stream stream) override { return stream == agent::Stream::audit ? n_ : 0; }
    Result<std::uint64_t> before_oldest(agent::Stream) override { return std::uint64_t{0}; }

private:
    std::uint64_t n_;
};

}  // namespace hsmaudit::testing::relp
