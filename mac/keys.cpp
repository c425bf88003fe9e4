#include "mac/keys.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "base/files.h"
#include "mac/errc.h"

namespace hsmaudit::mac {
namespace {

constexpr std::string_view kKeyFormat = "hsmaudit-audit-key/1";
constexpr std::string_view kPubFormat = "hsmaudit-audit-pub/1";

Error bad_key(std::string what) {
    return make_error(errc::bad_key, std::move(what));
}

/// Parses "name: value" lines; '#' starts a comment line. Duplicate or unknown names are errors.
Result<std::map<std::string, std::string>> parse_fields(std::string_view text,
                                                        std::initializer_list<std::string_view> names) {
    std::map<std::string, std::string> out;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.empty() || line[0] == '#') continue;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) return bad_key("line without 'name: value'");
        std::string name(line.substr(0, colon));
        bool known = false;
        for (auto n : names) known = known || n == name;
        if (!known) return bad_key("unknown field '" + name + "'");
        if (out.contains(name)) return bad_key("duplicate field '" + name + "'");
        out.emplace(std::move(name), std::string(line.substr(colon + 2)));
    }
    for (auto n : names)
        if (!out.contains(std::string(n))) return bad_key("missing field '" + std::string(n) + "'");
    return out;
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> hex_field(const std::map<std::string, std::string>& f, const std::string& name) {
    std::array<std::uint8_t, N> out{};
    if (!hex_decode(f.at(name), out))
        return bad_key("field '" + name + "' is not " + std::to_string(2 * N) + " lowercase hex digits");
    return out;
}

}  // namespace

ChainId chain_id_of(const Ed25519PublicKey& pub) {
    auto sha = Sha256::create();
    ChainId id{};
    if (!sha) return id;
    const Bytes32 h = sha->compute(as_bytes("hsmaudit/v1/chain-id"), pub.raw());
    std::memcpy(id.data(), h.data(), id.size());
    return id;
}

std::string AuditPub::serialize() const {
    std::string s;
    s += "# hsmaudit audit chain public key: checks segment seals; not secret\n";
    s += "format: " + std::string(kPubFormat) + "\n";
    s += "chain: " + hex_encode(chain) + "\n";
    s += "pubkey: " + hex_encode(pubkey.raw()) + "\n";
    return s;
}

Result<AuditPub> AuditPub::parse(std::string_view text) {
    auto f = parse_fields(text, {"format", "chain", "pubkey"});
    if (!f) return std::move(f).error();
    if ((*f)["format"] != kPubFormat)
        return bad_key("not an hsmaudit public key file (format '" + (*f)["format"] + "')");
    auto chain = hex_field<16>(*f, "chain");
    if (!chain) return std::move(chain).error();
    auto raw = hex_field<32>(*f, "pubkey");
    if (!raw) return std::move(raw).error();
    auto pub = Ed25519PublicKey::from_raw(*raw);
    if (!pub) return std::move(pub).error();
    if (chain_id_of(*pub) != *chain) return bad_key("chain id does not match the public key");
    return AuditPub{*chain, std::move(*pub)};
}

std::string AuditKey::serialize() const {
    std::string s;
    s += "# hsmaudit audit secret: verifies every record of the chain. Keep it private (mode 0600).\n";
    s += "format: " + std::string(kKeyFormat) + "\n";
    s += "chain: " + hex_encode(chain_) + "\n";
    s += "secret: " + hex_encode(secret_) + "\n";
    s += "pubkey: " + hex_encode(pubkey_.raw()) + "\n";
    return s;
}

Result<AuditKey> AuditKey::parse(std::string_view text) {
    auto f = parse_fields(text, {"format", "chain", "secret", "pubkey"});
    if (!f) return std::move(f).error();
    if ((*f)["format"] != kKeyFormat)
        return bad_key("not an hsmaudit audit key file (format '" + (*f)["format"] + "')");
    auto chain = hex_field<16>(*f, "chain");
    if (!chain) return std::move(chain).error();
    auto secret = hex_field<32>(*f, "secret");
    if (!secret) return std::move(secret).error();
    auto raw = hex_field<32>(*f, "pubkey");
    if (!raw) return std::move(raw).error();
    auto pub = Ed25519PublicKey::from_raw(*raw);
    if (!pub) return std::move(pub).error();
    if (chain_id_of(*pub) != *chain) return bad_key("chain id does not match the public key");
    AuditKey key(*chain, *secret, std::move(*pub));
    secure_zero(secret->data(), secret->size());
    secure_zero((*f)["secret"].data(), (*f)["secret"].size());
    return key;
}

