// The three kinds of line in a segment file (docs/FORMAT.md): the open line, record lines and
// the seal line, with their rendering and strict parsing.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mac/crypto.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kMaxLineBytes = std::size_t{64} * 1024;

/// First line of a segment: which chain, module and epoch it belongs to, and the link to the
/// previous segment (the MAC of the last record before it; 32 zero bytes at genesis).
struct OpenLine {
    ChainId chain{};
    std::string serial;
    std::uint64_t epoch = 0;
    std::uint32_t boot = 0;
    std::uint64_t first_seq = 1;  // sequence number the segment's first record will have
    std::int64_t time_ms = 0;
    Mac prev{};
    Mac mac{};  // HMAC(K_epoch, body || prev)

    /// "@open v=1 chain=... prev=<hex>" (the bytes the MAC covers).
    [[nodiscard]] std::string body() const;
    /// body + " mac=<hex>\n".
    [[nodiscard]] std::string line() const;
};

/// Last line of a segment.
struct SealLine {
    ChainId chain{};
    std::string serial;
    std::uint64_t epoch = 0;
    std::uint64_t records = 0;
    std::uint64_t first_seq = 1;
    std::uint64_t last_seq = 0;  // first_seq - 1 when records == 0
    std::int64_t time_ms = 0;
    Mac final_mac{};   // MAC of the segment's last record (= prev of the open line if empty)
    Bytes32 digest{};  // segment digest chain over every line before the seal
    Mac mac{};         // HMAC(K_epoch, mac_body || final_mac)
    Ed25519Signature sig{};

    /// "@seal v=1 ... digest=<hex>": what the seal MAC covers.
    [[nodiscard]] std::string mac_body() const;
    /// mac_body + " mac=<hex>": what the signature covers.
    [[nodiscard]] std::string signed_body() const;
    /// signed_body + " sig=<hex>\n".
    [[nodiscard]] std::string line() const;
};

enum class LineKind { record, open, seal, unknown };

/// Classifies a line (without its LF) by its first byte: a digit, "@open ", "@seal ".
LineKind classify_line(std::string_view line);

/// A record line split at its last field: body (what the MAC covers) and the MAC.
struct RecordLineView {
    std::string_view body;
    std::uint64_t seq = 0;
    Mac mac{};
};
/// Splits a record line (without LF). Only the sequence number and the MAC are parsed here;
/// parse_record_body() parses the rest.
Result<RecordLineView> split_record_line(std::string_view line);

/// Parses an open line (without LF).
Result<OpenLine> parse_open_line(std::string_view line);
/// Parses a seal line (without LF); also returns the byte spans the MAC and signature cover.
struct ParsedSeal {
    SealLine seal;
    std::string_view mac_body;
    std::string_view signed_body;
};
Result<ParsedSeal> parse_seal_line(std::string_view line);

/// D_0 = SHA-256("hsmaudit/v1/segment" || open line incl. LF); D_i = SHA-256(D_{i-1} || line_i incl. LF).
Bytes32 digest_start(Sha256& sha, std::string_view open_line_with_lf);
Bytes32 digest_next(Sha256& sha, const Bytes32& prev, std::string_view line_with_lf);

/// Segment file name: hsm_<serial>_<8 lowercase hex digits of the epoch>.log
std::string segment_file_name(std::string_view serial, std::uint64_t epoch);
/// The epoch in a segment file name (hsm_<serial>_<1 to 16 lowercase hex digits>.log), nullopt
/// if `name` is not one.
std::optional<std::uint64_t> segment_file_epoch(std::string_view name);

}  // namespace hsmaudit::mac
