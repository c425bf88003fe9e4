// At-rest encryption of segment files and archives (docs/FORMAT.md, section 8): a header with a
// random salt, then chunks sealed with AES-256-GCM under a per-file key derived from the audit
// secret. Chunks are appended as the file grows (one per durable batch), so an open segment stays
// appendable and a crash can only tear the last chunk.
//
// Two versions are read; version 2 is written. Version 1 (`HSMAENC1`) took chunk i's nonce from
// its index, so a chunk cut off by crash recovery (never committed) and written again with other
// plaintext reused a nonce under the same key: whoever kept a copy of the cut chunk learns the
// XOR of the two plaintexts and GCM's hash key. Version 2 (`HSMAENC2`) draws a random nonce for
// every chunk and stores it in the chunk; the index stays bound through the associated data.
//
// Thread-safety: ChunkSealer, ChunkDecoder and EncryptedFileSource are used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/line_reader.h"
#include "base/result.h"
#include "mac/crypto.h"
#include "mac/keys.h"

namespace hsmaudit::mac {

inline constexpr std::string_view kEncryptedMagicV1 = "HSMAENC1";  // read only: nonces from the chunk index
inline constexpr std::string_view kEncryptedMagic = "HSMAENC2";    // written: a random nonce per chunk
inline constexpr std::size_t kEncryptedHeaderBytes = 8 + 16;       // magic, salt
inline constexpr std::size_t kChunkNonceBytes = 12;
inline constexpr std::size_t kChunkOverheadBytesV1 = 4 + 16;                   // length, tag
inline constexpr std::size_t kChunkOverheadBytes = 4 + kChunkNonceBytes + 16;  // length, nonce, tag
inline constexpr std::size_t kMaxChunkBytes = std::size_t{16} * 1024 * 1024;

using Salt = std::array<std::uint8_t, 16>;

/// What an encrypted file's 24-byte header says: its format version (1 or 2) and its salt.
struct EncryptedHeader {
    unsigned version = 2;
    Salt salt{};
};

/// The bytes a chunk adds to its plaintext in a file of `version` (kChunkOverheadBytes for 2).
constexpr std::size_t chunk_overhead(unsigned version) {
    return version == 1 ? kChunkOverheadBytesV1 : kChunkOverheadBytes;
}

/// K_store = HMAC(S, "hsmaudit/v1/store-key" || chain_id): one key for a chain's files at rest.
/// An error only if OpenSSL fails (never an all-zero key in its place).
Result<Bytes32> store_key(const AuditKey& key);

/// True if `prefix` (the first bytes of a file) starts with an encrypted-file magic (either version).
bool is_encrypted(std::string_view prefix);

/// Seals chunks of one encrypted file.
class ChunkSealer {
public:
    /// A new file (version 2): draws a random salt.
    static Result<ChunkSealer> create(const Bytes32& store_key);
    /// An existing file with `header`, continuing at chunk `next_index` in the file's own version
    /// (a version 1 file left open by an older agent keeps its counter nonces until it is sealed).
    static Result<ChunkSealer> resume(const Bytes32& store_key, const EncryptedHeader& header,
                                      std::uint64_t next_index);
    ~ChunkSealer();
    ChunkSealer(ChunkSealer&&) noexcept = default;
    ChunkSealer& operator=(ChunkSealer&&) noexcept = default;