Bytes32 epoch0_key(const Bytes32& secret, const ChainId& chain) {
    std::string msg = "hsmaudit/v1/epoch-key";
    msg.append(reinterpret_cast<const char*>(chain.data()), chain.size());
    auto k = hmac_sha256(secret, as_bytes(msg));
    return k ? *k : Bytes32{};
}

Bytes32 next_epoch_key(const Bytes32& key, std::uint64_t next_epoch) {
    std::string msg = "hsmaudit/v1/evolve";
    for (int shift = 56; shift >= 0; shift -= 8) msg += static_cast<char>((next_epoch >> shift) & 0xFF);
    auto k = hmac_sha256(key, as_bytes(msg));
    return k ? *k : Bytes32{};
}

EpochKeyDeriver::EpochKeyDeriver(const AuditKey& key) : k0_(epoch0_key(key.secret(), key.chain())), current_(k0_) {}

const Bytes32& EpochKeyDeriver::key_for(std::uint64_t epoch) {
    if (epoch < epoch_) {
        current_ = k0_;
        epoch_ = 0;
    }
    while (epoch_ < epoch) {
        const Bytes32 next = next_epoch_key(current_, epoch_ + 1);
        secure_zero(current_.data(), current_.size());
        current_ = next;
        ++epoch_;
    }
    return current_;
}

Result<NewChainKeys> generate_chain_keys() {
    auto signer = Ed25519PrivateKey::generate();
    if (!signer) return std::move(signer).error();
    Bytes32 secret{};
    HSMAUDIT_TRY(random_bytes(secret));
    Ed25519PublicKey pub = signer->public_key();
    const ChainId chain = chain_id_of(pub);
    NewChainKeys keys{AuditKey(chain, secret, std::move(pub)), std::move(*signer)};
    secure_zero(secret.data(), secret.size());
    return keys;
}

Status write_key_dir(const std::string& dir, const NewChainKeys& keys) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    const std::string key_path = (fs::path(dir) / kAuditKeyFile).string();
    const std::string pub_path = (fs::path(dir) / kAuditPubFile).string();
    const std::string sign_path = (fs::path(dir) / kAuditSignFile).string();
    for (const auto& p : {key_path, pub_path, sign_path})
        if (fs::exists(p))
            return make_error(errc::invalid_argument, p + " already exists; refusing to overwrite key material");
    auto pem = keys.signer.to_pem();
    if (!pem) return std::move(pem).error();
    std::string key_text = keys.key.serialize();
    Status st = base::write_file_atomic(sign_path, *pem, 0600, true);
    if (st) st = base::write_file_atomic(key_path, key_text, 0600, true);
    if (st) st = base::write_file_atomic(pub_path, keys.key.pub().serialize(), 0644, true);
    secure_zero(pem->data(), pem->size());
    secure_zero(key_text.data(), key_text.size());
    return st;
}

Result<AuditKey> load_audit_key(const std::string& path) {
    auto text = base::read_secret_file(path);
    if (!text) return std::move(text).error();
    auto key = AuditKey::parse(*text);
    secure_zero(text->data(), text->size());
    if (!key) return make_error(errc::bad_key, path + ": " + key.error().message);
    return key;
}

Result<AuditPub> load_audit_pub(const std::string& path) {
    auto text = base::read_file(path, std::size_t{64} * 1024);
    if (!text) return std::move(text).error();
    auto pub = AuditPub::parse(*text);
    if (!pub) return make_error(errc::bad_key, path + ": " + pub.error().message);
    return pub;
}

Result<Ed25519PrivateKey> load_signing_key(const std::string& path) {
    auto text = base::read_secret_file(path);
    if (!text) return std::move(text).error();
    auto key = Ed25519PrivateKey::from_pem(*text);
    secure_zero(text->data(), text->size());
    if (!key) return make_error(errc::bad_key, path + ": " + key.error().message);
    return key;
}

}  // namespace hsmaudit::mac
