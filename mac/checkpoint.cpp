#include "mac/checkpoint.h"

#include <fstream>

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
    std::string s = "@checkpoint v=1 chain=" + hex_encode(chain) + " serial=";
    append_escaped(serial, s);
    s += " epoch=" + std::to_string(epoch) + " seq=" + std::to_string(seq) + " time=" + format_time(time_ms) +
         " mac=" + hex_encode(mac);
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
    Checkpoint c{chain, std::move(serial), epoch, seq, time_ms, mac, {}};
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
    if (!v || *v != "1") return bad("unsupported version");
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

Result<std::vector<Checkpoint>> read_checkpoints(const std::string& path) {
    std::ifstream in(path);
    if (!in) return make_error(errc::io_error, "cannot read " + path);
    std::vector<Checkpoint> out;
    std::string line;
    for (std::uint64_t n = 1; std::getline(in, line); ++n) {
        const auto at = line.find("@checkpoint ");
        if (at == std::string::npos) continue;
        // A checkpoint may sit inside a SIEM's record (JSON, syslog): it ends at its signature.
        std::string_view text = std::string_view(line).substr(at);
        const auto sig = text.find(" sig=");
        if (sig != std::string_view::npos) text = text.substr(0, std::min(text.size(), sig + 5 + 128));
        auto c = parse_checkpoint_line(text);
        if (!c) return make_error(errc::bad_format, path + ":" + std::to_string(n) + ": " + c.error().message);
        out.push_back(std::move(*c));
    }
    return out;
}

}  // namespace hsmaudit::mac
