#include "exporters/kafka/fleet_verify.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>

#include "exporters/kafka/detail/rdkafka_handles.h"
#include "exporters/kafka/errc.h"
#include "mac/record.h"
#include "mac/segment_format.h"

namespace hsmaudit::exporters::kafka {
namespace {

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

std::string_view to_string(FleetFaultKind kind) {
    switch (kind) {
        case FleetFaultKind::no_key: return "no_key";
        case FleetFaultKind::stale: return "stale";
        case FleetFaultKind::boot_counter_decreased: return "boot_counter_decreased";
        case FleetFaultKind::malformed_message: return "malformed_message";
    }
    return "unknown";
}

std::string_view FleetFault::kind_name() const {
    return std::visit([](auto k) { return to_string(k); }, kind);
}

// ---- ApplianceStream ----

ApplianceStream::ApplianceStream(std::string serial, std::optional<mac::AuditKey> key, std::optional<mac::AuditPub> pub,
                                 std::size_t max_faults)
    : max_faults_(max_faults) {
    report_.serial = serial;
    report_.key_kind = key ? "key" : pub ? "pub" : "none";
    if (key || pub)
        chain_ = std::make_unique<mac::StreamVerifier>(
            std::move(serial), std::move(key), std::move(pub), [this](mac::Fault&& f) {
                fault(FleetFault{f.kind, f.file + "@" + std::to_string(f.line), f.seq, std::move(f.message)});
            });
}

ApplianceStream::~ApplianceStream() = default;

void ApplianceStream::resume(const ChainState& state) {
    mac::StreamPosition at;
    at.epoch = state.epoch;
    at.epoch_known = state.epoch_known;
    at.next_seq = state.next_seq;
    if (state.mac_known) at.last_mac = state.last_mac;
    if (chain_) chain_->resume(at);
    resumed_ = state;
    boot_ = state.boot;
    last_time_ms_ = state.last_time_ms;
    report_.resumed = true;
}

ChainState ApplianceStream::state() const {
    ChainState s = resumed_;  // without a key nothing moved: the position stays as committed
    if (chain_) {
        const mac::StreamPosition& at = chain_->position();
        s.epoch = at.epoch;
        s.epoch_known = at.epoch_known;
        s.next_seq = at.next_seq;
        s.mac_known = at.last_mac.has_value();
        if (at.last_mac) s.last_mac = *at.last_mac;
    }
    s.boot = boot_;
    s.last_time_ms = last_time_ms_;
    return s;
}

void ApplianceStream::fault(FleetFault f) {
    ++report_.faults_total;
    if (report_.faults.size() < max_faults_) report_.faults.push_back(std::move(f));
}

void ApplianceStream::sync() {
    if (!chain_) return;
    const mac::StreamCounts& c = chain_->counts();
    report_.records = c.records;
    report_.redelivered = c.redelivered;
    report_.first_seq = c.first_seq;
    report_.last_seq = c.last_seq;
    report_.segments = c.segments;
    report_.seals = c.seals;
    report_.macs_checked = c.macs_checked;
    report_.checkpoints = c.checkpoints;
    report_.anchors_matched = c.anchors_matched;
    report_.anchors_unreached = c.anchors_unreached;
}

void ApplianceStream::feed(const StreamMessage& m) {
    if (!chain_) return;  // no_key, reported once when the stream was created
    const std::string where = m.source + "@" + std::to_string(m.offset);
    if (m.kind == "checkpoints") {
        chain_->checkpoint(m.line, m.source, m.offset);
    } else if (m.kind != "audit") {
        return;
    } else if (m.line.empty()) {
        fault(FleetFault{FleetFaultKind::malformed_message, where, 0,
                         "no 'line' header: the exporter must run with kafka.line_header on"});
    } else if (m.entry == "open") {
        chain_->open(m.line, m.source, m.offset);
    } else if (m.entry == "seal") {
        chain_->seal(m.line, m.source, m.offset);
    } else if (auto rec = chain_->record(m.line, m.epoch, m.source, m.offset)) {
        if (boot_ != 0 && rec->boot < boot_)
            fault(FleetFault{FleetFaultKind::boot_counter_decreased, where, rec->seq,
                             "boot counter " + std::to_string(rec->boot) + " after " + std::to_string(boot_)});
        else if (boot_ != 0 && rec->boot != boot_)
            ++report_.boot_changes;
        boot_ = rec->boot;
        last_time_ms_ = std::max(last_time_ms_, rec->time_ms);
    }
    sync();
}

void ApplianceStream::finish(std::optional<std::int64_t> stale_ms, std::int64_t now_ms) {
    if (chain_) chain_->finish();
    sync();
    const ChainState s = state();
    report_.epoch = s.epoch;
    report_.boot = s.boot;
    report_.last_time_ms = s.last_time_ms;
    if (report_.last_seq == 0 && s.next_seq > 1) report_.last_seq = s.next_seq - 1;
    if (stale_ms && s.last_time_ms > 0 && now_ms - s.last_time_ms > *stale_ms)
        fault(FleetFault{FleetFaultKind::stale, "", s.next_seq - 1,
                         "no record for " + std::to_string((now_ms - s.last_time_ms) / 1000) + " s (newest " +
                             mac::format_time(s.last_time_ms) + ")"});
}

// ---- the consumer ----

namespace {

struct PartitionState {
    std::map<std::string, std::unique_ptr<ApplianceStream>, std::less<>> chains;
    std::map<std::string, ChainState, std::less<>> committed;  // from the group, applied on first use
    std::int64_t next_offset = -1;                             // -1: nothing consumed yet
    bool eof = false;
    bool dirty = false;
};

/// The threads verifying the messages of a run with jobs > 1: every message of a partition goes
/// to one lane, in the order consumed, so each chain is fed as one thread would feed it.
/// Thread-safety: post(), flush() and drain() are called by the consuming thread only. A lane's
/// thread touches only the ApplianceStreams of the messages posted to it; the consuming thread
/// touches those again (state, finish, report) only after drain(). The destructor stops and joins
/// the lanes (messages not verified yet are dropped: the run failed).
class FleetLanes {
public:
    explicit FleetLanes(unsigned lanes) {
        lanes_.reserve(lanes);
        for (unsigned i = 0; i < lanes; ++i) {
            lanes_.push_back(std::make_unique<Lane>());
            Lane* lane = lanes_.back().get();
            lane->thread = std::jthread([lane](const std::stop_token& stop) { lane->loop(stop); });
        }
    }
    ~FleetLanes() {
        for (auto& l : lanes_) l->thread.request_stop();
        for (auto& l : lanes_)
            if (l->thread.joinable()) l->thread.join();
    }
    FleetLanes(const FleetLanes&) = delete;
    FleetLanes& operator=(const FleetLanes&) = delete;

