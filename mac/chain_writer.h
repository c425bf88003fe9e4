// ChainWriter: the module's side of the chain. It renders and MACs records, opens segments,
// and seals them (seal MAC, digest, Ed25519 signature), then evolves the epoch key one way and
// erases the old one. Its whole persistent state is a ChainHead (fixed size), so a module can
// keep it next to its NVRAM ring and resume after a power loss.
//
// Thread-safety: not thread-safe; one writer per chain, driven by one thread at a time.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "mac/crypto.h"
#include "mac/keys.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {

/// Everything the writer must remember across restarts. Plain data: persist it as it is.
struct ChainHead {
    std::uint64_t epoch = 0;
    std::uint64_t next_seq = 1;
    Bytes32 epoch_key{};  // K_epoch; the previous epoch's key is erased when a seal evolves it
    Mac last_mac{};       // MAC of the newest record (32 zero bytes before the first record)
    Bytes32 digest{};     // running digest of the open segment
    std::uint64_t segment_first_seq = 1;
    std::uint64_t segment_records = 0;
    bool segment_open = false;
};

/// The head of a brand-new chain: epoch 0, sequence 1, MAC_0 = 32 zero bytes.
ChainHead genesis_head(const AuditKey& key);

class ChainWriter {
public:
    /// `serial` must be 1-32 characters of [A-Za-z0-9._-].
    static Result<ChainWriter> create(ChainId chain, std::string serial, std::uint32_t boot, Ed25519PrivateKey signer,
                                      const ChainHead& head);
    ~ChainWriter();
    ChainWriter(ChainWriter&&) noexcept;
    ChainWriter& operator=(ChainWriter&&) noexcept;
    ChainWriter(const ChainWriter&) = delete;
    ChainWriter& operator=(const ChainWriter&) = delete;

    /// Opens the next segment; returns its open line (with LF).
    Result<std::string> open_segment(std::int64_t time_ms);

    /// Assigns rec.seq (and serial, boot), MACs the record, appends its full line (with LF) to
    /// `out` and returns its MAC. A segment must be open.
    Result<Mac> append(AuditRecord& rec, std::string& out);

    /// Seals the open segment: returns the seal line (with LF), then evolves the epoch key.
    Result<std::string> seal(std::int64_t time_ms);

    [[nodiscard]] const ChainHead& head() const { return head_; }
    [[nodiscard]] const ChainId& chain() const { return chain_; }
    [[nodiscard]] const std::string& serial() const { return serial_; }
    [[nodiscard]] std::uint32_t boot() const { return boot_; }
    void set_boot(std::uint32_t boot) { boot_ = boot; }

private:
    ChainWriter(ChainId chain, std::string serial, std::uint32_t boot, Ed25519PrivateKey signer, const ChainHead& head,
                HmacSha256 hmac, Sha256 sha);

    ChainId chain_{};
    std::string serial_;
    std::uint32_t boot_ = 0;
    Ed25519PrivateKey signer_;
    ChainHead head_;
    HmacSha256 hmac_;  // keyed with head_.epoch_key
    Sha256 sha_;
    std::string body_;  // scratch, reused per record
};

/// True if `serial` is 1-32 characters of [A-Za-z0-9._-].
bool valid_serial(std::string_view serial);

}  // namespace hsmaudit::mac
