#include "exporters/kafka/fleet_verify.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "exporters/kafka/detail/rdkafka_handles.h"
#include "exporters/kafka/errc.h"
#include "mac/checkpoint.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::exporters::kafka {
namespace {

constexpr std::size_t kRecent = 4096;                // records remembered per serial to recognise redeliveries
constexpr std::uint64_t kEpochLookahead = 16;        // epochs tried after the current one without an epoch header
constexpr std::uint64_t kEpochSearchUnknown = 4096;  // epochs tried when the chain's epoch is not known yet

std::string range_text(std::uint64_t a, std::uint64_t b) {
    return a == b ? "record " + std::to_string(a) : "records " + std::to_string(a) + ".." + std::to_string(b);
}

bool safe_serial(std::string_view s) {
    if (s.empty() || s.size() > 32 || s == "." || s == "..") return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

}  // namespace

// ---- state encoding (committed offset metadata) ----

std::string encode_states(const std::map<std::string, ChainState, std::less<>>& states) {
    std::string out = "v1";
    for (const auto& [serial, s] : states) {
        out += ';';
        out += serial;
        out += ':';
        out += s.epoch_known ? std::to_string(s.epoch) : std::string("-");
        out += ':' + std::to_string(s.next_seq) + ':';
        out += s.mac_known ? mac::hex_encode(s.last_mac) : std::string("-");
        out += ':' + std::to_string(s.boot) + ':' + std::to_string(s.last_time_ms);
    }
    return out;
}

Result<std::map<std::string, ChainState, std::less<>>> decode_states(std::string_view text) {
    std::map<std::string, ChainState, std::less<>> out;
    auto bad = [&](std::string_view why) {
        return make_error(errc::consume_failed, "committed verification state: " + std::string(why));
    };
    if (text.substr(0, 2) != "v1") return bad("unknown version");
    text.remove_prefix(2);
    while (!text.empty()) {
        if (text.front() != ';') return bad("expected ';'");
        text.remove_prefix(1);
        const auto end = text.find(';');
        std::string_view item = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
        std::vector<std::string_view> f;
        while (true) {
            const auto c = item.find(':');
            f.push_back(item.substr(0, c));
            if (c == std::string_view::npos) break;
            item.remove_prefix(c + 1);
        }
        if (f.size() != 6 || !safe_serial(f[0])) return bad("malformed entry");
        ChainState s;
        std::uint64_t v = 0;
        if (f[1] != "-") {
            if (!mac::parse_u64(f[1], s.epoch)) return bad("epoch");
            s.epoch_known = true;
        }
        if (!mac::parse_u64(f[2], s.next_seq)) return bad("next seq");
        if (f[3] != "-") {
            if (!mac::hex_decode(f[3], s.last_mac)) return bad("mac");
            s.mac_known = true;
        }
        if (!mac::parse_u64(f[4], v) || v > UINT32_MAX) return bad("boot");
        s.boot = static_cast<std::uint32_t>(v);
        if (!mac::parse_u64(f[5], v)) return bad("time");
        s.last_time_ms = static_cast<std::int64_t>(v);
        out.emplace(std::string(f[0]), s);
    }
    return out;
}

StreamMessage stream_message(std::string source, std::uint64_t offset,
                             const std::function<std::optional<std::string_view>(const char* name)>& header) {
    StreamMessage m;
    m.source = std::move(source);
    m.offset = offset;
    if (auto v = header("kind")) m.kind.assign(*v);
    if (auto v = header("entry")) m.entry.assign(*v);
    if (auto v = header("line")) m.line.assign(*v);
    std::uint64_t e = 0;
    if (auto v = header("epoch"); v && !v->empty() && mac::parse_u64(*v, e)) m.epoch = e;
    return m;
}

bool FleetReport::verified() const {
    return std::all_of(serials.begin(), serials.end(), [](const SerialReport& s) { return s.verified(); });
}

// ---- StreamChain ----

StreamChain::StreamChain(std::string serial, std::optional<mac::AuditKey> key, std::optional<mac::AuditPub> pub,
                         std::size_t max_faults)
    : serial_(std::move(serial)), key_(std::move(key)), pub_(std::move(pub)), max_faults_(max_faults) {
    report_.serial = serial_;
    if (key_) {
        if (!pub_) pub_ = key_->pub();
        deriver_ = std::make_unique<mac::EpochKeyDeriver>(*key_);
        const mac::Bytes32 zero{};
        if (auto h = mac::HmacSha256::create(zero)) hmac_.emplace(std::move(*h));
        report_.key_kind = "key";
    } else {
        report_.key_kind = pub_ ? "pub" : "none";
    }
}

StreamChain::~StreamChain() = default;

void StreamChain::resume(const ChainState& state) {
    state_ = state;
    report_.resumed = true;
}

void StreamChain::fault(std::string kind, const std::string& where, std::uint64_t seq, std::string message) {
    ++report_.faults_total;
    if (report_.faults.size() < max_faults_)
        report_.faults.push_back(FleetFault{std::move(kind), where, seq, std::move(message)});
}

bool StreamChain::mac_ok(std::uint64_t epoch, std::string_view body, const mac::Mac& prev, const mac::Mac& mac) {
    if (!hmac_ || !deriver_) return false;
    if (hmac_epoch_ != epoch) {
        if (!hmac_->rekey(deriver_->key_for(epoch))) return false;
        hmac_epoch_ = epoch;
    }
    return mac::equal_ct(hmac_->compute(mac::as_bytes(body), prev), mac);
}

std::optional<std::uint64_t> StreamChain::find_epoch(std::string_view body, const mac::Mac& prev, const mac::Mac& mac) {
    // Epochs only go forward, one per seal: the record's epoch is the current one or a later one.
    const std::uint64_t from = state_.epoch_known ? state_.epoch : 0;
    const std::uint64_t n = state_.epoch_known ? kEpochLookahead : kEpochSearchUnknown;
    for (std::uint64_t e = from; e <= from + n; ++e)
        if (mac_ok(e, body, prev, mac)) return e;
    return std::nullopt;
}

const StreamChain::Seen* StreamChain::seen(std::uint64_t seq) const {
    if (recent_.empty() || seq < recent_.front().seq || seq > recent_.back().seq) return nullptr;
    const auto& s = recent_[seq - recent_.front().seq];
    return s.seq == seq ? &s : nullptr;
}

void StreamChain::remember(std::uint64_t seq, std::uint64_t epoch, const mac::Mac& mac) {
    if (!recent_.empty() && seq != recent_.back().seq + 1) recent_.clear();  // keep it contiguous
    recent_.push_back(Seen{seq, epoch, mac});
    if (recent_.size() > kRecent) recent_.pop_front();
    if (auto it = pending_anchors_.find(seq); it != pending_anchors_.end()) {
        if (it->second == mac)
            ++report_.anchors_matched;
        else
            fault("anchor_mismatch", where_, seq,
                  "a signed checkpoint says record " + std::to_string(seq) +
                      " has another MAC: rewritten or rolled back");
        pending_anchors_.erase(it);
    }
}

void StreamChain::observed(std::uint64_t seq, const mac::Mac& mac) {
    state_.next_seq = std::max(state_.next_seq, seq + 1);
    state_.last_mac = mac;
    state_.mac_known = true;
    remember(seq, state_.epoch, mac);
}

void StreamChain::feed(const StreamMessage& m) {
    where_ = m.source + "@" + std::to_string(m.offset);
    if (report_.key_kind == "none") return;  // reported once when the chain was created
    if (m.kind == "checkpoints") return checkpoint(m);
    if (m.kind != "audit") return;
    if (m.line.empty()) {
        fault("malformed_message", where_, 0, "no 'line' header: the exporter must run with kafka.line_header on");
        return;
    }
    if (m.entry == "open") return open(m);
    if (m.entry == "seal") return seal(m);
    record(m);
}

void StreamChain::record(const StreamMessage& m) {
    auto v = mac::split_record_line(m.line);
    if (!v) return fault("malformed_line", where_, 0, v.error().describe());
    auto rec = mac::parse_record_body(v->body);
    if (!rec) return fault("malformed_line", where_, v->seq, rec.error().describe());
    if (rec->serial != serial_)
        return fault("foreign_module", where_, v->seq, "record names module " + rec->serial + " under key " + serial_);
    const std::uint64_t s = v->seq;

    // A redelivery (at-least-once export): a record already verified, with the same MAC, whose
    // bytes still verify against its predecessor.
    if (state_.mac_known && s < state_.next_seq) {
        if (const Seen* old = seen(s); old && old->mac == v->mac) {
            const Seen* prev = s > 1 ? seen(s - 1) : nullptr;
            const mac::Mac zero{};
            const mac::Mac* prev_mac = s == 1 ? &zero : prev ? &prev->mac : nullptr;
            if (hmac_ && prev_mac && !mac_ok(old->epoch, v->body, *prev_mac, v->mac))
                return fault("record_mac_mismatch", where_, s,
                             "a redelivered copy of record " + std::to_string(s) + " differs from the one verified");
            ++report_.redelivered;
            return;
        }
    }
    ++report_.records;
    if (report_.first_seq == 0) report_.first_seq = s;
    report_.last_seq = std::max(report_.last_seq, s);
    if (state_.boot != 0 && rec->boot < state_.boot)
        fault("boot_counter_decreased", where_, s,
              "boot counter " + std::to_string(rec->boot) + " after " + std::to_string(state_.boot));
    else if (state_.boot != 0 && rec->boot != state_.boot)
        ++report_.boot_changes;
    state_.boot = rec->boot;
    state_.last_time_ms = std::max(state_.last_time_ms, rec->time_ms);
    if (m.epoch) {
        state_.epoch = *m.epoch;
        state_.epoch_known = true;
    }

    if (segment_ && segment_->in_segment()) {
        segment_->line(m.line, m.offset);  // faults through the sink; the observer updates the state
        if (hmac_) ++report_.macs_checked;
        return;
    }

    // Record to record, without the segment's open entry.
    const std::uint64_t x = state_.next_seq;
    if (!state_.mac_known) {
        // The first record seen: the stream starts here (as a file verifier given a recent range).
    } else if (s == x) {
        if (hmac_) {
            std::optional<std::uint64_t> e;
            if (m.epoch && mac_ok(*m.epoch, v->body, state_.last_mac, v->mac))
                e = *m.epoch;
            else if (!m.epoch)
                e = find_epoch(v->body, state_.last_mac, v->mac);
            if (e) {
                state_.epoch = *e;
                state_.epoch_known = true;
                ++report_.macs_checked;
            } else {
                fault("record_mac_mismatch", where_, s,
                      "record " + std::to_string(s) +
                          ": MAC does not verify "
                          "(modified, forged or inserted record)");
            }
        }
    } else if (s > x) {
        fault("sequence_gap", where_, x, range_text(x, s - 1) + " missing");
    } else if (s + 1 == x) {
        fault("sequence_duplicate", where_, s, "record " + std::to_string(s) + " again, with another MAC");
    } else {
        fault("sequence_reordered", where_, s,
              "record " + std::to_string(s) + " after record " + std::to_string(x - 1));
    }
    if (s >= x || !state_.mac_known) {
        observed(s, v->mac);
    } else {
        state_.last_mac = v->mac;  // continue from the MAC as written: one fault, not a cascade
    }
}

void StreamChain::open(const StreamMessage& m) {
    if (m.line == last_open_) {
        ++report_.redelivered;
        return;
    }
    auto o = mac::parse_open_line(m.line);
    if (!o) return fault("malformed_line", where_, 0, o.error().describe());
    if (o->serial != serial_)
        return fault("foreign_module", where_, 0, "open entry names module " + o->serial + " under key " + serial_);
    if (!segment_) {
        segment_ = std::make_unique<mac::ChainVerifier>(
            key_ ? &*key_ : nullptr, pub_ ? &*pub_ : nullptr, [this](mac::Fault&& f) {
                fault(std::string(mac::to_string(f.kind)), f.file + "@" + std::to_string(f.line), f.seq,
                      std::move(f.message));
            });
        segment_->set_record_observer(
            [this](std::uint64_t seq, const mac::Mac& mac, std::uint64_t /*line*/) { observed(seq, mac); });
    }
    if (segment_->in_segment()) segment_->end_segment(false);  // its seal never came: seal_missing
    if (state_.mac_known) {
        // Continue from where the stream stands (a previous segment, records verified without
        // their open entry, or the state committed by the group).
        const std::uint64_t end_epoch = state_.epoch_known ? state_.epoch : (o->epoch > 0 ? o->epoch - 1 : 0);
        segment_->resume(mac::ChainEnd{end_epoch, state_.next_seq, state_.last_mac, m.source});
    }
    last_open_ = m.line;
    if (!segment_->begin_segment(*o, m.line, m.source)) return;
    ++report_.segments;
    state_.epoch = o->epoch;
    state_.epoch_known = true;
    if (!state_.mac_known) {
        state_.last_mac = o->prev;
        state_.next_seq = o->first_seq;
        state_.mac_known = true;
    }
}

void StreamChain::seal(const StreamMessage& m) {
    if (m.line == last_seal_) {
        ++report_.redelivered;
        return;
    }
    last_seal_ = m.line;
    if (segment_ && segment_->in_segment()) {
        segment_->line(m.line, m.offset);
        segment_->end_segment(false);
        ++report_.seals;
        return;
    }
    // A seal whose open entry this run did not see: check what can be checked without it.
    auto p = mac::parse_seal_line(m.line);
    if (!p) return fault("malformed_line", where_, 0, p.error().describe());
    ++report_.seals;
    if (pub_ && (p->seal.chain != pub_->chain || !pub_->pubkey.verify(mac::as_bytes(p->signed_body), p->seal.sig)))
        fault("bad_signature", where_, p->seal.last_seq, "seal of epoch " + std::to_string(p->seal.epoch));
    if (state_.mac_known && p->seal.last_seq + 1 == state_.next_seq && p->seal.final_mac != state_.last_mac)
        fault("seal_mismatch", where_, p->seal.last_seq, "the seal's final MAC is not the last record's");
    if (hmac_ && !mac_ok(p->seal.epoch, p->mac_body, p->seal.final_mac, p->seal.mac))
        fault("seal_mac_mismatch", where_, p->seal.last_seq, "seal of epoch " + std::to_string(p->seal.epoch));
    state_.epoch = p->seal.epoch;
    state_.epoch_known = true;
}

void StreamChain::checkpoint(const StreamMessage& m) {
    if (!pub_) return;
    auto cp = mac::parse_checkpoint_line(m.line);
    if (!cp) return fault("malformed_line", where_, 0, cp.error().describe());
    if (cp->chain != pub_->chain || !cp->verify(pub_->pubkey))
        return fault("anchor_bad_signature", where_, cp->seq, "checkpoint not signed by this appliance's chain key");
    ++report_.checkpoints;
    if (cp->seq == 0) {
        ++report_.anchors_matched;
    } else if (const Seen* s = seen(cp->seq)) {
        if (s->mac == cp->mac)
            ++report_.anchors_matched;
        else
            fault("anchor_mismatch", where_, cp->seq, "the record at the checkpoint's seq has another MAC");
    } else if (cp->seq >= state_.next_seq || !state_.mac_known) {
        pending_anchors_[cp->seq] = cp->mac;
    }
}

void StreamChain::finish(std::optional<std::int64_t> stale_ms, std::int64_t now_ms) {
    report_.anchors_unreached = pending_anchors_.size();
    report_.epoch = state_.epoch;
    report_.boot = state_.boot;
    report_.last_time_ms = state_.last_time_ms;
    if (report_.last_seq == 0 && state_.next_seq > 1) report_.last_seq = state_.next_seq - 1;
    if (stale_ms && state_.last_time_ms > 0 && now_ms - state_.last_time_ms > *stale_ms)
        fault("stale", "", state_.next_seq - 1,
              "no record for " + std::to_string((now_ms - state_.last_time_ms) / 1000) + " s (newest " +
                  mac::format_time(state_.last_time_ms) + ")");
}

// ---- the consumer ----

namespace {

struct PartitionState {
    std::map<std::string, std::unique_ptr<StreamChain>, std::less<>> chains;
    std::map<std::string, ChainState, std::less<>> committed;  // from the group, applied on first use
    std::int64_t next_offset = -1;                             // -1: nothing consumed yet
    bool eof = false;
    bool dirty = false;
};

class FleetRun {
public:
    explicit FleetRun(const FleetOptions& o) : o_(o) {}