    void post(std::int32_t partition, ApplianceStream* chain, StreamMessage&& m) {
        Lane& lane = *lanes_[static_cast<std::size_t>(partition < 0 ? 0 : partition) % lanes_.size()];
        lane.pending.push_back(Item{chain, std::move(m)});
        if (lane.pending.size() >= kBatch) lane.hand_over();
    }
    /// Hands the messages posted so far to their lanes.
    void flush() {
        for (auto& l : lanes_)
            if (!l->pending.empty()) l->hand_over();
    }
    /// Waits until every message posted was verified; an error if a lane failed.
    Status drain() {
        flush();
        for (auto& l : lanes_) {
            std::unique_lock lock(l->mutex);
            l->changed.wait(lock, [&] { return l->queue.empty() && !l->busy; });
            if (l->error) return make_error(errc::consume_failed, *l->error);
        }
        return {};
    }

private:
    static constexpr std::size_t kBatch = 256;      // messages handed over at once
    static constexpr std::size_t kMaxBatches = 16;  // per lane in flight: bounds memory

    struct Item {
        ApplianceStream* chain = nullptr;
        StreamMessage m;
    };
    struct Lane {
        std::mutex mutex;
        std::condition_variable_any wake;
        std::condition_variable changed;
        std::deque<std::vector<Item>> queue;
        bool busy = false;
        std::optional<std::string> error;
        std::vector<Item> pending;  // the consuming thread's
        std::jthread thread;        // joined by ~FleetLanes

