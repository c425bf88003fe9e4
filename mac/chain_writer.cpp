#include "mac/chain_writer.h"

#include "mac/errc.h"

namespace hsmaudit::mac {

bool valid_serial(std::string_view serial) {
    if (serial.empty() || serial.size() > 32) return false;
    for (char c : serial) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

ChainHead genesis_head(const AuditKey& key) {
    ChainHead h;
    h.epoch_key = epoch0_key(key.secret(), key.chain());
    return h;
}

Result<ChainWriter> ChainWriter::create(ChainId chain, std::string serial, std::uint32_t boot, Ed25519PrivateKey signer,
                                        const ChainHead& head) {
    if (!valid_serial(serial))
        return make_error(errc::invalid_argument, "module serial must be 1-32 of [A-Za-z0-9._-]");
    if (chain_id_of(signer.public_key()) != chain)
        return make_error(errc::bad_key, "the signing key does not belong to this chain");
    if (head.next_seq == 0) return make_error(errc::invalid_argument, "sequence numbers start at 1");
    auto hmac = HmacSha256::create(head.epoch_key);
    if (!hmac) return std::move(hmac).error();
    auto sha = Sha256::create();
    if (!sha) return std::move(sha).error();
    return ChainWriter(chain, std::move(serial), boot, std::move(signer), head, std::move(*hmac), std::move(*sha));
}

ChainWriter::ChainWriter(ChainId chain, std::string serial, std::uint32_t boot, Ed25519PrivateKey signer,
                         const ChainHead& head, HmacSha256 hmac, Sha256 sha)
    : chain_(chain),
      serial_(std::move(serial)),
      boot_(boot),
      signer_(std::move(signer)),
      head_(head),
      hmac_(std::move(hmac)),
      sha_(std::move(sha)) {
    body_.reserve(512);
}

ChainWriter::~ChainWriter() {
    secure_zero(head_.epoch_key.data(), head_.epoch_key.size());
}
ChainWriter::ChainWriter(ChainWriter&&) noexcept = default;
ChainWriter& ChainWriter::operator=(ChainWriter&&) noexcept = default;

Result<std::string> ChainWriter::open_segment(std::int64_t time_ms) {
    if (head_.segment_open) return make_error(errc::invalid_state, "a segment is already open");
    OpenLine o;
    o.chain = chain_;
    o.serial = serial_;
    o.epoch = head_.epoch;
    o.boot = boot_;
    o.first_seq = head_.next_seq;
    o.time_ms = time_ms;
    o.prev = head_.last_mac;
    const std::string body = o.body();
    o.mac = hmac_.compute(as_bytes(body), o.prev);
    std::string line = o.line();
    head_.digest = digest_start(sha_, line);
    head_.segment_open = true;
    head_.segment_first_seq = head_.next_seq;
    head_.segment_records = 0;
    return line;
}

Result<Mac> ChainWriter::append(AuditRecord& rec, std::string& out) {
    if (!head_.segment_open) return make_error(errc::invalid_state, "no segment is open");
    // An invalid key would be written (escaped) and MACed, but parse_record_body() rejects it,
    // and a key holding '=' would parse back as another key and value.
    for (const auto& d : rec.details)
        if (!valid_detail_key(d.key))
            return make_error(errc::invalid_argument, "invalid detail key '" + d.key.substr(0, 40) +
                                                          "': keys are 1-32 of [a-z0-9_], starting with a letter");
    rec.seq = head_.next_seq;
    rec.serial = serial_;
    rec.boot = boot_;
    body_.clear();
    encode_record_body(rec, body_);
    if (body_.size() + 70 > kMaxLineBytes)
        return make_error(errc::invalid_argument, "record is longer than " + std::to_string(kMaxLineBytes) + " bytes");
    const Mac mac = hmac_.compute(as_bytes(body_), head_.last_mac);
    const std::size_t start = out.size();
    out += body_;
    out += " mac=";
    hex_append(mac, out);
    out += '\n';
    head_.digest = digest_next(sha_, head_.digest, std::string_view(out).substr(start));
    head_.last_mac = mac;
    ++head_.next_seq;
    ++head_.segment_records;
    return mac;
}

Result<std::string> ChainWriter::seal(std::int64_t time_ms) {
    if (!head_.segment_open) return make_error(errc::invalid_state, "no segment is open");
    SealLine s;
    s.chain = chain_;
    s.serial = serial_;
    s.epoch = head_.epoch;
    s.records = head_.segment_records;
    s.first_seq = head_.segment_first_seq;
    s.last_seq = head_.next_seq - 1;
    s.time_ms = time_ms;
    s.final_mac = head_.last_mac;
    s.digest = head_.digest;
    s.mac = hmac_.compute(as_bytes(s.mac_body()), s.final_mac);
    auto sig = signer_.sign(as_bytes(s.signed_body()));
    if (!sig) return std::move(sig).error();
    s.sig = *sig;
    // Evolve: K_{e+1} replaces K_e, which is erased; sealed records can no longer be forged.
    const Bytes32 next = next_epoch_key(head_.epoch_key, head_.epoch + 1);
    HSMAUDIT_TRY(hmac_.rekey(next));
    secure_zero(head_.epoch_key.data(), head_.epoch_key.size());
    head_.epoch_key = next;
    ++head_.epoch;
    head_.segment_open = false;
    head_.segment_records = 0;
    head_.digest = {};
    return s.line();
}

}  // namespace hsmaudit::mac
