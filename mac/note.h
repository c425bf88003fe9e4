// Signed tree heads: the C2SP tlog-checkpoint body (origin, tree size, root hash, extension
// lines) signed as a C2SP signed-note / Go golang.org/x/mod/sumdb/note Ed25519 note, and the
// verifier key strings Go's note.NewVerifier reads. docs/FORMAT.md section 10 is the spec.
//
// Thread-safety: free functions are reentrant; NoteVerifier is immutable and may be shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mac/crypto.h"
#include "mac/keys.h"
#include "mac/merkle.h"

namespace hsmaudit::mac {

/// Standard base64 with padding (RFC 4648 section 4), as Go's base64.StdEncoding writes it.
std::string base64_encode(ByteView data);
/// Strict decode: canonical standard base64 with padding only (no whitespace, zero pad bits).
Result<std::string> base64_decode(std::string_view text);

namespace note {

/// A key (server) name as Go's note package accepts it: non-empty UTF-8 without Unicode spaces or '+'.
[[nodiscard]] bool valid_name(std::string_view name);
/// The 32-bit key id: the first 4 bytes (big-endian) of SHA-256(name || "\n" || 0x01 || pubkey).
std::uint32_t key_hash(std::string_view name, const Ed25519PublicKey& key);
/// "<name>+<8 hex digits of key_hash>+<base64(0x01 || pubkey)>" (Go's note.NewEd25519VerifierKey).
Result<std::string> verifier_key(std::string_view name, const Ed25519PublicKey& key);

/// A parsed verifier key.
struct NoteVerifier {
    std::string name;
    std::uint32_t hash = 0;
    Ed25519PublicKey key;
};
/// Parses a verifier key string (strict: the hash must match the name and key; Ed25519 only).
Result<NoteVerifier> parse_verifier_key(std::string_view vkey);

/// Signs `text` (non-empty, ending in LF, valid note text) as `name`: returns
/// text || "\n" || "— " name " " base64(key_hash || signature) "\n".
Result<std::string> sign(std::string_view text, std::string_view name, const Ed25519PrivateKey& key);

/// Opens a signed note as Go's note.Open does with one known verifier: the message must be
/// valid UTF-8 without control characters other than LF, the signature block follows the last
/// blank line, every signature line is well formed, a signature by `v` (name and key hash)
/// must verify, and at least one must. Returns the note text (up to and including its last LF).
/// Signatures by other keys are ignored. At most 100 signature lines.
Result<std::string> open(std::string_view msg, const NoteVerifier& v);

}  // namespace note

/// The origin (and note key name) of a chain's tree: "hsmaudit/" || hex(chain_id) (docs/FORMAT.md 10).
std::string tree_origin(const ChainId& chain);
/// The note verifier of a chain's tree heads: name tree_origin(chain), key P (audit.pub).
Result<note::NoteVerifier> tree_verifier(const AuditPub& pub);

/// A tree head: the body of a C2SP tlog-checkpoint.
struct TreeHead {
    std::string origin;
    std::uint64_t size = 0;
    tlog::Hash root{};
    std::vector<std::string> extensions;  // extra lines, each non-empty, without LF

    friend bool operator==(const TreeHead&, const TreeHead&) = default;
};

/// "<origin>\n<size>\n<base64 root>\n" then "<extension>\n" per extension.
Result<std::string> render_checkpoint(const TreeHead& head);
/// Strict parse of a checkpoint body (the text of an opened note).
Result<TreeHead> parse_checkpoint(std::string_view text);
/// render_checkpoint + note::sign with key name = origin.
Result<std::string> sign_checkpoint(const TreeHead& head, const Ed25519PrivateKey& key);
/// note::open + parse_checkpoint; the origin must equal the verifier's name.
Result<TreeHead> open_checkpoint(std::string_view msg, const note::NoteVerifier& v);

}  // namespace hsmaudit::mac
