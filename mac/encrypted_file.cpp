#include "mac/encrypted_file.h"

#include <algorithm>
#include <cstring>

#include "mac/errc.h"

namespace hsmaudit::mac {
namespace {

Bytes32 file_key_of(const Bytes32& store_key, const Salt& salt) {
    std::string msg = "hsmaudit/v1/file-key";
    msg.append(reinterpret_cast<const char*>(salt.data()), salt.size());
    auto k = hmac_sha256(store_key, as_bytes(msg));
    return k ? *k : Bytes32{};
}

std::array<std::uint8_t, 12> nonce_of(std::uint64_t index) {
    std::array<std::uint8_t, 12> n{};
    for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(index >> (56 - 8 * i));
    return n;
}

std::string aad_of(const Salt& salt, std::uint64_t index) {
    std::string aad(kEncryptedMagic);
    aad.append(reinterpret_cast<const char*>(salt.data()), salt.size());
    for (int i = 0; i < 8; ++i) aad += static_cast<char>((index >> (56 - 8 * i)) & 0xFF);
    return aad;
}

/// Reads exactly out.size() bytes unless the file ends; returns how many were read.
Result<std::size_t> read_full(base::ByteSource& f, std::span<char> out) {
    std::size_t got = 0;
    while (got < out.size()) {
        auto n = f.read(out.subspan(got));
        if (!n) return std::move(n).error();
        if (*n == 0) break;
        got += *n;
    }
    return got;
}

/// Gives back the bytes read to sniff a stream's format, then the rest of the stream.
class PrefixedSource final : public base::ByteSource {
public:
    PrefixedSource(std::string prefix, std::unique_ptr<base::ByteSource> rest)
        : prefix_(std::move(prefix)), rest_(std::move(rest)) {}
    Result<std::size_t> read(std::span<char> out) override {
        if (pos_ < prefix_.size()) {
            const std::size_t n = std::min(out.size(), prefix_.size() - pos_);
            std::memcpy(out.data(), prefix_.data() + pos_, n);
            pos_ += n;
            return n;
        }
        return rest_->read(out);
    }
    std::optional<std::string> damage() const override { return rest_->damage(); }

private:
    std::string prefix_;
    std::size_t pos_ = 0;
    std::unique_ptr<base::ByteSource> rest_;
};

}  // namespace

Bytes32 store_key(const AuditKey& key) {
    std::string msg = "hsmaudit/v1/store-key";
    msg.append(reinterpret_cast<const char*>(key.chain().data()), key.chain().size());
    auto k = hmac_sha256(key.secret(), as_bytes(msg));
    return k ? *k : Bytes32{};
}

bool is_encrypted(std::string_view prefix) {
    return prefix.starts_with(kEncryptedMagic);
}

ChunkSealer::ChunkSealer(const Bytes32& store_key, const Salt& salt, std::uint64_t next_index)
    : salt_(salt), file_key_(file_key_of(store_key, salt)), index_(next_index) {}

ChunkSealer::~ChunkSealer() {
    secure_zero(file_key_.data(), file_key_.size());
}

Result<ChunkSealer> ChunkSealer::create(const Bytes32& store_key) {
    Salt salt{};
    HSMAUDIT_TRY(random_bytes(salt));
    return ChunkSealer(store_key, salt, 0);
}

ChunkSealer ChunkSealer::resume(const Bytes32& store_key, const Salt& salt, std::uint64_t next_index) {
    return ChunkSealer(store_key, salt, next_index);
}

std::string ChunkSealer::header() const {
    std::string h(kEncryptedMagic);
    h.append(reinterpret_cast<const char*>(salt_.data()), salt_.size());
    return h;
}

Status ChunkSealer::seal(std::string_view plaintext, std::string& out) {
    if (plaintext.empty() || plaintext.size() > kMaxChunkBytes)
        return make_error(errc::invalid_argument, "an encrypted chunk holds 1 byte to 16 MiB");
    std::array<std::uint8_t, 16> tag{};
    auto ct = aes256gcm_seal(file_key_, nonce_of(index_), as_bytes(aad_of(salt_, index_)), as_bytes(plaintext), tag);
    if (!ct) return std::move(ct).error();
    const auto len = static_cast<std::uint32_t>(plaintext.size());
    for (int i = 3; i >= 0; --i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
    out += *ct;
    out.append(reinterpret_cast<const char*>(tag.data()), tag.size());
    ++index_;
    return {};
}

std::optional<Salt> parse_encrypted_header(std::string_view header) {
    if (header.size() < kEncryptedHeaderBytes || !is_encrypted(header)) return std::nullopt;
    Salt salt{};
    std::memcpy(salt.data(), header.data() + kEncryptedMagic.size(), salt.size());
    return salt;
}

ChunkDecoder::ChunkDecoder(const Bytes32& store_key, const Salt& salt, std::uint64_t next_index)
    : salt_(salt), file_key_(file_key_of(store_key, salt)), index_(next_index) {}

ChunkDecoder::~ChunkDecoder() {
    secure_zero(file_key_.data(), file_key_.size());
}

ChunkStep ChunkDecoder::decode(std::string_view bytes) {
    ChunkStep step;
    if (bytes.size() < 4) {
        step.bytes = 4;
        return step;
    }
    std::uint32_t len = 0;
    for (char c : bytes.substr(0, 4)) len = (len << 8) | static_cast<std::uint8_t>(c);
    if (len == 0 || len > kMaxChunkBytes) {
        step.status = ChunkStatus::damaged;
        step.why = "chunk " + std::to_string(index_) + " has an impossible length (" + std::to_string(len) + " bytes)";
        return step;
    }
    step.bytes = kChunkOverheadBytes + len;
    if (bytes.size() < step.bytes) return step;
    auto plain = aes256gcm_open(file_key_, nonce_of(index_), as_bytes(aad_of(salt_, index_)),
                                as_bytes(bytes.substr(4, len)), as_bytes(bytes.substr(4 + len, 16)));
    if (!plain) {
        step.status = ChunkStatus::damaged;
        step.why = "chunk " + std::to_string(index_) + " fails authentication (altered, or another chain's key)";
        return step;
    }
    step.status = ChunkStatus::chunk;
    step.plaintext = std::move(*plain);
    ++index_;
    return step;
}

EncryptedFileSource::EncryptedFileSource(std::unique_ptr<base::ByteSource> file, const Bytes32& store_key,
                                         const Salt& salt, std::string path)
    : file_(std::move(file)), decoder_(store_key, salt), path_(std::move(path)) {}

Result<std::unique_ptr<EncryptedFileSource>> EncryptedFileSource::open(const std::string& path,
                                                                       const Bytes32& store_key) {
    auto file = base::FileSource::open(path);
    if (!file) return std::move(file).error();
    return open(std::unique_ptr<base::ByteSource>(std::move(*file)), store_key, path);
}

Result<std::unique_ptr<EncryptedFileSource>> EncryptedFileSource::open(std::unique_ptr<base::ByteSource> raw,
                                                                       const Bytes32& store_key, std::string name) {
    char header[kEncryptedHeaderBytes];
    auto n = read_full(*raw, header);
    if (!n) return std::move(n).error();
    const auto salt = parse_encrypted_header(std::string_view(header, *n));
    if (!salt) return make_error(errc::bad_format, name + " is not an hsmaudit encrypted file");
    return std::unique_ptr<EncryptedFileSource>(
        new EncryptedFileSource(std::move(raw), store_key, *salt, std::move(name)));
}

Result<bool> EncryptedFileSource::next_chunk() {
    // The decoder says how many bytes the chunk needs: its length first, then the whole chunk.
    std::string bytes;
    for (;;) {
        auto step = decoder_.decode(bytes);
        if (step.status == ChunkStatus::chunk) {
            plain_ = std::move(step.plaintext);
            plain_pos_ = 0;
            valid_bytes_ += step.bytes;
            return true;
        }
        if (step.status == ChunkStatus::damaged) {
            damage_ = step.why + " at byte " + std::to_string(valid_bytes_);
            return false;
        }
        const std::size_t have = bytes.size();
        bytes.resize(step.bytes);
        auto n = read_full(*file_, std::span<char>(bytes.data() + have, bytes.size() - have));
        if (!n) return std::move(n).error();
        if (have + *n < bytes.size()) {
            if (have + *n == 0) return false;  // the end, at a chunk boundary
            damage_ = (have + *n < 4 ? "torn chunk header at byte "
                                     : "torn chunk " + std::to_string(decoder_.next_index()) + " at byte ") +
                      std::to_string(valid_bytes_);
            return false;
        }
    }
}

Result<std::size_t> EncryptedFileSource::read(std::span<char> out) {
    while (plain_pos_ == plain_.size()) {
        if (done_) return std::size_t{0};
        auto more = next_chunk();
        if (!more) return std::move(more).error();
        if (!*more) {
            done_ = true;
            return std::size_t{0};
        }
    }
    const std::size_t n = std::min(out.size(), plain_.size() - plain_pos_);
    std::memcpy(out.data(), plain_.data() + plain_pos_, n);
    plain_pos_ += n;
    return n;
}

Result<std::unique_ptr<base::ByteSource>> open_segment_source(const std::string& path, const AuditKey* key) {
    auto file = base::FileSource::open(path);
    if (!file) return std::move(file).error();
    char prefix[8];
    auto n = read_full(**file, prefix);
    if (!n) return std::move(n).error();
    if (*n == sizeof prefix && is_encrypted(std::string_view(prefix, sizeof prefix))) {
        if (key == nullptr)
            return make_error(errc::bad_key, path +
                                                 " is encrypted at rest: verifying it needs the audit secret "
                                                 "(--key or --wrapped-key)");
        auto enc = EncryptedFileSource::open(path, store_key(*key));
        if (!enc) return std::move(enc).error();
        return std::unique_ptr<base::ByteSource>(std::move(*enc));
    }
    auto again = base::FileSource::open(path);  // reopen at offset 0
    if (!again) return std::move(again).error();
    return std::unique_ptr<base::ByteSource>(std::move(*again));
}

Result<std::unique_ptr<base::ByteSource>> open_segment_source(std::unique_ptr<base::ByteSource> raw,
                                                              const std::string& name, const AuditKey* key) {
    std::string prefix(kEncryptedMagic.size(), '\0');
    auto n = read_full(*raw, prefix);
    if (!n) return std::move(n).error();
    prefix.resize(*n);
    const bool encrypted = is_encrypted(prefix);
    auto whole = std::make_unique<PrefixedSource>(std::move(prefix), std::move(raw));
    if (!encrypted) return std::unique_ptr<base::ByteSource>(std::move(whole));
    if (key == nullptr)
        return make_error(errc::bad_key, name +
                                             " is encrypted at rest: verifying it needs the audit secret "
                                             "(--key or --wrapped-key)");
    auto enc = EncryptedFileSource::open(std::move(whole), store_key(*key), name);
    if (!enc) return std::move(enc).error();
    return std::unique_ptr<base::ByteSource>(std::move(*enc));
}

}  // namespace hsmaudit::mac
