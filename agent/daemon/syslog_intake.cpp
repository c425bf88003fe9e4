#include "agent/daemon/syslog_intake.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/api/errc.h"
#include "agent/daemon/service.h"
#include "base/files.h"
#include "base/logger.h"
#include "collectors/journal/journal_config.h"
#include "mac/crypto.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;
namespace sl = collectors::syslog;

}  // namespace

void apply_listener_limits(sl::ListenerOptions& options, const base::Config& config,
                           const sl::Backpressure* backpressure, AlertSink* alerts) {
    options.max_connections = static_cast<std::size_t>(config.integer("syslog.max_connections"));
    options.max_connections_per_peer = static_cast<std::size_t>(config.integer("syslog.max_connections_per_peer"));
    options.idle_timeout = std::chrono::milliseconds(config.integer("syslog.tcp_idle_timeout"));
    options.backpressure = backpressure;
    options.alerts = alerts;
}

std::uint64_t ensure_descriptor_limit(std::uint64_t needed) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed) return rl.rlim_cur;
    const rlim_t want = rl.rlim_max == RLIM_INFINITY ? needed : std::min<rlim_t>(needed, rl.rlim_max);
    const rlim_t was = rl.rlim_cur;
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        base::logger().warn("cannot raise the open-file limit from {} to {}: {}", was, want, std::strerror(errno));
        return was;
    }
    if (want < needed)
        base::logger().warn(
            "the open-file limit is {} (the hard limit), below the {} the syslog connection limits need: raise "
            "LimitNOFILE= or lower syslog.max_connections",
            want, needed);
    else
        base::logger().info("raised the open-file limit from {} to {} for the syslog connection limits", was, want);
    return want;
}

SyslogFields syslog_fields_of(const sl::SyslogMessage& m) {
    SyslogFields f;
    f.transport = sl::to_string(m.transport);
    f.peer = m.peer;
    f.format = sl::to_string(m.format);
    f.facility = m.facility;
    f.severity = m.severity;
    f.timestamp = m.timestamp_text;
    if (m.timestamp && m.timestamp_has_zone) f.time_us = m.timestamp->time_since_epoch().count();
    f.host = m.hostname;
    f.app = m.app_name;
    f.procid = m.procid;
    f.msgid = m.msgid;
    f.sd.reserve(m.structured_data.size());
    for (const auto& e : m.structured_data) {
        std::vector<std::pair<std::string, std::string>> params;
        params.reserve(e.params.size());
        for (const auto& p : e.params) params.emplace_back(p.name, p.value);
        f.sd.emplace_back(e.id, std::move(params));
    }
    f.msg = m.msg;
    f.raw = m.raw;
    if (m.malformed) f.malformed = m.malformed_reason.empty() ? "yes" : m.malformed_reason;
    f.oversized = m.oversized;
    return f;
}

std::string syslog_spool_payload(const sl::SyslogMessage& m, std::size_t max_message_bytes) {
    const SyslogFields f = syslog_fields_of(m);
    std::string payload = encode_syslog_payload(f);
    if (payload.size() <= max_syslog_payload_bytes(max_message_bytes)) return payload;
    // Cannot happen for what the collector delivers (raw is at most max_message_bytes, and every
    // field is cut from it): kept anyway so the reader's line bound can never be exceeded. The
    // exact message stays; the parsed fields, which it holds, go.
    SyslogFields bare;
    bare.transport = f.transport;
    bare.peer = f.peer.substr(0, 4096);
    bare.raw = f.raw.substr(0, max_message_bytes);
    bare.malformed = "the parsed fields did not fit the spool line; raw holds the message";
    bare.oversized = f.oversized || f.raw.size() > max_message_bytes;
    return encode_syslog_payload(bare);
}

