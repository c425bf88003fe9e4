// Audit key material (docs/FORMAT.md, "Keys"): the audit secret from which every epoch's MAC
// key is derived, the module's Ed25519 audit signing key, and the files that hold them.
//
//   audit.key   the verification bundle: chain id, audit secret, signing public key (0600)
//   audit.pub   chain id and signing public key: checks seals, holds no secret
//   audit.sign  the signing private key, PKCS#8 PEM (0600); the module keeps it
//
// Thread-safety: value types; const methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mac/crypto.h"

namespace hsmaudit::mac {

using ChainId = std::array<std::uint8_t, 16>;
using Mac = Bytes32;

inline constexpr char kAuditKeyFile[] = "audit.key";
inline constexpr char kAuditPubFile[] = "audit.pub";
inline constexpr char kAuditSignFile[] = "audit.sign";

/// The chain id names a chain: the first 16 bytes of SHA-256("hsmaudit/v1/chain-id" || pubkey).
ChainId chain_id_of(const Ed25519PublicKey& pub);

/// What checks seals: the chain id and the signing public key.
struct AuditPub {
    ChainId chain{};
    Ed25519PublicKey pubkey;

    [[nodiscard]] std::string serialize() const;
    static Result<AuditPub> parse(std::string_view text);
};

/// What checks everything: the audit secret plus the public part. Wipes the secret on destruction.
class AuditKey {
public:
    AuditKey(ChainId chain, const Bytes32& secret, Ed25519PublicKey pubkey)
        : chain_(chain), secret_(secret), pubkey_(std::move(pubkey)) {}
    AuditKey(const AuditKey&) = default;
    AuditKey& operator=(const AuditKey&) = default;
    ~AuditKey() { secure_zero(secret_.data(), secret_.size()); }

    [[nodiscard]] const ChainId& chain() const { return chain_; }
    [[nodiscard]] const Bytes32& secret() const { return secret_; }
    [[nodiscard]] const Ed25519PublicKey& pubkey() const { return pubkey_; }
    [[nodiscard]] AuditPub pub() const { return AuditPub{chain_, pubkey_}; }

    [[nodiscard]] std::string serialize() const;
    static Result<AuditKey> parse(std::string_view text);

private:
    ChainId chain_{};
    Bytes32 secret_{};
    Ed25519PublicKey pubkey_;
};

/// K_0 = HMAC-SHA256(secret, "hsmaudit/v1/epoch-key" || chain_id).
Bytes32 epoch0_key(const Bytes32& secret, const ChainId& chain);
/// K_{e+1} = HMAC-SHA256(K_e, "hsmaudit/v1/evolve" || uint64_be(e + 1)); one-way.
Bytes32 next_epoch_key(const Bytes32& key, std::uint64_t next_epoch);

/// Derives epoch keys for a verifier, walking forward from the last one asked for.
class EpochKeyDeriver {
public:
    explicit EpochKeyDeriver(const AuditKey& key);
    ~EpochKeyDeriver() { secure_zero(current_.data(), current_.size()); }
    EpochKeyDeriver(const EpochKeyDeriver&) = delete;
    EpochKeyDeriver& operator=(const EpochKeyDeriver&) = delete;
    /// K_epoch. Cost: epoch - (last epoch asked) HMACs going forward; restarts from K_0 going back.
    const Bytes32& key_for(std::uint64_t epoch);

private:
    Bytes32 k0_{};
    Bytes32 current_{};
    std::uint64_t epoch_ = 0;
};

/// Key material of a new audit chain, as `hsmaudit secret init` creates it.
struct NewChainKeys {
    AuditKey key;
    Ed25519PrivateKey signer;
};
Result<NewChainKeys> generate_chain_keys();

/// Writes audit.key (0600), audit.pub (0644) and audit.sign (0600) into `dir` (created 0700 if
/// missing). Refuses to overwrite existing key files.
Status write_key_dir(const std::string& dir, const NewChainKeys& keys);

Result<AuditKey> load_audit_key(const std::string& path);
Result<AuditPub> load_audit_pub(const std::string& path);
/// Loads audit.sign and checks it against the chain id given.
Result<Ed25519PrivateKey> load_signing_key(const std::string& path);

}  // namespace hsmaudit::mac