    /// The 24-byte file header.
    [[nodiscard]] std::string header() const;
    /// Appends the sealed chunk for `plaintext` (1 byte to kMaxChunkBytes) to `out`; version 2
    /// draws the chunk's nonce from the CSPRNG.
    Status seal(std::string_view plaintext, std::string& out);
    /// The bytes seal_into() writes for a plaintext of `plaintext_bytes`.
    [[nodiscard]] std::size_t sealed_bytes(std::size_t plaintext_bytes) const;
    /// seal() into `out`, which must hold sealed_bytes(plaintext.size()) (a buffer the caller
    /// keeps sized between calls, so no byte is zero-filled before the cipher overwrites it).
    /// Returns the bytes written; on an error the chunk counter does not advance.
    Result<std::size_t> seal_into(std::string_view plaintext, std::span<char> out);
    [[nodiscard]] std::uint64_t next_index() const { return index_; }
    [[nodiscard]] unsigned version() const { return header_.version; }

private:
    ChunkSealer(const Bytes32& file_key, const EncryptedHeader& header, std::uint64_t next_index);
    EncryptedHeader header_;
    Bytes32 file_key_{};
    std::uint64_t index_ = 0;
};

/// An encrypted file's 24-byte header; nullopt if `header` is shorter than a header or does not
/// start with a magic of either version. The one parser of the header (the readers all call it).
std::optional<EncryptedHeader> parse_encrypted_header(std::string_view header);

/// What ChunkDecoder::decode() found at a chunk boundary.
enum class ChunkStatus {
    need_more,  // the chunk is not complete in the bytes given (being written, or torn at the end)
    chunk,      // a chunk that authenticates: `plaintext`
    damaged,    // a chunk that cannot be read: `why`
};

struct ChunkStep {
    ChunkStatus status = ChunkStatus::need_more;
    /// need_more: the bytes the chunk needs in all, counted from its start (4 while its length is
    /// unknown). chunk: the bytes it took. damaged: the bytes it takes if its length is intact
    /// (where the next chunk starts), 0 if the length itself is impossible (framing lost).
    std::size_t bytes = 0;
    std::string plaintext;
    std::string why;  // damaged: "chunk <n> fails authentication (...)" or "... impossible length ..."
};

/// The one decoder of the chunk framing (4-byte big-endian length; in version 2 the 12-byte nonce;
/// the ciphertext; the 16-byte tag; the associated data binds each chunk to its file and index): every reader of
/// encrypted files decodes through it, incrementally, as the bytes arrive. The caller keeps the bytes from the current
/// chunk's start and calls decode() again when more arrive; decode() never consumes anything itself, so a caller may
/// hand it the whole rest of a file or exactly `bytes` bytes.
class ChunkDecoder {
public:
    /// For the file with `header`, starting at chunk `next_index`. Should the file key not be
    /// derivable (OpenSSL failing), every chunk decodes as damaged, saying so.
    ChunkDecoder(const Bytes32& store_key, const EncryptedHeader& header, std::uint64_t next_index = 0);
    ~ChunkDecoder();
    ChunkDecoder(ChunkDecoder&&) noexcept = default;
    ChunkDecoder& operator=(ChunkDecoder&&) noexcept = default;

    /// Decodes the chunk at the start of `bytes` (which begin at a chunk boundary). A chunk that
    /// authenticates advances next_index(); need_more and damaged leave it.
    ChunkStep decode(std::string_view bytes);
    /// The same, decrypting into `plaintext` instead of step.plaintext (a reader of many chunks
    /// reuses one buffer: no allocation per chunk). `plaintext` is meaningful only for `chunk`.
    ChunkStep decode(std::string_view bytes, std::string& plaintext);
    /// Passes over a damaged chunk whose length was intact: the next chunk has the next index.
    void skip() { ++index_; }
    [[nodiscard]] std::uint64_t next_index() const { return index_; }
    [[nodiscard]] const EncryptedHeader& header() const { return header_; }

private:
    EncryptedHeader header_;
    Bytes32 file_key_{};
    bool key_ok_ = false;
    std::uint64_t index_ = 0;
};

/// Reads an encrypted file as its plaintext. Damage (a torn or unauthentic chunk) ends the
/// stream early and is reported by damage(); everything before it is returned.
class EncryptedFileSource final : public base::ByteSource {
public:
    static Result<std::unique_ptr<EncryptedFileSource>> open(const std::string& path, const Bytes32& store_key);
    /// The same over any byte source (a member of an archive); `name` names it in messages.
    static Result<std::unique_ptr<EncryptedFileSource>> open(std::unique_ptr<base::ByteSource> raw,
                                                             const Bytes32& store_key, std::string name);
    Result<std::size_t> read(std::span<char> out) override;
    std::optional<std::string> damage() const override { return damage_; }
    /// File offset just past the last good chunk (where an appender may resume).
    [[nodiscard]] std::uint64_t valid_bytes() const { return valid_bytes_; }
    [[nodiscard]] std::uint64_t chunks() const { return decoder_.next_index(); }
    [[nodiscard]] const EncryptedHeader& header() const { return decoder_.header(); }

private:
    EncryptedFileSource(std::unique_ptr<base::ByteSource> file, const Bytes32& store_key, const EncryptedHeader& header,
                        std::string path);
    Result<bool> next_chunk();

    std::unique_ptr<base::ByteSource> file_;
    ChunkDecoder decoder_;
    std::string path_;
    std::string chunk_;  // the current chunk's bytes as read, reused across chunks
    std::string plain_;  // its plaintext, reused across chunks
    std::size_t plain_pos_ = 0;
    std::uint64_t valid_bytes_ = kEncryptedHeaderBytes;
    std::optional<std::string> damage_;
    bool done_ = false;
};

/// Opens `path` as plaintext: a plain file as is, an encrypted one decrypted with the store key
/// of `key` (an error naming the file if no key is available).
Result<std::unique_ptr<base::ByteSource>> open_segment_source(const std::string& path, const AuditKey* key);
/// The same for bytes from any source (a member of an archive) named `name` in messages.
Result<std::unique_ptr<base::ByteSource>> open_segment_source(std::unique_ptr<base::ByteSource> raw,
                                                              const std::string& name, const AuditKey* key);

}  // namespace hsmaudit::mac
