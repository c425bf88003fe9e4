#include "agent/tools/proof.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "agent/engine/store/archiver.h"
#include "agent/tools/commands.h"
#include "base/files.h"
#include "mac/errc.h"
#include "mac/keys.h"
#include "mac/record.h"
#include "mac/segment_format.h"
#include "mac/verifier.h"
#include "mac/wrap.h"

namespace hsmaudit::agent::tools {
namespace {

namespace fs = std::filesystem;
using mac::tlog::Hash;

constexpr std::string_view kMagic = "hsmaudit-proof v1";
constexpr std::size_t kMaxHashes = 64;  // a tree of 2^64 leaves has paths of 64 hashes at most
constexpr std::uint64_t kMaxCheckpointLines = 128;
constexpr std::size_t kMaxCheckpointsFileBytes =
    std::size_t{256}
    << 20;  // a checkpoints file, or an export of one  // a signed note of ours has 5; Go allows 100 signatures

/// The signed notes a file holds: the file itself when it is one note, else the note of every
/// `@treehead <base64>` line (FORMAT.md 10.5: the agent's checkpoints file, or a SIEM export of it,
/// where the text sits inside another record), in file order. Lines that do not decode are skipped.
std::vector<std::string> notes_in(const std::string& text) {
    constexpr std::string_view kTag = "@treehead ";
    std::vector<std::string> out;
    std::size_t at = text.find(kTag);
    if (at == std::string::npos) {
        out.push_back(text);
        return out;
    }
    for (; at != std::string::npos; at = text.find(kTag, at + 1)) {
        const std::size_t from = at + kTag.size();
        std::size_t end = from;
        while (end < text.size() && text[end] != ' ' && text[end] != '\n' && text[end] != '"' && text[end] != '\r')
            ++end;
        if (auto note = mac::base64_decode(std::string_view(text).substr(from, end - from))) out.push_back(*note);
    }
    return out;
}

Error malformed(const std::string& what) {
    return make_error(mac::errc::bad_format, "proof file: " + what);
}

std::string b64(const Hash& h) {
    return mac::base64_encode(mac::ByteView(h.data(), h.size()));
}

bool parse_hash(std::string_view text, Hash& out) {
    auto raw = mac::base64_decode(text);
    if (!raw || raw->size() != out.size()) return false;
    std::memcpy(out.data(), raw->data(), out.size());
    return true;
}

/// Reads the proof file line by line, strictly in order.
class Cursor {
public:
    explicit Cursor(std::string_view text) : rest_(text) {}
    [[nodiscard]] bool done() const { return rest_.empty(); }
    std::optional<std::string_view> next() {
        if (rest_.empty()) return std::nullopt;
        const auto nl = rest_.find('\n');
        if (nl == std::string_view::npos) return std::nullopt;  // every line ends in LF
        const std::string_view line = rest_.substr(0, nl);
        rest_.remove_prefix(nl + 1);
        return line;
    }
    /// The next line if it is "<name> <value>": the value.
    std::optional<std::string_view> field(std::string_view name) {
        const std::string_view saved = rest_;
        auto line = next();
        if (line && line->size() > name.size() && line->substr(0, name.size()) == name && (*line)[name.size()] == ' ')
            return line->substr(name.size() + 1);
        rest_ = saved;
        return std::nullopt;
    }
    std::optional<std::uint64_t> number(std::string_view name) {
        auto v = field(name);
        std::uint64_t n = 0;
        if (!v || !mac::parse_u64(*v, n)) return std::nullopt;
        return n;
    }
    /// "<name> <count>" then that many lines, each returned with its LF.
    std::optional<std::string> block(std::string_view name) {
        auto count = number(name);
        if (!count || *count == 0 || *count > kMaxCheckpointLines) return std::nullopt;
        std::string out;
        for (std::uint64_t i = 0; i < *count; ++i) {
            auto line = next();
            if (!line) return std::nullopt;
            out.append(*line);
            out += '\n';
        }
        return out;
    }
    [[nodiscard]] bool peek(std::string_view name) const {
        return rest_.size() > name.size() && rest_.substr(0, name.size()) == name && rest_[name.size()] == ' ';
    }

private:
    std::string_view rest_;
};

void append_block(std::string& out, std::string_view name, const std::string& note) {
    std::size_t lines = 0;
    for (char c : note) lines += c == '\n' ? 1 : 0;
    out += std::string(name) + " " + std::to_string(lines) + "\n";
    out += note;
}

// Is `head` (size, root) authenticated: by its embedded note, or by one of the notes given?
ProofCheck check_head(std::string_view what, const std::string& origin, std::uint64_t size, const Hash& root,
                      const std::string& embedded, const mac::note::NoteVerifier& v,
                      const std::vector<std::string>& given) {
    std::vector<const std::string*> notes;
    if (!embedded.empty()) notes.push_back(&embedded);
    for (const auto& g : given) notes.push_back(&g);
    const std::string head = std::string(what) + " of size " + std::to_string(size);
    for (const std::string* n : notes) {
        auto th = mac::open_checkpoint(*n, v);
        if (!th) {
            if (n == &embedded) return {false, "the checkpoint embedded for the " + head + ": " + th.error().message};
            continue;  // a given note for another purpose (or another key) does not sign this head
        }
        if (th->origin != origin) return {false, "the checkpoint for the " + head + " names another log"};
        if (th->size != size) {
            if (n == &embedded) return {false, "the checkpoint embedded for the " + head + " has another size"};
            continue;
        }
        if (th->root != root)
            return {false, "a checkpoint signed by " + v.name + " gives the " + head +
                               " another root hash: the log forked or the proof was altered"};
        return {true, ""};
    }
    return {false, "the " + head + " is not signed: give a checkpoint of that size (--checkpoint)"};
}

Result<mac::note::NoteVerifier> load_verifier(const std::string& pub_file, const std::string& vkey) {
    if (pub_file.empty() == vkey.empty()) return make_error(mac::errc::invalid_argument, "give --pubkey or --vkey");
    if (!pub_file.empty()) {
        auto pub = mac::load_audit_pub(pub_file);
        if (!pub) return std::move(pub).error();
        return mac::tree_verifier(*pub);
    }
    std::string text = vkey;
    std::error_code ec;
    if (vkey.find('+') == std::string::npos && fs::exists(vkey, ec)) {
        auto f = base::read_file(vkey, 1 << 12);
        if (!f) return std::move(f).error();
        text = *f;
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    return mac::note::parse_verifier_key(text);
}

int fail(const std::string& message) {
    std::cerr << "hsmaudit: " << message << "\n";
    return kExitUsage;
}

}  // namespace

std::string render_proof(const Proof& p) {
    std::string out(kMagic);
    out += "\nkind ";
    out += p.kind == ProofKind::inclusion ? "inclusion" : "consistency";
    out += "\norigin " + p.origin + "\n";
    if (p.kind == ProofKind::consistency) {
        out += "old-size " + std::to_string(p.old_size) + "\n";
        out += "old-root " + b64(p.old_root) + "\n";
    }
    out += "size " + std::to_string(p.size) + "\n";
    out += "root " + b64(p.root) + "\n";
    if (p.kind == ProofKind::inclusion) {
        out += "index " + std::to_string(p.index) + "\n";
        out += "leaf " + p.leaf + "\n";
    }
    for (const Hash& h : p.hashes) out += "hash " + b64(h) + "\n";
    if (!p.old_checkpoint.empty()) append_block(out, "old-checkpoint", p.old_checkpoint);
    if (!p.checkpoint.empty()) append_block(out, "checkpoint", p.checkpoint);
    out += "end\n";
    return out;
}

Result<Proof> parse_proof(std::string_view text) {
    if (text.size() > kMaxProofBytes) return malformed("too large");
    Cursor c(text);
    Proof p;
    if (c.next() != kMagic) return malformed("does not start with \"hsmaudit-proof v1\"");
    auto kind = c.field("kind");
    if (kind == "inclusion")
        p.kind = ProofKind::inclusion;
    else if (kind == "consistency")
        p.kind = ProofKind::consistency;
    else
        return malformed("kind inclusion or consistency expected");
    auto origin = c.field("origin");
    if (!origin || !mac::note::valid_name(*origin)) return malformed("bad origin");
    p.origin = std::string(*origin);
    if (p.kind == ProofKind::consistency) {
        auto old_size = c.number("old-size");
        auto old_root = c.field("old-root");
        if (!old_size || !old_root || !parse_hash(*old_root, p.old_root)) return malformed("bad old-size or old-root");
        p.old_size = *old_size;
    }
    auto size = c.number("size");
    auto root = c.field("root");
    if (!size || !root || !parse_hash(*root, p.root)) return malformed("bad size or root");
    p.size = *size;
    if (p.kind == ProofKind::inclusion) {
        auto index = c.number("index");
        auto leaf = c.field("leaf");
        if (!index || !leaf) return malformed("bad index or leaf");
        p.index = *index;
        p.leaf = std::string(*leaf);
    }
    while (c.peek("hash")) {
        auto h = c.field("hash");
        Hash hash{};
        if (!h || !parse_hash(*h, hash)) return malformed("bad hash");
        if (p.hashes.size() == kMaxHashes) return malformed("more than 64 hashes");
        p.hashes.push_back(hash);
    }
    if (c.peek("old-checkpoint")) {
        if (p.kind != ProofKind::consistency) return malformed("old-checkpoint in an inclusion proof");
        auto note = c.block("old-checkpoint");
        if (!note) return malformed("bad old-checkpoint block");
        p.old_checkpoint = std::move(*note);
    }
    if (c.peek("checkpoint")) {
        auto note = c.block("checkpoint");
        if (!note) return malformed("bad checkpoint block");
        p.checkpoint = std::move(*note);
    }
    if (c.next() != "end" || !c.done()) return malformed("\"end\" expected as the last line");
    return p;
}

ProofCheck check_proof(const Proof& p, const mac::note::NoteVerifier& v, const std::vector<std::string>& given) {
    if (p.origin != v.name) return {false, "the proof is for " + p.origin + ", the key for " + v.name};
    std::string proven;
    if (p.kind == ProofKind::inclusion) {
        auto rec = mac::split_record_line(p.leaf);
        if (!rec || rec->seq != p.index + 1)
            return {false, "the leaf is not the record line with sequence number index + 1"};
        if (!mac::tlog::verify_inclusion(p.index, p.size, mac::tlog::leaf_hash(p.leaf), p.hashes, p.root))
            return {false, "the inclusion proof does not lead to the root"};
        proven =
            "record " + std::to_string(rec->seq) + " is in " + p.origin + " at tree size " + std::to_string(p.size);
    } else {
        if (!mac::tlog::verify_consistency(p.old_size, p.size, p.old_root, p.root, p.hashes))
            return {false, "the consistency proof does not connect the two roots"};
        auto old = check_head("older tree head", p.origin, p.old_size, p.old_root, p.old_checkpoint, v, given);
        if (!old.valid) return old;
        proven = "the tree of size " + std::to_string(p.size) + " extends the tree of size " +
                 std::to_string(p.old_size) + " (" + p.origin + ")";
    }
    auto head = check_head("tree head", p.origin, p.size, p.root, p.checkpoint, v, given);
    if (!head.valid) return head;
    return {true, proven};
}

// ---- hsmaudit prove ----

int run_prove(const ProveArgs& a) {
    const bool inclusion = a.seq.has_value() || !a.event_id.empty();
    const bool consistency = a.old_size.has_value() || !a.old_checkpoint.empty();
    if (inclusion == consistency)
        return fail("prove: give --seq or --event-id (inclusion), or --old-checkpoint or --old-size (consistency)");
    if (a.seq && !a.event_id.empty()) return fail("prove: give --seq or --event-id, not both");
    if (a.old_size && !a.old_checkpoint.empty()) return fail("prove: give --old-checkpoint or --old-size, not both");
    if (a.size && !a.checkpoint.empty()) return fail("prove: give --checkpoint or --size, not both");
    if (a.paths.empty()) return fail("prove: give the trail (segment files, archives or directories)");
    const int keys = (a.key_file.empty() ? 0 : 1) + (a.wrapped_file.empty() ? 0 : 1) + (a.pub_file.empty() ? 0 : 1);
    if (keys != 1) return fail("prove: give one of --key, --wrapped-key or --pubkey");

    // The target record of an inclusion proof.
    std::uint64_t seq = a.seq.value_or(0);
    std::string id_serial;
    std::uint64_t id_boot = 0;
    if (!a.event_id.empty()) {
        // "<serial>-<boot>-<seq>" (agent/api/event.h); the serial may itself hold '-'.
        const auto d2 = a.event_id.rfind('-');
        const auto d1 = d2 == std::string::npos || d2 == 0 ? std::string::npos : a.event_id.rfind('-', d2 - 1);
        if (d1 == std::string::npos || d1 == 0 ||
            !mac::parse_u64(std::string_view(a.event_id).substr(d1 + 1, d2 - d1 - 1), id_boot) ||
            !mac::parse_u64(std::string_view(a.event_id).substr(d2 + 1), seq))
            return fail("prove: --event-id must be an audit record's id <serial>-<boot>-<seq>");
        id_serial = a.event_id.substr(0, d1);
    }
    if (inclusion && seq == 0) return fail("prove: sequence numbers start at 1");

    mac::VerifyOptions opt;
    auto secret = load_audit_secret(a.key_file, a.wrapped_file, a.pass_file);
    if (!secret) return fail("prove: " + secret.error().describe());
    if (*secret) {
        opt.key.emplace(std::move(**secret));
    } else {
        auto pub = mac::load_audit_pub(a.pub_file);
        if (!pub) return fail(pub.error().describe());
        opt.pub.emplace(std::move(*pub));
    }
    const mac::AuditPub pub = opt.key ? opt.key->pub() : *opt.pub;
    auto verifier = mac::tree_verifier(pub);
    if (!verifier) return fail(verifier.error().describe());
    const std::string origin = mac::tree_origin(pub.chain);

    std::optional<mac::Ed25519PrivateKey> signer;
    if (!a.sign_key.empty()) {
        auto k = mac::load_signing_key(a.sign_key);
        if (!k) return fail(k.error().describe());
        if (k->public_key().raw() != pub.pubkey.raw()) return fail(a.sign_key + " is not this chain's signing key");
        signer.emplace(std::move(*k));
    }
    // A note file, or a file of `@treehead` lines (the agent's checkpoints file): the newest tree
    // head in it that opens with this chain's key.
    auto open_note = [&](const std::string& file, std::string& note) -> Result<mac::TreeHead> {
        auto text = base::read_file(file, kMaxCheckpointsFileBytes);
        if (!text) return std::move(text).error();
        std::optional<mac::TreeHead> best;
        std::string why = "holds no tree head";
        for (auto& candidate : notes_in(*text)) {
            auto head = mac::open_checkpoint(candidate, *verifier);
            if (!head) {
                why = head.error().message;
                continue;
            }
            if (!best || head->size > best->size) {
                best = std::move(*head);
                note = std::move(candidate);
            }
        }
        if (!best) return make_error(mac::errc::bad_signature, file + ": " + why);
        return std::move(*best);
    };
    std::string note;
    std::string old_note;
    std::optional<mac::TreeHead> head;
    std::optional<mac::TreeHead> old_head;
    if (!a.checkpoint.empty()) {
        auto h = open_note(a.checkpoint, note);
        if (!h) {
            std::cerr << "hsmaudit: " << h.error().describe() << "\n";
            return kExitFault;
        }
        head = std::move(*h);
    }
    if (!a.old_checkpoint.empty()) {
        auto h = open_note(a.old_checkpoint, old_note);
        if (!h) {
            std::cerr << "hsmaudit: " << h.error().describe() << "\n";
            return kExitFault;
        }
        old_head = std::move(*h);
    }

    // Read and verify the trail as `verify` does, keeping the leaf hashes (and the target line).
    std::vector<Hash> leaves;
    std::string target;
    opt.on_record_line = [&](std::string_view line) {
        leaves.push_back(mac::tlog::leaf_hash(line));
        if (leaves.size() == seq) target = std::string(line);
    };
    const agent::TarExpander archives;
    opt.containers = &archives;
    auto report = mac::verify_paths(a.paths, opt);
    if (!report) return fail(report.error().describe());
    if (!report->verified()) {
        std::cerr << "hsmaudit: the trail does not verify (" << report->faults_total
                  << " faults; run hsmaudit verify): no proof from it\n";
        return kExitFault;
    }
    if (report->records > 0 && report->first_seq != 1) {
        std::cerr << "hsmaudit: the trail starts at record " << report->first_seq
                  << ": a tree covers its chain from record 1 (give the older segments or archives)\n";
        return kExitFault;
    }
    if (leaves.size() != report->records) return fail("prove: the records read differ from the records verified");
    const mac::tlog::VectorLeafHashes src(std::move(leaves));

    const std::uint64_t size = head ? head->size : a.size.value_or(src.available());
    if (size > src.available()) {
        std::cerr << "hsmaudit: the tree head has size " << size << ", the trail holds " << src.available()
                  << " records: it was truncated, or give the newer segments\n";
        return kExitFault;
    }
    auto root = mac::tlog::tree_root(size, src);
    if (!root) return fail(root.error().describe());
    if (head && head->root != *root) {
        std::cerr << "hsmaudit: the trail's tree of size " << size << " has another root than " << a.checkpoint
                  << ": the trail was rewritten, or the checkpoint is of another log\n";
        return kExitFault;
    }

    Proof p;
    p.origin = origin;
    p.size = size;
    p.root = *root;
    auto sign_head = [&](std::uint64_t n, const Hash& r) -> Result<std::string> {
        if (!signer) return std::string();
        mac::TreeHead th;
        th.origin = origin;
        th.size = n;
        th.root = r;
        return mac::sign_checkpoint(th, *signer);
    };
    if (head) {
        p.checkpoint = note;
    } else {
        auto signed_head = sign_head(size, *root);
        if (!signed_head) return fail(signed_head.error().describe());
        p.checkpoint = *signed_head;
    }
    if (inclusion) {
        if (seq > size)
            return fail("prove: record " + std::to_string(seq) + " is beyond the tree size " + std::to_string(size));
        if (!a.event_id.empty()) {
            auto rec = mac::split_record_line(target);
            auto body = rec ? mac::parse_record_body(rec->body) : Result<mac::AuditRecord>(rec.error());
            if (!body || body->serial != id_serial || body->boot != id_boot) {
                std::cerr << "hsmaudit: record " << seq << " of this trail is not event " << a.event_id
                          << " (another serial or boot counter)\n";
                return kExitFault;
            }
        }
        p.kind = ProofKind::inclusion;
        p.index = seq - 1;
        p.leaf = target;
        auto hashes = mac::tlog::inclusion_proof(p.index, size, src);
        if (!hashes) return fail(hashes.error().describe());
        p.hashes = std::move(*hashes);
    } else {
        const std::uint64_t old_size = old_head ? old_head->size : *a.old_size;
        if (old_size == 0 || old_size > size)
            return fail("prove: the older tree must have between 1 and " + std::to_string(size) + " records");
        auto old_root = mac::tlog::tree_root(old_size, src);
        if (!old_root) return fail(old_root.error().describe());
        if (old_head && old_head->root != *old_root) {
            std::cerr << "hsmaudit: the trail's tree of size " << old_size << " has another root than "
                      << a.old_checkpoint << ": the trail was rewritten since\n";
            return kExitFault;
        }
        p.kind = ProofKind::consistency;
        p.old_size = old_size;
        p.old_root = *old_root;
        if (old_head) {
            p.old_checkpoint = old_note;
        } else {
            auto signed_head = sign_head(old_size, *old_root);
            if (!signed_head) return fail(signed_head.error().describe());
            p.old_checkpoint = *signed_head;
        }
        auto hashes = mac::tlog::consistency_proof(old_size, size, src);
        if (!hashes) return fail(hashes.error().describe());
        p.hashes = std::move(*hashes);
    }
    const std::string text = render_proof(p);
    if (a.out.empty() || a.out == "-") {
        std::cout << text;
        std::cout.flush();
        if (!std::cout) return fail("cannot write the proof to stdout");
    } else if (auto st = base::write_file_atomic(a.out, text, 0644, false); !st) {
        return fail(st.error().describe());
    }
    return kExitOk;
}

// ---- hsmaudit verify-proof ----

int run_verify_proof(const VerifyProofArgs& a) {
    auto v = load_verifier(a.pub_file, a.vkey);
    if (!v) return fail("verify-proof: " + v.error().describe());
    std::vector<std::string> given;
    for (const auto& f : a.checkpoints) {
        auto text = base::read_file(f, kMaxCheckpointsFileBytes);
        if (!text) return fail(text.error().describe());
        for (auto& note : notes_in(*text)) given.push_back(std::move(note));
    }
    auto text = base::read_file(a.proof_file, kMaxProofBytes + 1);
    if (!text) return fail(text.error().describe());
    auto proof = parse_proof(*text);
    if (!proof) {
        if (!a.quiet) std::cout << "INVALID: " << a.proof_file << ": " << proof.error().message << "\n";
        return kExitFault;
    }
    const ProofCheck check = check_proof(*proof, *v, given);
    if (!a.quiet) std::cout << (check.valid ? "VALID: " : "INVALID: ") << check.message << "\n";
    return check.valid ? kExitOk : kExitFault;
}

}  // namespace hsmaudit::agent::tools