    Result<FleetReport> run();

private:
    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                             void* opaque);
    void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
    Result<std::unique_ptr<StreamChain>> make_chain(const std::string& serial);
    void handle(const rd_kafka_message_t& msg);
    Status commit(const std::vector<std::int32_t>& partitions);
    std::vector<std::int32_t> all_partitions() const;
    void retire(std::int32_t p);

    const FleetOptions& o_;
    detail::KafkaPtr rk_;
    std::map<std::int32_t, PartitionState> parts_;
    std::set<std::int32_t> assigned_;
    std::vector<SerialReport> done_;  // chains of partitions revoked during the run
    std::optional<Error> error_;
    FleetReport report_;
};

void FleetRun::on_rebalance(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                            void* opaque) {
    static_cast<FleetRun*>(opaque)->rebalance(err, parts);
}

void FleetRun::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!o_.from_beginning) {
            // Offsets and the verification state committed with them (metadata).
            if (rd_kafka_committed(rk_.get(), parts, 10'000) != RD_KAFKA_RESP_ERR_NO_ERROR && !error_)
                error_ = make_error(errc::consume_failed, "reading the group's committed offsets failed");
        }
        for (int i = 0; i < parts->cnt; ++i) {
            auto& tp = parts->elems[i];
            auto& ps = parts_[tp.partition];
            ps.eof = false;
            if (o_.from_beginning) {
                tp.offset = RD_KAFKA_OFFSET_BEGINNING;
            } else if (tp.metadata_size > 0) {
                auto states = decode_states(std::string_view(static_cast<const char*>(tp.metadata), tp.metadata_size));
                if (states)
                    ps.committed = std::move(*states);
                else if (!error_)
                    error_ = std::move(states).error();
            }
            assigned_.insert(tp.partition);
        }
        rd_kafka_assign(rk_.get(), parts);
    } else {
        std::vector<std::int32_t> revoked;
        for (int i = 0; i < parts->cnt; ++i) revoked.push_back(parts->elems[i].partition);
        if (auto st = commit(revoked); !st && !error_) error_ = st.error();
        for (auto p : revoked) {
            retire(p);
            assigned_.erase(p);
        }
        rd_kafka_assign(rk_.get(), nullptr);
    }
}

