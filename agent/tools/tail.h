// `hsmaudit tail`: the stored audit events of a store, decrypted and formatted for people (or
// one JSON object per record), and followed as the agent appends to the open segment, seals it
// into ready_for_archive/ and opens the next one.
//
// tail shows; it does not prove: it parses records but checks no MAC (`hsmaudit verify` does).
//
// Thread-safety: StoreTail is driven by one thread; the format functions are free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "mac/keys.h"
#include "mac/record.h"

namespace hsmaudit::agent::tools {

/// One stored record and where it was found.
struct TailRecord {
    mac::AuditRecord record;
    std::string mac_hex;
    std::string segment;  // file name
    std::uint64_t line = 0;
};

/// "2026-11-24T06:00:00.030Z  #1234  part 3  CU  sess 1  LUNA_SIGN  usage  ok  key=100 ...".
/// Strings are shown escaped as in the segment file, so a record cannot send control bytes to
/// the terminal.
std::string format_record_text(const TailRecord& r);
/// {"seq":..,"time":..,"serial":..,"boot":..,"partition":..,"role":..,"session":..,"event":..,
///  "class":..,"result":"0x..","ok":..,"details":{..},"segment":..,"mac":..}
nlohmann::json format_record_json(const TailRecord& r);

/// Reads the records of a store in chain order and follows the store as it grows and rotates.
/// Each record is returned once, in sequence order, even when a segment file is rewritten by the
/// agent's crash recovery or re-read after it grew by another encrypted chunk.
class StoreTail {
public:
    /// `key` decrypts segments encrypted at rest (may be null for a plain store).
    StoreTail(std::string audit_dir, const mac::AuditKey* key);

    /// The last `n` records stored now, oldest first; later poll() calls return what follows.
    Result<std::vector<TailRecord>> last(std::size_t n);
    /// Records stored since the previous call (from the start of the store if last() was not
    /// called), across segment rotation. Empty when nothing new is there yet.
    Result<std::vector<TailRecord>> poll();
    /// Damage and malformed lines met since the last call, one message each (for stderr).
    std::vector<std::string> take_warnings();

private:
    struct Segment {
        std::uint64_t epoch = 0;
        std::string path;
        std::string name;
        bool sealed_dir = false;  // in ready_for_archive/
    };
    struct ReadResult {
        std::uint64_t consumed = 0;  // plaintext bytes of complete lines
        bool sealed = false;         // a seal line was read
        std::optional<std::uint64_t> max_seq;
        bool vanished = false;  // renamed or removed before it could be opened
    };
    Result<std::vector<Segment>> list_segments() const;
    Result<ReadResult> read_segment(const Segment& seg, std::uint64_t skip_bytes, std::uint64_t min_seq,
                                    std::vector<TailRecord>& out);
    void warn(std::string message);

    std::string audit_dir_;
    const mac::AuditKey* key_;
    std::optional<std::uint64_t> epoch_;  // the segment being followed
    std::uint64_t consumed_ = 0;          // its plaintext bytes already read
    std::int64_t last_size_ = -1;         // its file size when last read
    bool sealed_ = false;
    std::uint64_t last_seq_ = 0;  // the last record returned
    std::vector<std::string> warnings_;
    std::vector<std::string> warned_;  // messages already given once
};

}  // namespace hsmaudit::agent::tools
