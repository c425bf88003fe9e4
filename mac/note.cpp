#include "mac/note.h"

#include <openssl/evp.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "mac/errc.h"

namespace hsmaudit::mac {
namespace {

constexpr std::string_view kSigPrefix = "\xe2\x80\x94 ";  // U+2014 EM DASH, then a space
constexpr std::uint8_t kAlgEd25519 = 1;
constexpr int kMaxSignatures = 100;  // Go's note.Open refuses more

Error malformed(std::string message) {
    return make_error(errc::bad_format, "signed note: " + std::move(message));
}

// Decodes one UTF-8 sequence at s[i] as Go's utf8.DecodeRune does (no overlongs, surrogates or
// values above U+10FFFF); nullopt for an invalid byte. `len` receives the sequence length.
std::optional<char32_t> decode_rune(std::string_view s, std::size_t i, std::size_t& len) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        len = 1;
        return b0;
    }
    std::size_t n = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0U) == 0xC0U) {
        n = 2;
        cp = b0 & 0x1FU;
        min = 0x80;
    } else if ((b0 & 0xF0U) == 0xE0U) {
        n = 3;
        cp = b0 & 0x0FU;
        min = 0x800;
    } else if ((b0 & 0xF8U) == 0xF0U) {
        n = 4;
        cp = b0 & 0x07U;
        min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (i + n > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0U) != 0x80U) return std::nullopt;
        cp = (cp << 6U) | (b & 0x3FU);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    len = n;
    return cp;
}

// Go's unicode.IsSpace.
bool is_space(char32_t c) {
    switch (c) {
        case '\t':
        case '\n':
        case '\v':
        case '\f':
        case '\r':
        case ' ':
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000: return true;
        default: return c >= 0x2000 && c <= 0x200A;
    }
}

// Valid UTF-8 with no ASCII control character other than LF (Go's note.Open first check).
bool valid_note_bytes(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        std::size_t len = 0;
        const auto r = decode_rune(s, i, len);
        if (!r || (*r < 0x20 && *r != '\n')) return false;
        i += len;
    }
    return true;
}

std::string hash_prefix(std::uint32_t h) {
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((h >> (24 - 8 * i)) & 0xFFU);
    return out;
}

std::string encoded_key(const Ed25519PublicKey& key) {
    std::string out(1, static_cast<char>(kAlgEd25519));
    out.append(reinterpret_cast<const char*>(key.raw().data()), key.raw().size());
    return out;
}

std::uint32_t key_hash_of(std::string_view name, std::string_view encoded) {
    auto sha = Sha256::create();
    if (!sha) return 0;
    std::string msg(name);
    msg += '\n';
    msg += encoded;
    const Bytes32 d = sha->compute(as_bytes(msg));
    return (std::uint32_t{d[0]} << 24U) | (std::uint32_t{d[1]} << 16U) | (std::uint32_t{d[2]} << 8U) | d[3];
}

}  // namespace

// ---- base64 ----

std::string base64_encode(ByteView data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    auto is_b64 = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    };
    if (text.size() % 4 != 0) return make_error(errc::bad_format, "base64: length not a multiple of 4");
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=') pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    for (std::size_t i = 0; i < text.size() - pad; ++i) {
        if (!is_b64(text[i])) return make_error(errc::bad_format, "base64: invalid character");
    }
    std::string out(text.size() / 4 * 3, '\0');
    if (!text.empty()) {
        const int n =
            EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
        if (n < 0 || static_cast<std::size_t>(n) != out.size()) return make_error(errc::bad_format, "base64: invalid");
    }
    out.resize(out.size() - pad);
    // Canonical only: the unused bits of the last character must be zero (re-encoding gives the input).
    if (base64_encode(as_bytes(out)) != text) return make_error(errc::bad_format, "base64: not canonical");
    return out;
}

namespace note {

bool valid_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size();) {
        std::size_t len = 0;
        const auto r = decode_rune(name, i, len);
        if (!r || is_space(*r) || *r == '+') return false;
        i += len;
    }
    return true;
}

std::uint32_t key_hash(std::string_view name, const Ed25519PublicKey& key) {
    return key_hash_of(name, encoded_key(key));
}