void FleetRun::retire(std::int32_t p) {
    auto it = parts_.find(p);
    if (it == parts_.end()) return;
    for (auto& [serial, chain] : it->second.chains) {
        chain->finish(o_.stale ? std::optional<std::int64_t>(o_.stale->count()) : std::nullopt, o_.now_ms());
        done_.push_back(chain->report());
    }
    parts_.erase(it);
}

Result<std::unique_ptr<StreamChain>> FleetRun::make_chain(const std::string& serial) {
    std::optional<mac::AuditKey> key;
    std::optional<mac::AuditPub> pub;
    if (safe_serial(serial)) {
        const auto base = std::filesystem::path(o_.keys_dir) / serial;
        std::error_code ec;
        if (std::filesystem::exists(base.string() + ".key", ec)) {
            auto k = mac::load_audit_key(base.string() + ".key");
            if (!k) return make_error(errc::io_error, k.error().describe());
            key.emplace(std::move(*k));
        } else if (std::filesystem::exists(base.string() + ".pub", ec)) {
            auto k = mac::load_audit_pub(base.string() + ".pub");
            if (!k) return make_error(errc::io_error, k.error().describe());
            pub.emplace(std::move(*k));
        }
    }
    auto chain = std::make_unique<StreamChain>(serial, std::move(key), std::move(pub), o_.max_faults_per_serial);
    if (chain->report().key_kind == "none")
        chain->report().faults_total = 1,
        chain->report().faults.push_back(FleetFault{"no_key", o_.keys_dir, 0,
                                                    "no " + serial + ".key or " + serial + ".pub in " + o_.keys_dir +
                                                        ": this appliance's records are not verified"});
    return chain;
}

