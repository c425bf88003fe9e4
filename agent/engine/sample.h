// A realistic sample audit trail (logins, key generations, signatures, failures) written
// through the real chain writer: for newcomers to try the verifier, and for tests.
//
// Thread-safety: free function; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "mac/chain_writer.h"
#include "mac/keys.h"

namespace hsmaudit::agent {

struct SampleOptions {
    std::uint64_t records = 1000;
    std::uint64_t segment_records = 100;  // seal after this many records; the last segment stays open
    std::string serial = "150123";
    std::uint32_t boot = 1;
    std::int64_t start_time_ms = 1'795'500'000'000;  // 2026-11-24T..Z; injected, never the wall clock
    std::uint64_t seed = 1;
    /// Encrypt the segments at rest as the agent does by default (store.encrypt: AES-256-GCM under
    /// the store key of the audit secret, docs/FORMAT.md section 8), one chunk per MiB written.
    bool encrypt = false;
};

/// Produces the records of a sample trail, deterministically from `seed`.
class SampleWorkload {
public:
    explicit SampleWorkload(std::uint64_t seed, std::int64_t start_time_ms);
    /// Fills `rec` with the next event (seq, serial and boot are the chain writer's to set).
    void next(mac::AuditRecord& rec);
    [[nodiscard]] std::int64_t now_ms() const { return time_ms_; }

private:
    std::uint64_t rand();
    std::uint64_t state_;
    std::int64_t time_ms_;
    std::uint64_t next_session_ = 1;
    std::uint64_t next_key_ = 100;
};

/// Writes `opt.records` records as segment files hsm_<serial>_<epoch>.log into `out_dir`
/// (created if missing; refuses a directory that already holds segments). Returns the paths.
Result<std::vector<std::string>> write_sample_trail(const mac::AuditKey& key, const mac::Ed25519PrivateKey& signer,
                                                    const std::string& out_dir, const SampleOptions& opt);

}  // namespace hsmaudit::agent