Result<std::string> verifier_key(std::string_view name, const Ed25519PublicKey& key) {
    if (!valid_name(name)) return make_error(errc::invalid_argument, "note: invalid key name");
    char hex[9];
    static constexpr char kDigits[] = "0123456789abcdef";
    const std::uint32_t h = key_hash(name, key);
    for (int i = 0; i < 8; ++i) hex[i] = kDigits[(h >> (28 - 4 * i)) & 0xFU];
    hex[8] = '\0';
    std::string out(name);
    out += '+';
    out += hex;
    out += '+';
    out += base64_encode(as_bytes(encoded_key(key)));
    return out;
}

Result<NoteVerifier> parse_verifier_key(std::string_view vkey) {
    const auto p1 = vkey.find('+');
    if (p1 == std::string_view::npos) return make_error(errc::bad_key, "verifier key: name+hash+key expected");
    const std::string_view name = vkey.substr(0, p1);
    const std::string_view rest = vkey.substr(p1 + 1);
    const auto p2 = rest.find('+');
    if (p2 == std::string_view::npos) return make_error(errc::bad_key, "verifier key: name+hash+key expected");
    const std::string_view hash16 = rest.substr(0, p2);
    const std::string_view key64 = rest.substr(p2 + 1);
    std::uint32_t hash = 0;
    const auto [ptr, ec] = std::from_chars(hash16.data(), hash16.data() + hash16.size(), hash, 16);
    if (hash16.size() != 8 || ec != std::errc{} || ptr != hash16.data() + hash16.size() || !valid_name(name)) {
        return make_error(errc::bad_key, "verifier key: malformed name or hash");
    }
    auto key = base64_decode(key64);
    if (!key || key->size() != 33 || static_cast<std::uint8_t>((*key)[0]) != kAlgEd25519) {
        return make_error(errc::bad_key, "verifier key: not an Ed25519 key (0x01 || 32 bytes)");
    }
    if (key_hash_of(name, *key) != hash) return make_error(errc::bad_key, "verifier key: hash does not match");
    auto pub = Ed25519PublicKey::from_raw(as_bytes(std::string_view(*key).substr(1)));
    if (!pub) return std::move(pub).error();
    return NoteVerifier{std::string(name), hash, std::move(pub).value()};
}

Result<std::string> sign(std::string_view text, std::string_view name, const Ed25519PrivateKey& key) {
    if (text.empty() || text.back() != '\n' || !valid_note_bytes(text) || text.find("\n\n") != std::string_view::npos ||
        text.front() == '\n') {
        return make_error(errc::invalid_argument, "note: text must be lines of UTF-8 ending in LF, none empty");
    }
    if (!valid_name(name)) return make_error(errc::invalid_argument, "note: invalid key name");
    auto sig = key.sign(as_bytes(text));
    if (!sig) return std::move(sig).error();
    std::string raw = hash_prefix(key_hash(name, key.public_key()));
    raw.append(reinterpret_cast<const char*>(sig->data()), sig->size());
    std::string out(text);
    out += '\n';
    out += kSigPrefix;
    out += name;
    out += ' ';
    out += base64_encode(as_bytes(raw));
    out += '\n';
    return out;
}

Result<std::string> open(std::string_view msg, const NoteVerifier& v) {
    if (!valid_note_bytes(msg)) return malformed("not UTF-8 text without control characters");
    const auto split = msg.rfind("\n\n");
    if (split == std::string_view::npos) return malformed("no blank line before the signatures");
    const std::string_view text = msg.substr(0, split + 1);
    std::string_view sigs = msg.substr(split + 2);
    if (sigs.empty() || sigs.back() != '\n') return malformed("the signature block must end in LF");
    int count = 0;
    bool verified = false;
    while (!sigs.empty()) {
        const auto nl = sigs.find('\n');
        std::string_view line = sigs.substr(0, nl);
        sigs.remove_prefix(nl + 1);
        if (line.substr(0, kSigPrefix.size()) != kSigPrefix) return malformed("a signature line must start with '— '");
        line.remove_prefix(kSigPrefix.size());
        const auto sp = line.find(' ');
        const std::string_view name = line.substr(0, sp);
        const std::string_view b64 = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        auto raw = base64_decode(b64);
        if (!raw || !valid_name(name) || b64.empty() || raw->size() < 5) return malformed("bad signature line");
        if (++count > kMaxSignatures) return malformed("too many signatures");
        const auto* r = reinterpret_cast<const std::uint8_t*>(raw->data());
        const std::uint32_t hash =
            (std::uint32_t{r[0]} << 24U) | (std::uint32_t{r[1]} << 16U) | (std::uint32_t{r[2]} << 8U) | r[3];
        if (name != v.name || hash != v.hash) continue;  // another key's signature: not ours to judge
        Ed25519Signature sig{};
        if (raw->size() != 4 + sig.size()) return make_error(errc::bad_signature, "signed note: bad signature length");
        std::memcpy(sig.data(), r + 4, sig.size());
        if (!v.key.verify(as_bytes(text), sig)) {
            return make_error(errc::bad_signature, "signed note: the signature by " + v.name + " does not verify");
        }
        verified = true;
    }
    if (!verified) return make_error(errc::bad_signature, "signed note: no signature by " + v.name);
    return std::string(text);
}

}  // namespace note

