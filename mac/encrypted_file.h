// At-rest encryption of segment files and archives (docs/FORMAT.md, "Encrypted files"):
// a header with a random salt, then chunks sealed with AES-256-GCM under a per-file key
// derived from the audit secret. Chunks are appended as the file grows (one per durable
// batch), so an open segment stays appendable and a crash can only tear the last chunk.
//
// Thread-safety: ChunkSealer and EncryptedFileSource are used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mac/crypto.h"
#include "mac/keys.h"
#include "base/line_reader.h"
#include "base/result.h"

namespace hsmaudit::mac {

inline constexpr std::string_view kEncryptedMagic = "HSMAENC1";
inline constexpr std::size_t kEncryptedHeaderBytes = 8 + 16;  // magic, salt
inline constexpr std::size_t kChunkOverheadBytes = 4 + 16;    // length, tag
inline constexpr std::size_t kMaxChunkBytes = 16 * 1024 * 1024;

using Salt = std::array<std::uint8_t, 16>;

/// K_store = HMAC(S, "hsmaudit/v1/store-key" || chain_id): one key for a chain's files at rest.
Bytes32 store_key(const AuditKey& key);

/// True if `prefix` (the first bytes of a file) starts with the encrypted-file magic.
bool is_encrypted(std::string_view prefix);

/// Seals chunks of one encrypted file.
class ChunkSealer {
public:
    /// A new file: draws a random salt.
    static Result<ChunkSealer> create(const Bytes32& store_key);
    /// An existing file whose header holds `salt`, continuing at chunk `next_index`.
    static ChunkSealer resume(const Bytes32& store_key, const Salt& salt, std::uint64_t next_index);
    ~ChunkSealer();
    ChunkSealer(ChunkSealer&&) noexcept = default;
    ChunkSealer& operator=(ChunkSealer&&) noexcept = default;

    /// The 24-byte file header.
    [[nodiscard]] std::string header() const;
    /// Appends the sealed chunk for `plaintext` (1 byte to kMaxChunkBytes) to `out`.
    Status seal(std::string_view plaintext, std::string& out);
    [[nodiscard]] std::uint64_t next_index() const { return index_; }

private:
    ChunkSealer(const Bytes32& store_key, const Salt& salt, std::uint64_t next_index);
    Salt salt_{};
    Bytes32 file_key_{};
    std::uint64_t index_ = 0;
};

/// Opens the chunks of one encrypted file one at a time, for a reader that follows a file as it
/// grows (agent/engine/export/store_source.cpp) rather than reading it as one stream.
class ChunkOpener {
public:
    ChunkOpener(const Bytes32& store_key, const Salt& salt);
    ~ChunkOpener();
    ChunkOpener(ChunkOpener&&) noexcept = default;
    ChunkOpener& operator=(ChunkOpener&&) noexcept = default;

    /// The plaintext of chunk `index`, given what follows its 4-byte length: the ciphertext and
    /// the 16-byte tag. An error if it fails authentication.
    [[nodiscard]] Result<std::string> open(std::uint64_t index, std::string_view ciphertext_and_tag) const;

private:
    Salt salt_{};
    Bytes32 file_key_{};
};

/// Reads an encrypted file as its plaintext. Damage (a torn or unauthentic chunk) ends the
/// stream early and is reported by damage(); everything before it is returned.
class EncryptedFileSource final : public base::ByteSource {
public:
    static Result<std::unique_ptr<EncryptedFileSource>> open(const std::string& path, const Bytes32& store_key);
    /// The same over any byte source (a member of an archive); `name` names it in messages.
    static Result<std::unique_ptr<EncryptedFileSource>> open(std::unique_ptr<base::ByteSource> raw, const Bytes32& store_key,
                                                             std::string name);
    Result<std::size_t> read(std::span<char> out) override;
    std::optional<std::string> damage() const override { return damage_; }
    /// File offset just past the last good chunk (where an appender may resume).
    [[nodiscard]] std::uint64_t valid_bytes() const { return valid_bytes_; }
    [[nodiscard]] std::uint64_t chunks() const { return index_; }
    [[nodiscard]] const Salt& salt() const { return salt_; }

private:
    EncryptedFileSource(std::unique_ptr<base::ByteSource> file, const Bytes32& store_key, const Salt& salt, std::string path);
    Result<bool> next_chunk();

    std::unique_ptr<base::ByteSource> file_;
    Salt salt_{};
    Bytes32 file_key_{};
    std::string path_;
    std::string plain_;
    std::size_t plain_pos_ = 0;
    std::uint64_t index_ = 0;
    std::uint64_t valid_bytes_ = kEncryptedHeaderBytes;
    std::optional<std::string> damage_;
    bool done_ = false;
};

/// Opens `path` as plaintext: a plain file as is, an encrypted one decrypted with the store key
/// of `key` (an error naming the file if no key is available).
Result<std::unique_ptr<base::ByteSource>> open_segment_source(const std::string& path, const AuditKey* key);
/// The same for bytes from any source (a member of an archive) named `name` in messages.
Result<std::unique_ptr<base::ByteSource>> open_segment_source(std::unique_ptr<base::ByteSource> raw, const std::string& name,
                                                        const AuditKey* key);

}  // namespace hsmaudit::mac