void FleetRun::handle(const rd_kafka_message_t& msg) {
    auto& ps = parts_[msg.partition];
    ps.eof = false;
    ps.next_offset = msg.offset + 1;
    ps.dirty = true;
    ++report_.messages;
    const std::string serial(static_cast<const char*>(msg.key), msg.key_len);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(&msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = nullptr;
    const StreamMessage m = stream_message(
        o_.topic + "[" + std::to_string(msg.partition) + "]", static_cast<std::uint64_t>(msg.offset),
        [&](const char* name) -> std::optional<std::string_view> {
            const void* v = nullptr;
            size_t n = 0;
            if (hdrs == nullptr || rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                v == nullptr)
                return std::nullopt;
            return std::string_view(static_cast<const char*>(v), n);
        });
    auto it = ps.chains.find(serial);
    if (it == ps.chains.end()) {
        auto chain = make_chain(serial);
        if (!chain) {
            if (!error_) error_ = std::move(chain).error();
            return;
        }
        (*chain)->report().partition = msg.partition;
        if (auto c = ps.committed.find(serial); c != ps.committed.end()) (*chain)->resume(c->second);
        it = ps.chains.emplace(serial, std::move(*chain)).first;
    }
    it->second->feed(m);
}

Status FleetRun::commit(const std::vector<std::int32_t>& partitions) {
    if (o_.group.empty()) return {};
    detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (auto p : partitions) {
        auto it = parts_.find(p);
        if (it == parts_.end() || it->second.next_offset < 0 || !it->second.dirty) continue;
        auto states = it->second.committed;  // serials not seen this run keep their state
        for (const auto& [serial, chain] : it->second.chains) states[serial] = chain->state();
        const std::string meta = encode_states(states);
        auto* tp = rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p);
        tp->offset = it->second.next_offset;
        // The list owns its elements' metadata and frees it with free() when destroyed.
        tp->metadata = std::malloc(meta.size());
        if (tp->metadata == nullptr) return make_error(errc::commit_failed, "out of memory");
        std::memcpy(tp->metadata, meta.data(), meta.size());
        tp->metadata_size = meta.size();
        it->second.dirty = false;
    }
    if (list->cnt == 0) return {};
    const rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return make_error(errc::commit_failed, "committing verified offsets: " + std::string(rd_kafka_err2str(err)));
    return {};
}