// ---- checkpoints ----

Result<std::string> render_checkpoint(const TreeHead& head) {
    if (!note::valid_name(head.origin)) return make_error(errc::invalid_argument, "checkpoint: invalid origin");
    std::string out = head.origin;
    out += '\n';
    out += std::to_string(head.size);
    out += '\n';
    out += base64_encode(ByteView(head.root.data(), head.root.size()));
    out += '\n';
    for (const std::string& e : head.extensions) {
        if (e.empty() || e.find('\n') != std::string::npos) {
            return make_error(errc::invalid_argument, "checkpoint: an extension line must be non-empty, without LF");
        }
        out += e;
        out += '\n';
    }
    if (!valid_note_bytes(out)) return make_error(errc::invalid_argument, "checkpoint: not valid note text");
    return out;
}

Result<TreeHead> parse_checkpoint(std::string_view text) {
    if (text.empty() || text.back() != '\n') return make_error(errc::bad_format, "checkpoint: must end in LF");
    std::vector<std::string_view> lines;
    for (std::string_view rest = text; !rest.empty();) {
        const auto nl = rest.find('\n');
        lines.push_back(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
    }
    if (lines.size() < 3) return make_error(errc::bad_format, "checkpoint: origin, size and root lines expected");
    TreeHead h;
    h.origin = std::string(lines[0]);
    if (!note::valid_name(h.origin)) return make_error(errc::bad_format, "checkpoint: invalid origin");
    const std::string_view num = lines[1];
    const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), h.size);
    if (num.empty() || ec != std::errc{} || ptr != num.data() + num.size() || (num.size() > 1 && num[0] == '0')) {
        return make_error(errc::bad_format, "checkpoint: bad tree size");
    }
    auto root = base64_decode(lines[2]);
    if (!root || root->size() != h.root.size()) return make_error(errc::bad_format, "checkpoint: bad root hash");
    std::memcpy(h.root.data(), root->data(), h.root.size());
    for (std::size_t i = 3; i < lines.size(); ++i) {
        if (lines[i].empty()) return make_error(errc::bad_format, "checkpoint: empty extension line");
        h.extensions.emplace_back(lines[i]);
    }
    if (!valid_note_bytes(text)) return make_error(errc::bad_format, "checkpoint: not valid note text");
    return h;
}

std::string tree_origin(const ChainId& chain) {
    return "hsmaudit/" + hex_encode(chain);
}

Result<note::NoteVerifier> tree_verifier(const AuditPub& pub) {
    const std::string name = tree_origin(pub.chain);
    return note::NoteVerifier{name, note::key_hash(name, pub.pubkey), pub.pubkey};
}

Result<std::string> sign_checkpoint(const TreeHead& head, const Ed25519PrivateKey& key) {
    auto text = render_checkpoint(head);
    if (!text) return text;
    return note::sign(*text, head.origin, key);
}

Result<TreeHead> open_checkpoint(std::string_view msg, const note::NoteVerifier& v) {
    auto text = note::open(msg, v);
    if (!text) return std::move(text).error();
    auto head = parse_checkpoint(*text);
    if (!head) return head;
    if (head->origin != v.name) return make_error(errc::bad_format, "checkpoint: origin differs from the key name");
    return head;
}

}  // namespace hsmaudit::mac