        void hand_over() {
            {
                std::unique_lock lock(mutex);
                changed.wait(lock, [&] { return queue.size() < kMaxBatches; });
                queue.push_back(std::move(pending));
            }
            pending.clear();
            pending.reserve(kBatch);
            wake.notify_one();
        }
        void loop(const std::stop_token& stop) {
            for (;;) {
                std::vector<Item> batch;
                {
                    std::unique_lock lock(mutex);
                    if (!wake.wait(lock, stop, [&] { return !queue.empty(); })) return;
                    batch = std::move(queue.front());
                    queue.pop_front();
                    busy = true;
                }
                try {
                    for (auto& item : batch) item.chain->feed(item.m);
                } catch (const std::exception& e) {
                    const std::lock_guard lock(mutex);
                    if (!error) error = std::string("verifying messages: ") + e.what();
                } catch (...) {
                    const std::lock_guard lock(mutex);
                    if (!error) error = "verifying messages: unexpected error";
                }
                {
                    const std::lock_guard lock(mutex);
                    busy = false;
                }
                changed.notify_all();
            }
        }
    };
    std::vector<std::unique_ptr<Lane>> lanes_;
};

class FleetRun {
public:
    explicit FleetRun(const FleetOptions& o) : o_(o) {}

    Result<FleetReport> run();

private:
    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                             void* opaque);
    void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
    Result<std::unique_ptr<ApplianceStream>> make_chain(const std::string& serial);
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
    std::unique_ptr<FleetLanes> lanes_;  // jobs > 1; last: joined before the chains go
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
        revoked.reserve(static_cast<std::size_t>(parts->cnt));
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
    if (lanes_)
        if (auto st = lanes_->drain(); !st && !error_) error_ = st.error();
    for (auto& [serial, chain] : it->second.chains) {
        chain->finish(o_.stale ? std::optional<std::int64_t>(o_.stale->count()) : std::nullopt, o_.now_ms());
        done_.push_back(chain->report());
    }
    parts_.erase(it);
}

Result<std::unique_ptr<ApplianceStream>> FleetRun::make_chain(const std::string& serial) {
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
    const bool none = !key && !pub;
    auto chain = std::make_unique<ApplianceStream>(serial, std::move(key), std::move(pub), o_.max_faults_per_serial);
    if (none)
        chain->fault(FleetFault{FleetFaultKind::no_key, o_.keys_dir, 0,
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
    StreamMessage m = stream_message(
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
        (*chain)->set_partition(msg.partition);
        if (auto c = ps.committed.find(serial); c != ps.committed.end()) (*chain)->resume(c->second);
        it = ps.chains.emplace(serial, std::move(*chain)).first;
    }
    if (lanes_)
        lanes_->post(msg.partition, it->second.get(), std::move(m));
    else
        it->second->feed(m);
}

Status FleetRun::commit(const std::vector<std::int32_t>& partitions) {
    if (o_.group.empty()) return {};
    if (lanes_) HSMAUDIT_TRY(lanes_->drain());  // the state committed is that of every message consumed
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
        // NOLINTNEXTLINE(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory): librdkafka frees it with free()
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

    if (o_.jobs > 1) lanes_ = std::make_unique<FleetLanes>(o_.jobs);
    using Clock = std::chrono::steady_clock;
    auto last_activity = Clock::now();
    auto last_commit = Clock::now();
    while (!error_) {
        detail::MessagePtr msg(rd_kafka_consumer_poll(rk_.get(), lanes_ ? 0 : 100));
        if (!msg && lanes_) {
            // Nothing waiting: let the lanes verify what is pending while librdkafka fetches.
            lanes_->flush();
            msg.reset(rd_kafka_consumer_poll(rk_.get(), 100));
        }
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
    if (lanes_ && !error_)
        if (auto st = lanes_->drain(); !st) error_ = st.error();
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
            nlohmann::json fj{{"kind", f.kind_name()}, {"where", f.where}, {"message", f.message}};
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
            out << "  " << f.kind_name() << " " << f.where << (f.seq ? " seq " + std::to_string(f.seq) : std::string())
                << ": " << f.message << "\n";
        if (s.faults_total > s.faults.size()) out << "  ... " << (s.faults_total - s.faults.size()) << " more faults\n";
    }
    out << r.serials.size() << " appliance(s), " << r.messages << " message(s) from " << r.topic << ": "
        << (failed == 0 ? "all verified" : std::to_string(failed) + " failed") << "\n";
    return out.str();
}

}  // namespace hsmaudit::exporters::kafka
