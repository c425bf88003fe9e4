// libFuzzer target for the encrypted-file framing's one decoder (mac::ChunkDecoder) and header
// parser, which every reader of segments encrypted at rest goes through (the verifier, the
// store's recovery, fsck, tail, the exporters' reader following a growing file).
//
// Input: first byte = mode, the rest = data. Mode bit 0 clear: the data is the bytes after a
// file's header, decoded as they are. Bit 0 set: the data is plaintext, sealed into chunks (cut
// where the data holds 0xff) with the fixed key, so the decoder sees valid chunks; bits 1-6 then
// pick a byte of the sealed stream to flip (0: none); bit 7 set: an encrypted file of version 1
// (counter nonces), clear: version 2 (a nonce in each chunk).
// Properties checked besides "no crash": the decoder never consumes more than it was given and
// never reports a chunk from fewer bytes than it needs; decoding the whole stream at once and
// byte by byte gives the same chunks and the same verdicts; sealed chunks, unaltered, decode to
// their plaintext; an altered byte never yields a chunk that differs from what was sealed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mac/encrypted_file.h"

namespace {

using namespace hsmaudit;

struct Outcome {
    std::vector<std::string> chunks;
    std::vector<std::string> damage;
};

/// Decodes `stream` handing the decoder everything at once (skipping damaged chunks whose
/// length is intact).
Outcome whole(const mac::Bytes32& key, const mac::EncryptedHeader& salt, std::string_view stream) {
    Outcome o;
    mac::ChunkDecoder d(key, salt);
    while (!stream.empty()) {
        const mac::ChunkStep step = d.decode(stream);
        if (step.status == mac::ChunkStatus::need_more) {
            if (step.bytes <= stream.size()) std::abort();
            break;
        }
        if (step.status == mac::ChunkStatus::damaged) {
            o.damage.push_back(step.why);
            if (step.bytes == 0) break;
            if (step.bytes > stream.size()) std::abort();
            d.skip();
        } else {
            if (step.bytes > stream.size() || step.plaintext.empty()) std::abort();
            if (step.bytes != step.plaintext.size() + mac::chunk_overhead(salt.version)) std::abort();
            o.chunks.push_back(step.plaintext);
        }
        stream.remove_prefix(step.bytes);
    }
    return o;
}

/// The same, the bytes arriving one at a time.
Outcome bytewise(const mac::Bytes32& key, const mac::EncryptedHeader& salt, std::string_view stream) {
    Outcome o;
    mac::ChunkDecoder d(key, salt);
    std::string buf;
    for (char c : stream) {
        buf += c;
        const mac::ChunkStep step = d.decode(buf);
        if (step.status == mac::ChunkStatus::need_more) {
            if (step.bytes <= buf.size()) std::abort();
            continue;
        }
        if (step.status == mac::ChunkStatus::damaged) {
            o.damage.push_back(step.why);
            if (step.bytes == 0) return o;
            if (step.bytes != buf.size()) std::abort();  // its extent known: judged once it is all there
            d.skip();
        } else {
            if (step.bytes != buf.size()) std::abort();  // a chunk is reported as soon as it is whole
            o.chunks.push_back(step.plaintext);
        }
        buf.clear();
    }
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 16 * 1024) return 0;
    mac::Bytes32 key;
    key.fill(0x42);
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

    // The header parser: only a 24-byte prefix with the magic is a header.
    const auto header_salt = mac::parse_encrypted_header(in);
    if (header_salt.has_value() != (in.size() >= mac::kEncryptedHeaderBytes && mac::is_encrypted(in))) std::abort();

    mac::EncryptedHeader salt;  // both versions: the top bit of the first byte picks version 1
    salt.version = (data[0] & 0x80) != 0 ? 1 : 2;
    salt.salt.fill(0x17);
    std::string stream;
    std::vector<std::string> sealed_plain;
    const std::size_t flip = (data[0] >> 1) & 0x3f;
    if (data[0] & 1) {
        auto resumed = mac::ChunkSealer::resume(key, salt, 0);
        if (!resumed) std::abort();
        auto& sealer = *resumed;
        std::size_t start = 0;
        for (std::size_t i = 0; i <= in.size(); ++i) {
            if (i < in.size() && static_cast<std::uint8_t>(in[i]) != 0xff) continue;
            if (i > start) {
                sealed_plain.emplace_back(in.substr(start, i - start));
                if (!sealer.seal(sealed_plain.back(), stream)) std::abort();
            }
            start = i + 1;
        }
        if (flip != 0 && !stream.empty()) stream[flip % stream.size()] ^= 0x20;
    } else {
        stream.assign(in);
    }

    const Outcome a = whole(key, salt, stream);
    const Outcome b = bytewise(key, salt, stream);
    if (a.chunks != b.chunks || a.damage != b.damage) std::abort();
    if (data[0] & 1) {
        if (flip == 0 && (a.chunks != sealed_plain || !a.damage.empty())) std::abort();
        // Authentication: whatever decodes is a chunk that was sealed, at its own index.
        for (std::size_t i = 0, j = 0; i < a.chunks.size(); ++i) {
            while (j < sealed_plain.size() && sealed_plain[j] != a.chunks[i]) ++j;
            if (j == sealed_plain.size()) std::abort();
            ++j;
        }
    }
    return 0;
}