std::vector<std::int32_t> FleetRun::all_partitions() const {
    std::vector<std::int32_t> out;
    for (const auto& [p, ps] : parts_) out.push_back(p);
    return out;
}

Result<FleetReport> FleetRun::run() {
    report_.topic = o_.topic;
    report_.group = o_.group;
    Properties props = {{"bootstrap.servers", o_.brokers},     {"enable.auto.commit", "false"},
                        {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"},
                        {"auto.offset.reset", "earliest"},     {"client.id", "hsmaudit-verify"}};
    // librdkafka's consumer needs a group id even to assign() partitions; without --group it is
    // never joined and nothing is committed.
    props.emplace_back("group.id", o_.group.empty() ? std::string("hsmaudit-verify-unjoined") : o_.group);
    props.insert(props.end(), o_.properties.begin(), o_.properties.end());
    auto conf = make_conf(props, o_.secret_properties);
    if (!conf) return std::move(conf).error();
    rd_kafka_conf_set_opaque(conf->get(), this);
    if (!o_.group.empty()) rd_kafka_conf_set_rebalance_cb(conf->get(), &FleetRun::on_rebalance);
    char errstr[512];
    rk_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof errstr));
    if (!rk_) return make_error(errc::config_error, std::string("kafka consumer: ") + errstr);
    (void)conf->release();
    rd_kafka_poll_set_consumer(rk_.get());

    // The topic must exist: its metadata also gives the partitions to read without a group.
    {
        detail::TopicPtr topic(rd_kafka_topic_new(rk_.get(), o_.topic.c_str(), nullptr));
        const rd_kafka_metadata_t* raw = nullptr;
        const auto err = rd_kafka_metadata(rk_.get(), 0, topic.get(), &raw, 10'000);
        const detail::MetadataPtr md(raw);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return make_error(errc::unreachable, o_.brokers + ": no metadata: " + rd_kafka_err2str(err));
        if (md->topic_cnt < 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt < 1)
            return make_error(errc::unknown_topic, "topic '" + o_.topic + "' not found on " + o_.brokers);
        if (o_.group.empty()) {
            detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt));
            for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
                const std::int32_t p = md->topics[0].partitions[i].id;
                rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
                assigned_.insert(p);
                parts_[p];
            }
            if (const auto e = rd_kafka_assign(rk_.get(), list.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
                return make_error(errc::consume_failed, std::string("assign: ") + rd_kafka_err2str(e));
        } else {
            detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
            rd_kafka_topic_partition_list_add(list.get(), o_.topic.c_str(), RD_KAFKA_PARTITION_UA);
            if (const auto e = rd_kafka_subscribe(rk_.get(), list.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
                return make_error(errc::consume_failed, std::string("subscribe: ") + rd_kafka_err2str(e));
        }
    }

    using Clock = std::chrono::steady_clock;
    auto last_activity = Clock::now();
    auto last_commit = Clock::now();
    while (!error_) {
        detail::MessagePtr msg(rd_kafka_consumer_poll(rk_.get(), 100));
        const auto now = Clock::now();
        if (msg) {
            last_activity = now;
            if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                parts_[msg->partition].eof = true;
            } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                handle(*msg);
            } else if (msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                       msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                       msg->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                       msg->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
                error_ = make_error(errc::consume_failed, rd_kafka_message_errstr(msg.get()));
            }  // other errors are transient: librdkafka retries
        }
        if (now - last_commit > std::chrono::seconds(1)) {
            if (auto st = commit(all_partitions()); !st) error_ = st.error();
            last_commit = now;
        }
        const bool all_eof = !assigned_.empty() && std::all_of(assigned_.begin(), assigned_.end(), [&](std::int32_t p) {
            auto it = parts_.find(p);
            return it != parts_.end() && it->second.eof;
        });
        if (all_eof || now - last_activity > o_.idle_timeout) break;
    }
    if (error_) return *error_;
    if (auto st = commit(all_partitions()); !st) return st.error();
    for (auto p : all_partitions()) retire(p);
    rd_kafka_consumer_close(rk_.get());
    rk_.reset();
    report_.serials = std::move(done_);
    std::sort(report_.serials.begin(), report_.serials.end(),
              [](const SerialReport& a, const SerialReport& b) { return a.serial < b.serial; });
    return report_;
}

}  // namespace