Result<std::unique_ptr<SyslogIntake>> SyslogIntake::start(const base::Config& config, const std::string& dir,
                                                          AlertSink* alerts, std::function<void()> on_durable) {
    const auto endpoints = base::split_list(config.str("syslog.listen"));
    const auto files = base::split_list(config.str("syslog.files"));
    const bool journal = collectors::journal::journal_enabled(config);
    if (endpoints.empty() && files.empty() && !journal) return std::unique_ptr<SyslogIntake>{};
    std::unique_ptr<SyslogIntake> in(new SyslogIntake(dir));
    SpoolOptions spool_options = make_spool_options(config, (fs::path(dir) / "spool").string());
    spool_options.alerts = alerts;
    spool_options.on_durable = std::move(on_durable);
    auto spool = EventSpool::open(std::move(spool_options), wall_clock_ms);
    if (!spool) return std::move(spool).error();
    in->spool_ = std::move(*spool);
    in->spool_->start();
    const auto max_bytes = static_cast<std::size_t>(config.integer("syslog.max_message_bytes"));
    in->max_message_bytes_ = max_bytes;
    // A source whose thread failed (a bug: an exception escaped) has stopped; say so loudly.
    auto on_failure = [alerts](const std::string& what) {
        if (alerts != nullptr)
            alerts->alert(Alert{"syslog.source_failed", Severity::critical,
                                what + "; this syslog source stopped (restart the agent to resume it)", 0,
                                wall_clock_ms()});
    };
    // Every TCP connection is a descriptor: room for all of them, and for the agent's own (store,
    // spool, destinations, metrics) beside them.
    std::uint64_t descriptors = 1024;
    for (const auto& ep : endpoints)
        if (ep.starts_with("tcp:")) descriptors += static_cast<std::uint64_t>(config.integer("syslog.max_connections"));
    ensure_descriptor_limit(descriptors);
    for (const auto& ep : endpoints) {
        sl::ListenerOptions opt;
        opt.endpoint = ep;
        opt.max_message_bytes = max_bytes;
        opt.on_failure = on_failure;
        apply_listener_limits(opt, config, in.get(), alerts);
        auto l = sl::SyslogListener::start(opt, *in, in->probe_);
        if (!l) return make_error(errc::config_error, "syslog.listen '" + ep + "': " + l.error().describe());
        base::logger().info("receiving syslog on {}{}", ep,
                            (*l)->port() != 0 ? " (port " + std::to_string((*l)->port()) + ")" : "");
        in->listeners_.push_back(std::move(*l));
    }
    for (const auto& f : files) {
        std::optional<sl::FollowerPosition> resume;
        if (auto saved = base::read_file(in->position_file(f), std::size_t{64} * 1024)) {
            try {
                const auto j = nlohmann::json::parse(*saved);
                sl::FollowerPosition p;
                p.device = j.at("device");
                p.inode = j.at("inode");
                p.offset = j.at("offset");
                const std::string head_hex = j.at("head");
                p.head.resize(head_hex.size() / 2);
                if (mac::hex_decode(head_hex, {reinterpret_cast<std::uint8_t*>(p.head.data()), p.head.size()}))
                    resume = std::move(p);
            } catch (const nlohmann::json::exception&) {
                resume.reset();  // an unreadable position: read the file from its start
            }
        }
        sl::FollowerOptions opt;
        opt.max_line_bytes = max_bytes;
        opt.on_failure = on_failure;
        opt.backpressure = in.get();
        auto t = sl::FollowerThread::start(f, *in, in->probe_, std::chrono::milliseconds(200), opt, resume);
        if (!t) return make_error(errc::config_error, "syslog.files '" + f + "': " + t.error().describe());
        base::logger().info("following {}", f);
        in->followers_.emplace_back(f, std::move(*t));
    }
    if (journal) HSMAUDIT_TRY(in->start_journal(config, alerts));
    return in;
}

Status SyslogIntake::start_journal(const base::Config& config, AlertSink* alerts) {
    auto j = JournalIntake::start(config, dir_, *spool_, alerts);
    if (!j) return std::move(j).error();
    journal_ = std::move(*j);
    return {};
}

const collectors::journal::Probe* SyslogIntake::journal_probe() const {
    return journal_ ? &journal_->probe() : nullptr;
}

SyslogIntake::~SyslogIntake() {
    stop();
}

std::string SyslogIntake::position_file(const std::string& path) const {
    auto sha = mac::Sha256::create();
    const auto h = sha->compute(mac::as_bytes(path));
    return (fs::path(dir_) / ("follow-" + mac::hex_encode(mac::ByteView(h.data(), 8)) + ".json")).string();
}

void SyslogIntake::on_message(sl::SyslogMessage&& message) {
    if (!spool_) return;
    spool_->push(syslog_spool_payload(message, max_message_bytes_));
}

void SyslogIntake::stop() {
    for (auto& l : listeners_) l->stop();
    for (auto& [path, t] : followers_) t->stop();
    // The journal source commits (a spool flush) and saves its cursor as it stops: before the spool stops.
    if (journal_) journal_->stop();
    // A follower's position may only be saved once every line it read is durable in the spool:
    // saved before, a spool write that then fails would lose those lines for good. So the spool
    // is flushed first; should that fail, the old positions stay, and the next start re-reads
    // from them (duplicates, never a gap).
    Status spooled;
    if (spool_) {
        spool_->stop();
        spooled = spool_->flush();  // what a failed final flush left queued, tried once more
    }
    if (!spooled && !followers_.empty()) {
        base::logger().warn(
            "not saving the positions of {} followed file(s): the spool could not store everything read ({}); the "
            "next start reads them again from their last saved position",
            followers_.size(), spooled.error().describe());
    }
    for (auto& [path, t] : followers_) {
        if (!spooled) break;
        try {
            const auto pos = t->position();
            const nlohmann::json j = {{"path", path},
                                      {"device", pos.device},
                                      {"inode", pos.inode},
                                      {"offset", pos.offset},
                                      {"head", mac::hex_encode(mac::as_bytes(pos.head))}};
            // Not fatal: the previous position file stays whole, so the next start re-reads a
            // little (duplicates, never a gap); the next stop writes it again.
            const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
            if (auto st = base::write_file_atomic(position_file(path), text, 0600, false); !st)
                base::logger().warn(
                    "cannot save the position in {}: {} (the next start re-reads from the last saved one)", path,
                    st.error().describe());
        } catch (const std::exception& e) {  // never out of stop(), which destructors call
            base::logger().warn("cannot save the position in {}: {}", path, e.what());
        }
    }
    followers_.clear();
    listeners_.clear();
    journal_.reset();
}

std::vector<std::uint16_t> SyslogIntake::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& l : listeners_) out.push_back(l->port());
    return out;
}

}  // namespace hsmaudit::agent
