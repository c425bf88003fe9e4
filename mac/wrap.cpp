#include "mac/wrap.h"

#include <array>
#include <map>

#include "base/files.h"
#include "mac/errc.h"
#include "mac/record.h"

namespace hsmaudit::mac {
namespace {

constexpr std::string_view kWrapFormat = "hsmaudit-wrapped-key/1";
constexpr std::uint64_t kMaxScryptN = 1ULL << 22;
constexpr std::uint32_t kMaxScryptR = 32;
constexpr std::uint32_t kMaxScryptP = 16;

Error bad(std::string what) {
    return make_error(errc::bad_format, "wrapped secret: " + std::move(what));
}

bool is_power_of_two(std::uint64_t n) {
    return n >= 2 && (n & (n - 1)) == 0;
}

std::string header_text(const WrapParams& p, ByteView salt, ByteView nonce) {
    std::string h;
    h += "format: " + std::string(kWrapFormat) + "\n";
    h += "kdf: scrypt\n";
    h += "n: " + std::to_string(p.scrypt_n) + "\n";
    h += "r: " + std::to_string(p.scrypt_r) + "\n";
    h += "p: " + std::to_string(p.scrypt_p) + "\n";
    h += "salt: " + hex_encode(salt) + "\n";
    h += "cipher: aes-256-gcm\n";
    h += "nonce: " + hex_encode(nonce) + "\n";
    return h;
}

}  // namespace

Result<std::string> wrap_audit_key(const AuditKey& key, std::string_view passphrase, const WrapParams& params) {
    if (passphrase.size() < kMinPassphraseLength)
        return make_error(errc::invalid_argument,
                          "passphrase is shorter than " + std::to_string(kMinPassphraseLength) + " characters");
    if (!is_power_of_two(params.scrypt_n) || params.scrypt_n > kMaxScryptN || params.scrypt_r == 0 ||
        params.scrypt_r > kMaxScryptR || params.scrypt_p == 0 || params.scrypt_p > kMaxScryptP)
        return make_error(errc::invalid_argument, "scrypt parameters out of range");
    std::array<std::uint8_t, 16> salt{};
    std::array<std::uint8_t, 12> nonce{};
    HSMAUDIT_TRY(random_bytes(salt));
    HSMAUDIT_TRY(random_bytes(nonce));
    auto kek = scrypt_kdf(passphrase, salt, params.scrypt_n, params.scrypt_r, params.scrypt_p);
    if (!kek) return std::move(kek).error();
    const std::string header = header_text(params, salt, nonce);
    std::string plain = key.serialize();
    std::array<std::uint8_t, 16> tag{};
    auto ct = aes256gcm_seal(*kek, nonce, as_bytes(header), as_bytes(plain), tag);
    secure_zero(plain.data(), plain.size());
    secure_zero(kek->data(), kek->size());
    if (!ct) return std::move(ct).error();
    std::string out = "# hsmaudit wrapped audit secret: import with 'hsmaudit verify --wrapped-key'\n";
    out += header;
    out += "ciphertext: " + hex_encode(as_bytes(*ct)) + "\n";
    out += "tag: " + hex_encode(tag) + "\n";
    return out;
}

Result<AuditKey> unwrap_audit_key(std::string_view blob, std::string_view passphrase) {
    // Field order is fixed; the authenticated header is rebuilt from the parsed values, so any
    // change to it (or to the ciphertext) fails the GCM tag.
    std::map<std::string, std::string> f;
    std::vector<std::string> order;
    while (!blob.empty()) {
        const auto nl = blob.find('\n');
        std::string_view line = blob.substr(0, nl);
        blob = nl == std::string_view::npos ? std::string_view{} : blob.substr(nl + 1);
        if (line.empty() || line[0] == '#') continue;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) return bad("line without 'name: value'");
        std::string name(line.substr(0, colon));
        if (f.contains(name)) return bad("duplicate field '" + name + "'");
        order.push_back(name);
        f.emplace(name, std::string(line.substr(colon + 2)));
    }
    const std::vector<std::string> expected = {"format", "kdf",    "n",     "r",          "p",
                                               "salt",   "cipher", "nonce", "ciphertext", "tag"};
    if (!f.contains("format") || f["format"] != kWrapFormat)
        return bad("not an hsmaudit wrapped secret (expected format " + std::string(kWrapFormat) + ")");
    if (order != expected) return bad("fields missing, unknown or out of order");
    if (f["kdf"] != "scrypt" || f["cipher"] != "aes-256-gcm") return bad("unsupported kdf or cipher");
    WrapParams p;
    std::uint64_t r = 0, pp = 0;
    if (!parse_u64(f["n"], p.scrypt_n) || !parse_u64(f["r"], r) || !parse_u64(f["p"], pp))
        return bad("bad scrypt parameters");
    if (!is_power_of_two(p.scrypt_n) || p.scrypt_n > kMaxScryptN || r == 0 || r > kMaxScryptR || pp == 0 ||
        pp > kMaxScryptP)
        return bad("scrypt parameters out of the accepted range");
    p.scrypt_r = static_cast<std::uint32_t>(r);
    p.scrypt_p = static_cast<std::uint32_t>(pp);
    std::array<std::uint8_t, 16> salt{};
    std::array<std::uint8_t, 12> nonce{};
    std::array<std::uint8_t, 16> tag{};
    if (!hex_decode(f["salt"], salt) || !hex_decode(f["nonce"], nonce) || !hex_decode(f["tag"], tag))
        return bad("salt, nonce or tag is not lowercase hex of the right length");
    const std::string& ct_hex = f["ciphertext"];
    if (ct_hex.empty() || ct_hex.size() % 2 != 0 || ct_hex.size() > 8192) return bad("ciphertext has a bad length");
    std::string ct(ct_hex.size() / 2, '\0');
    if (!hex_decode(ct_hex, {reinterpret_cast<std::uint8_t*>(ct.data()), ct.size()}))
        return bad("ciphertext is not lowercase hex");
    auto kek = scrypt_kdf(passphrase, salt, p.scrypt_n, p.scrypt_r, p.scrypt_p);
    if (!kek) return std::move(kek).error();
    auto plain = aes256gcm_open(*kek, nonce, as_bytes(header_text(p, salt, nonce)), as_bytes(ct), tag);
    secure_zero(kek->data(), kek->size());
    if (!plain)
        return make_error(errc::bad_passphrase,
                          "cannot unwrap the audit secret: wrong passphrase, or the file was altered");
    auto key = AuditKey::parse(*plain);
    secure_zero(plain->data(), plain->size());
    return key;
}

Result<std::string> read_passphrase_file(const std::string& path) {
    auto text = base::read_secret_file(path, 4096);
    if (!text) return std::move(text).error();
    std::string pass = text->substr(0, text->find('\n'));
    if (!pass.empty() && pass.back() == '\r') pass.pop_back();
    secure_zero(text->data(), text->size());
    if (pass.empty()) return make_error(errc::invalid_argument, path + ": the passphrase file is empty");
    return pass;
}

}  // namespace hsmaudit::mac