Result<FleetReport> verify_fleet(const FleetOptions& options) {
    if (options.brokers.empty() || options.topic.empty() || options.keys_dir.empty())
        return make_error(errc::invalid_argument, "--kafka, --topic and --keys are required");
    std::error_code ec;
    if (!std::filesystem::is_directory(options.keys_dir, ec))
        return make_error(errc::io_error, options.keys_dir + ": not a directory");
    FleetOptions o = options;
    if (!o.now_ms)
        o.now_ms = [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        };
    FleetRun run(o);
    return run.run();
}

nlohmann::json render_fleet_json(const FleetReport& r) {
    nlohmann::json j;
    j["verdict"] = r.verified() ? "verified" : "failed";
    j["topic"] = r.topic;
    if (!r.group.empty()) j["group"] = r.group;
    j["messages"] = r.messages;
    j["serials"] = nlohmann::json::array();
    for (const auto& s : r.serials) {
        nlohmann::json o{{"serial", s.serial},
                         {"verdict", s.verified() ? "verified" : "failed"},
                         {"partition", s.partition},
                         {"key", s.key_kind},
                         {"resumed", s.resumed},
                         {"records", s.records},
                         {"redelivered", s.redelivered},
                         {"first_seq", s.first_seq},
                         {"last_seq", s.last_seq},
                         {"epoch", s.epoch},
                         {"boot", s.boot},
                         {"boot_changes", s.boot_changes},
                         {"segments", s.segments},
                         {"seals", s.seals},
                         {"macs_checked", s.macs_checked},
                         {"checkpoints", s.checkpoints},
                         {"anchors_matched", s.anchors_matched},
                         {"anchors_unreached", s.anchors_unreached},
                         {"faults_total", s.faults_total}};
        if (s.last_time_ms > 0) o["last_time"] = mac::format_time(s.last_time_ms);
        o["faults"] = nlohmann::json::array();
        for (const auto& f : s.faults) {
            nlohmann::json fj{{"kind", f.kind}, {"where", f.where}, {"message", f.message}};
            if (f.seq) fj["seq"] = f.seq;
            o["faults"].push_back(std::move(fj));
        }
        j["serials"].push_back(std::move(o));
    }
    return j;
}

