#include "mac/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <span>

#include "base/line_reader.h"

#include "mac/errc.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::mac {
namespace {

Error bad(std::string what) {
    return make_error(errc::bad_format, "checkpoint: " + std::move(what));
}

}  // namespace

std::string Checkpoint::signed_body() const {
    std::string s = "@checkpoint v=" + std::to_string(version) + " chain=" + hex_encode(chain) + " serial=";
    append_escaped(serial, s);
    s += " epoch=" + std::to_string(epoch) + " seq=" + std::to_string(seq);
    if (version >= 2) s += " retained=" + std::to_string(retained);
    s += " time=" + format_time(time_ms) + " mac=" + hex_encode(mac);
    return s;
}

std::string Checkpoint::line() const {
    return signed_body() + " sig=" + hex_encode(sig);
}

bool Checkpoint::verify(const Ed25519PublicKey& pub) const {
    return pub.verify(as_bytes(signed_body()), sig);
}

Result<Checkpoint> make_checkpoint(const ChainId& chain, std::string serial, std::uint64_t epoch, std::uint64_t seq,
                                   std::int64_t time_ms, const Mac& mac, const Ed25519PrivateKey& signer) {
    Checkpoint c{chain, std::move(serial), epoch, seq, time_ms, mac, {}, 1, 0};
    auto sig = signer.sign(as_bytes(c.signed_body()));
    if (!sig) return std::move(sig).error();
    c.sig = *sig;
    return c;
}

Result<Checkpoint> make_checkpoint(const ChainId& chain, std::string serial, std::uint64_t epoch, std::uint64_t seq,
                                   std::uint64_t retained, std::int64_t time_ms, const Mac& mac,
                                   const Ed25519PrivateKey& signer) {
    if (retained == 0 || retained - 1 > seq)
        return make_error(errc::invalid_argument, "checkpoint: retained " + std::to_string(retained) +
                                                      " is not between 1 and the head's next sequence number " +
                                                      std::to_string(seq) + " + 1");
    Checkpoint c{chain, std::move(serial), epoch, seq, time_ms, mac, {}, 2, retained};
    auto sig = signer.sign(as_bytes(c.signed_body()));
    if (!sig) return std::move(sig).error();
    c.sig = *sig;
    return c;
}

Result<Checkpoint> parse_checkpoint_line(std::string_view line) {
    if (!line.starts_with("@checkpoint ")) return bad("not a checkpoint line");
    std::string_view rest = line.substr(12);
    auto field = [&](std::string_view key) -> Result<std::string_view> {
        const auto sp = rest.find(' ');
        const std::string_view tok = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        if (tok.size() <= key.size() || tok.substr(0, key.size()) != key || tok[key.size()] != '=')
            return bad("expected '" + std::string(key) + "='");
        return tok.substr(key.size() + 1);
    };
    Checkpoint c;
    auto v = field("v");
    if (!v || (*v != "1" && *v != "2")) return bad("unsupported version");
    c.version = *v == "1" ? 1 : 2;
    auto chain = field("chain");
    if (!chain || !hex_decode(*chain, c.chain)) return bad("bad chain id");
    auto serial = field("serial");
    if (!serial) return std::move(serial).error();
    auto s = unescape(*serial);
    if (!s) return std::move(s).error();
    c.serial = std::move(*s);
    auto epoch = field("epoch");
    if (!epoch || !parse_u64(*epoch, c.epoch)) return bad("bad epoch");
    auto seq = field("seq");
    if (!seq || !parse_u64(*seq, c.seq)) return bad("bad seq");
    if (c.version == 2) {
        auto retained = field("retained");
        if (!retained || !parse_u64(*retained, c.retained) || c.retained == 0 || c.retained - 1 > c.seq)
            return bad("bad retained (1 .. seq + 1)");
    }
    auto time = field("time");
    if (!time) return std::move(time).error();
    auto t = parse_time(*time);
    if (!t) return std::move(t).error();
    c.time_ms = *t;
    auto mac = field("mac");
    if (!mac || !hex_decode(*mac, c.mac)) return bad("bad mac");
    auto sig = field("sig");
    if (!sig || !hex_decode(*sig, c.sig)) return bad("bad sig");
    if (!rest.empty()) return bad("unexpected data after the signature");
    return c;
}

std::optional<Checkpoint> find_checkpoint(std::string_view text) {
    constexpr std::string_view kTag = "@checkpoint ";
    constexpr std::string_view kSig = " sig=";
    constexpr std::size_t kSigHex = 2 * sizeof(Ed25519Signature);
    for (auto at = text.find(kTag); at != std::string_view::npos; at = text.find(kTag, at + 1)) {
        // A checkpoint may sit inside a SIEM's record (JSON, syslog): it ends after its signature.
        std::string_view cand = text.substr(at);
        const auto sig = cand.find(kSig);
        if (sig == std::string_view::npos) return std::nullopt;  // no later tag can have one either
        cand = cand.substr(0, std::min(cand.size(), sig + kSig.size() + kSigHex));
        if (auto c = parse_checkpoint_line(cand)) return std::move(*c);
    }
    return std::nullopt;
}

namespace {

/// A file read as a stream: a regular file, or a pipe (`--anchors <(grep ... export.log)`).
class StreamSource final : public base::ByteSource {
public:
    explicit StreamSource(const std::string& path) : path_(path), in_(path, std::ios::binary) {}
    [[nodiscard]] bool is_open() const { return in_.is_open(); }
    Result<std::size_t> read(std::span<char> out) override {
        in_.read(out.data(), static_cast<std::streamsize>(out.size()));
        if (in_.bad()) return make_error(errc::io_error, "cannot read " + path_);
        return static_cast<std::size_t>(in_.gcount());
    }

private:
    std::string path_;
    std::ifstream in_;
};

}  // namespace

Result<CheckpointFile> read_checkpoints(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return make_error(errc::io_error, path + " is a directory");
    auto src = std::make_unique<StreamSource>(path);
    if (!src->is_open()) return make_error(errc::io_error, "cannot read " + path);
    // A checkpoint line is under 600 bytes; a SIEM record wrapping one is bounded too. Longer lines
    // are skipped (counted) without being held in memory.
    constexpr std::size_t kMaxLine = std::size_t{64} * 1024;
    base::LineReader reader(std::move(src), kMaxLine, kMaxLine);
    CheckpointFile out;
    base::Line line;
    for (;;) {
        auto got = reader.next(line);
        if (!got) return make_error(errc::io_error, path + ": " + got.error().message);
        if (!*got) break;
        ++out.lines;
        std::optional<Checkpoint> c = line.too_long ? std::nullopt : find_checkpoint(line.text);
        if (c)
            out.checkpoints.push_back(std::move(*c));
        else if (line.too_long || line.text.find_first_not_of(" \t\r") != std::string_view::npos)
            ++out.skipped;
    }
    return out;
}

}  // namespace hsmaudit::mac
