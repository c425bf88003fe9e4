#include "mac/encrypted_file.h"

#include <algorithm>
#include <cstring>

#include "mac/errc.h"

namespace hsmaudit::mac {
namespace {

using Nonce = std::array<std::uint8_t, kChunkNonceBytes>;

Result<Bytes32> file_key_of(const Bytes32& store_key, const Salt& salt) {
    std::string msg = "hsmaudit/v1/file-key";
    msg.append(reinterpret_cast<const char*>(salt.data()), salt.size());
    return hmac_sha256(store_key, as_bytes(msg));
}

std::string_view magic_of(unsigned version) {
    return version == 1 ? kEncryptedMagicV1 : kEncryptedMagic;
}

/// Version 1's nonce: 4 zero bytes, then the chunk index (u64be).
Nonce counter_nonce(std::uint64_t index) {
    Nonce n{};
    for (int i = 0; i < 8; ++i) n[4 + i] = static_cast<std::uint8_t>(index >> (56 - 8 * i));
    return n;
}

std::string aad_of(const EncryptedHeader& header, std::uint64_t index) {
    std::string aad(magic_of(header.version));
    const Salt& salt = header.salt;
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

Result<Bytes32> store_key(const AuditKey& key) {
    std::string msg = "hsmaudit/v1/store-key";
    msg.append(reinterpret_cast<const char*>(key.chain().data()), key.chain().size());
    return hmac_sha256(key.secret(), as_bytes(msg));
}

bool is_encrypted(std::string_view prefix) {
    return prefix.starts_with(kEncryptedMagic) || prefix.starts_with(kEncryptedMagicV1);
}

ChunkSealer::ChunkSealer(const Bytes32& file_key, const EncryptedHeader& header, std::uint64_t next_index)
    : header_(header), file_key_(file_key), index_(next_index) {}

ChunkSealer::~ChunkSealer() {
    secure_zero(file_key_.data(), file_key_.size());
}

Result<ChunkSealer> ChunkSealer::create(const Bytes32& store_key) {
    EncryptedHeader header;
    HSMAUDIT_TRY(random_bytes(header.salt));
    return resume(store_key, header, 0);
}

Result<ChunkSealer> ChunkSealer::resume(const Bytes32& store_key, const EncryptedHeader& header,
                                        std::uint64_t next_index) {
    auto key = file_key_of(store_key, header.salt);
    if (!key) return std::move(key).error();
    ChunkSealer sealer(*key, header, next_index);
    secure_zero(key->data(), key->size());
    return sealer;
}

std::string ChunkSealer::header() const {
    std::string h(magic_of(header_.version));
    h.append(reinterpret_cast<const char*>(header_.salt.data()), header_.salt.size());
    return h;
}

std::size_t ChunkSealer::sealed_bytes(std::size_t plaintext_bytes) const {
    return chunk_overhead(header_.version) + plaintext_bytes;
}

Result<std::size_t> ChunkSealer::seal_into(std::string_view plaintext, std::span<char> out) {
    if (plaintext.empty() || plaintext.size() > kMaxChunkBytes)
        return make_error(errc::invalid_argument, "an encrypted chunk holds 1 byte to 16 MiB");
    const std::size_t bytes = sealed_bytes(plaintext.size());
    if (out.size() < bytes) return make_error(errc::invalid_argument, "the buffer cannot hold the sealed chunk");
    Nonce nonce = counter_nonce(index_);
    if (header_.version != 1) HSMAUDIT_TRY(random_bytes(nonce));
    // Framed in place: length, nonce (version 2), the ciphertext sealed straight into `out`, tag.
    auto* p = reinterpret_cast<std::uint8_t*>(out.data());
    const auto len = static_cast<std::uint32_t>(plaintext.size());
    for (int i = 3; i >= 0; --i) *p++ = static_cast<std::uint8_t>((len >> (8 * i)) & 0xFF);
    if (header_.version != 1) {
        std::memcpy(p, nonce.data(), nonce.size());
        p += nonce.size();
    }
    std::array<std::uint8_t, 16> tag{};
    HSMAUDIT_TRY(aes256gcm_seal_to(file_key_, nonce, as_bytes(aad_of(header_, index_)), as_bytes(plaintext), p, tag));
    std::memcpy(p + plaintext.size(), tag.data(), tag.size());
    ++index_;
    return bytes;
}

Status ChunkSealer::seal(std::string_view plaintext, std::string& out) {
    if (plaintext.empty() || plaintext.size() > kMaxChunkBytes)
        return make_error(errc::invalid_argument, "an encrypted chunk holds 1 byte to 16 MiB");
    const std::size_t base = out.size();
    out.resize(base + sealed_bytes(plaintext.size()));
    auto n = seal_into(plaintext, std::span<char>(out.data() + base, out.size() - base));
    if (!n) {
        out.resize(base);
        return std::move(n).error();
    }
    return {};
}

std::optional<EncryptedHeader> parse_encrypted_header(std::string_view header) {
    if (header.size() < kEncryptedHeaderBytes || !is_encrypted(header)) return std::nullopt;
    EncryptedHeader h;
    h.version = header.starts_with(kEncryptedMagicV1) ? 1 : 2;
    std::memcpy(h.salt.data(), header.data() + kEncryptedMagic.size(), h.salt.size());
    return h;
}

ChunkDecoder::ChunkDecoder(const Bytes32& store_key, const EncryptedHeader& header, std::uint64_t next_index)
    : header_(header), index_(next_index) {
    if (auto key = file_key_of(store_key, header.salt)) {
        file_key_ = *key;
        key_ok_ = true;
        secure_zero(key->data(), key->size());
    }
}

ChunkDecoder::~ChunkDecoder() {
    secure_zero(file_key_.data(), file_key_.size());
}

ChunkStep ChunkDecoder::decode(std::string_view bytes) {
    std::string plaintext;
    ChunkStep step = decode(bytes, plaintext);
    step.plaintext = std::move(plaintext);
    return step;
}

ChunkStep ChunkDecoder::decode(std::string_view bytes, std::string& plaintext) {
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
    step.bytes = chunk_overhead(header_.version) + len;
    if (bytes.size() < step.bytes) return step;
    if (!key_ok_) {
        step.status = ChunkStatus::damaged;
        step.why = "chunk " + std::to_string(index_) + " cannot be decrypted: the file key could not be derived";
        return step;
    }
    Nonce nonce = counter_nonce(index_);
    std::size_t at = 4;
    if (header_.version != 1) {
        std::memcpy(nonce.data(), bytes.data() + at, nonce.size());
        at += nonce.size();
    }
    auto opened = aes256gcm_open_to(file_key_, nonce, as_bytes(aad_of(header_, index_)),
                                    as_bytes(bytes.substr(at, len)), as_bytes(bytes.substr(at + len, 16)), plaintext);
    if (!opened) {
        step.status = ChunkStatus::damaged;
        step.why = "chunk " + std::to_string(index_) + " fails authentication (altered, or another chain's key)";
        return step;
    }
    step.status = ChunkStatus::chunk;
    ++index_;
    return step;
}

EncryptedFileSource::EncryptedFileSource(std::unique_ptr<base::ByteSource> file, const Bytes32& store_key,
                                         const EncryptedHeader& header, std::string path)
    : file_(std::move(file)), decoder_(store_key, header), path_(std::move(path)) {}

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
    const std::string_view got(header, *n);
    const auto parsed = parse_encrypted_header(got);
    if (!parsed) {
        if (!is_encrypted(got)) return make_error(errc::bad_format, name + " is not an hsmaudit encrypted file");
        // The magic, then the end: a torn header is damage (no plaintext), like a torn chunk.
        std::unique_ptr<EncryptedFileSource> torn(
            new EncryptedFileSource(std::move(raw), store_key, EncryptedHeader{}, std::move(name)));
        torn->damage_ =
            "torn header (" + std::to_string(*n) + " of " + std::to_string(kEncryptedHeaderBytes) + " bytes)";
        torn->valid_bytes_ = 0;
        torn->done_ = true;
        return torn;
    }
    return std::unique_ptr<EncryptedFileSource>(
        new EncryptedFileSource(std::move(raw), store_key, *parsed, std::move(name)));
}

Result<bool> EncryptedFileSource::next_chunk() {
    // The decoder says how many bytes the chunk needs: its length first, then the whole chunk.
    // chunk_ and plain_ keep their size between chunks (only `have` and the plaintext's size say
    // what is current): growing a std::string fills the growth with zeros, so a reader that
    // cleared them would zero-fill two chunks' worth (2 MiB) per chunk before overwriting them.
    std::string& bytes = chunk_;  // capacity kept across chunks (1 MiB each): no allocation per chunk
    std::size_t have = 0;
    plain_pos_ = 0;
    // Read by read() only as a chunk's plaintext: anything else leaves nothing to read.
    const auto nothing = [this] { plain_.clear(); };
    for (;;) {
        auto step = decoder_.decode(std::string_view(bytes.data(), have), plain_);
        if (step.status == ChunkStatus::chunk) {
            plain_pos_ = 0;
            valid_bytes_ += step.bytes;
            return true;
        }
        if (step.status == ChunkStatus::damaged) {
            nothing();
            damage_ = step.why + " at byte " + std::to_string(valid_bytes_);
            return false;
        }
        if (bytes.size() < step.bytes) bytes.resize(step.bytes);
        auto n = read_full(*file_, std::span<char>(bytes.data() + have, step.bytes - have));
        if (!n) {
            nothing();
            return std::move(n).error();
        }
        if (have + *n < step.bytes) {
            nothing();
            if (have + *n == 0) return false;  // the end, at a chunk boundary
            damage_ = (have + *n < 4 ? "torn chunk header at byte "
                                     : "torn chunk " + std::to_string(decoder_.next_index()) + " at byte ") +
                      std::to_string(valid_bytes_);
            return false;
        }
        have = step.bytes;
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
        auto sk = store_key(*key);
        if (!sk) return std::move(sk).error();
        auto enc = EncryptedFileSource::open(path, *sk);
        secure_zero(sk->data(), sk->size());
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
    auto sk = store_key(*key);
    if (!sk) return std::move(sk).error();
    auto enc = EncryptedFileSource::open(std::move(whole), *sk, name);
    secure_zero(sk->data(), sk->size());
    if (!enc) return std::move(enc).error();
    return std::unique_ptr<base::ByteSource>(std::move(*enc));
}

}  // namespace hsmaudit::mac