std::string render_fleet_text(const FleetReport& r) {
    std::ostringstream out;
    std::size_t failed = 0;
    for (const auto& s : r.serials) {
        if (!s.verified()) ++failed;
        out << s.serial << ": " << (s.verified() ? "VERIFIED" : "FAILED") << "  partition " << s.partition
            << ", records " << s.records;
        if (s.records) out << " (seq " << s.first_seq << ".." << s.last_seq << ")";
        out << ", epoch " << s.epoch << ", boot " << s.boot << ", key " << s.key_kind;
        if (s.segments || s.seals) out << ", segments " << s.segments << ", seals " << s.seals;
        if (s.redelivered) out << ", redelivered " << s.redelivered;
        if (s.checkpoints) out << ", checkpoints " << s.checkpoints << " (" << s.anchors_matched << " matched)";
        if (s.resumed) out << ", resumed";
        if (s.last_time_ms > 0) out << ", newest " << mac::format_time(s.last_time_ms);
        out << "\n";
        for (const auto& f : s.faults)
            out << "  " << f.kind << " " << f.where << (f.seq ? " seq " + std::to_string(f.seq) : std::string()) << ": "
                << f.message << "\n";
        if (s.faults_total > s.faults.size()) out << "  ... " << (s.faults_total - s.faults.size()) << " more faults\n";
    }
    out << r.serials.size() << " appliance(s), " << r.messages << " message(s) from " << r.topic << ": "
        << (failed == 0 ? "all verified" : std::to_string(failed) + " failed") << "\n";
    return out.str();
}

}  // namespace hsmaudit::exporters::kafka
