#include "exporters/snmp/sender.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "exporters/snmp/detail/netsnmp.h"
// After net-snmp's own headers.
#include <net-snmp/library/large_fd_set.h>
#include "exporters/snmp/errc.h"
#include "exporters/snmp/logger.h"

namespace hsmaudit::exporters::snmp {

using detail::UniquePdu;
using detail::UniqueSession;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::vector<oid> to_netsnmp(const Oid& o) {
    return {o.begin(), o.end()};
}

const oid* auth_protocol(const std::string& name, std::size_t& len) {
    len = USM_AUTH_PROTO_SHA_LEN;  // every HMAC-SHA-2 protocol OID has 10 arcs
    if (name == "SHA-256") return usmHMAC192SHA256AuthProtocol;
    if (name == "SHA-384") return usmHMAC256SHA384AuthProtocol;
    if (name == "SHA-512") return usmHMAC384SHA512AuthProtocol;
    return nullptr;
}

const oid* priv_protocol(const std::string& name, std::size_t& len) {
    if (name == "AES") {
        len = sizeof usmAESPrivProtocol / sizeof(oid);
        return usmAESPrivProtocol;
    }
    if (name == "AES-192") {
        len = sizeof usmAES192PrivProtocol / sizeof(oid);
        return usmAES192PrivProtocol;
    }
    if (name == "AES-256") {
        len = sizeof usmAES256PrivProtocol / sizeof(oid);
        return usmAES256PrivProtocol;
    }
    return nullptr;
}

std::string errstr(int code) {
    const char* s = snmp_api_errstring(code);
    return s != nullptr ? s : "net-snmp error " + std::to_string(code);
}

// DateAndTime (SNMPv2-TC), UTC: year(2) month day hour minutes seconds deci-seconds '+' 0 0.
std::string date_and_time(std::int64_t ms) {
    using namespace std::chrono;
    const sys_time<milliseconds> t{milliseconds(ms)};
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    const int y = static_cast<int>(ymd.year());
    std::string s;
    s += static_cast<char>((y >> 8) & 0xff);
    s += static_cast<char>(y & 0xff);
    s += static_cast<char>(static_cast<unsigned>(ymd.month()));
    s += static_cast<char>(static_cast<unsigned>(ymd.day()));
    s += static_cast<char>(hms.hours().count());
    s += static_cast<char>(hms.minutes().count());
    s += static_cast<char>(hms.seconds().count());
    s += static_cast<char>(hms.subseconds().count() / 100);
    s += '+';
    s += '\0';
    s += '\0';
    return s;
}

std::int64_t to_i64(const std::string& s) {
    if (s.empty()) return 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    return v;
}

std::uint64_t to_u64(const std::string& s) {
    if (s.empty() || s[0] == '-') return 0;
    return std::strtoull(s.c_str(), nullptr, 10);
}

}  // namespace

struct Sender::Receiver {
    Sender* owner = nullptr;
    ReceiverConfig cfg;
    UniqueSession session;
    SteadyClock::time_point next_open{};
    struct Item {
        std::uint64_t ticket = 0;
        Notification n;
        int reqid = 0;  // in flight (informs)
        SteadyClock::time_point next_try{};
        SteadyClock::time_point deadline{};  // in flight: net-snmp must have answered or timed out by then
    };
    std::deque<Item> queue;
    ReceiverStats stats;  // guarded by owner->stats_mutex_

    template <class F>
    void update(F&& f) {
        std::lock_guard lock(owner->stats_mutex_);
        f(stats);
    }

    Status open() {
        auto lock = owner->netsnmp_.lock();
        netsnmp_session s;
        snmp_sess_init(&s);
        std::string peer = cfg.address;
        s.peername = peer.data();
        s.timeout = static_cast<long>(std::chrono::microseconds(cfg.timeout).count());
        s.retries = cfg.retries;
        s.callback = &Receiver::on_pdu;
        s.callback_magic = this;
        std::string community = cfg.community;
        std::string user = cfg.user;
        std::vector<std::uint8_t> engine = owner->engine_.engine_id;
        if (!cfg.v3) {
            s.version = SNMP_VERSION_2c;
            s.community = reinterpret_cast<u_char*>(community.data());
            s.community_len = community.size();
        } else {
            s.version = SNMP_VERSION_3;
            s.securityName = user.data();
            s.securityNameLen = user.size();
            s.securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
            std::size_t alen = 0;
            std::size_t plen = 0;
            const oid* a = auth_protocol(cfg.auth, alen);
            const oid* p = priv_protocol(cfg.priv, plen);
            if (a == nullptr || p == nullptr) return make_error(errc::config_error, cfg.name + ": unknown protocol");
            s.securityAuthProto = const_cast<oid*>(a);
            s.securityAuthProtoLen = alen;
            s.securityPrivProto = const_cast<oid*>(p);
            s.securityPrivProtoLen = plen;
            s.securityAuthKeyLen = USM_AUTH_KU_LEN;
            if (generate_Ku(a, static_cast<u_int>(alen), reinterpret_cast<const u_char*>(cfg.auth_password.data()),
                            cfg.auth_password.size(), s.securityAuthKey, &s.securityAuthKeyLen) != SNMPERR_SUCCESS)
                return make_error(errc::credentials, cfg.name + ": cannot derive the authentication key");
            s.securityPrivKeyLen = USM_PRIV_KU_LEN;
            if (generate_Ku(a, static_cast<u_int>(alen), reinterpret_cast<const u_char*>(cfg.priv_password.data()),
                            cfg.priv_password.size(), s.securityPrivKey, &s.securityPrivKeyLen) != SNMPERR_SUCCESS)
                return make_error(errc::credentials, cfg.name + ": cannot derive the privacy key");
            if (!cfg.inform) {
                // Traps: we are the authoritative engine (RFC 3414): our engine ID, boots and time.
                s.securityEngineID = engine.data();
                s.securityEngineIDLen = engine.size();
                s.contextEngineID = engine.data();
                s.contextEngineIDLen = engine.size();
                s.engineBoots = owner->engine_.boots;
                s.engineTime = owner->engine_time();
                s.flags |= SNMP_FLAGS_DONT_PROBE;
            }
            // Informs: the receiver is authoritative; snmp_sess_open discovers its engine ID.
        }
        void* sp = snmp_sess_open(&s);
        // The session copied what it needs; wipe our copies of the keys.
        OPENSSL_cleanse(s.securityAuthKey, sizeof s.securityAuthKey);
        OPENSSL_cleanse(s.securityPrivKey, sizeof s.securityPrivKey);
        if (sp == nullptr) return make_error(errc::session, cfg.name + " (" + cfg.address + "): " + errstr(snmp_errno));
        session.reset(sp);
        return {};
    }

    // A response, a report, or a timeout for one of our informs (net-snmp calls it from
    // snmp_sess_read2 or snmp_sess_timeout, with the net-snmp lock held).
    static int on_pdu(int op, netsnmp_session* /*session*/, int reqid, netsnmp_pdu* pdu, void* magic) {
        auto* self = static_cast<Receiver*>(magic);
        // RESEND reports net-snmp's own retransmission; CONNECT/DISCONNECT concern stream transports.
        if (self == nullptr || op == NETSNMP_CALLBACK_OP_RESEND || op == NETSNMP_CALLBACK_OP_CONNECT ||
            op == NETSNMP_CALLBACK_OP_DISCONNECT)
            return 1;
        auto it = std::find_if(self->queue.begin(), self->queue.end(), [&](const Item& i) { return i.reqid == reqid; });
        if (it == self->queue.end()) return 1;
        Probe& probe = self->owner->probe_;
        if (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE && pdu != nullptr && pdu->command == SNMP_MSG_RESPONSE) {
            const auto ticket = it->ticket;
            self->queue.erase(it);
            Probe::add(probe.informs_acked);
            self->update([](ReceiverStats& s) { ++s.acknowledged; });
            self->owner->finish(ticket);
            return 1;
        }
        it->reqid = 0;
        it->next_try = SteadyClock::now() + self->cfg.retry_interval;
        if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) {
            Probe::add(probe.inform_timeouts);
            self->update([&](ReceiverStats& s) {
                ++s.timeouts;
                s.last_error = self->cfg.v3 ? "inform not acknowledged (timeout): the receiver is down, or refuses our "
                                              "credentials (net-snmp drops the unauthenticated report it answers "
                                              "with): check the user, passwords and protocols"
                                            : "inform not acknowledged (timeout): is the receiver up?";
            });
        } else {
            // A report (usmStatsWrongDigests, unknown user, decryption error...) or a security error.
            Probe::add(probe.inform_reports);
            const std::string why = pdu != nullptr && pdu->command == SNMP_MSG_REPORT
                                        ? "report: " + errstr(snmpv3_get_report_type(pdu))
                                        : "security error (op " + std::to_string(op) + ")";
            self->update([&](ReceiverStats& s) {
                ++s.reports;
                s.last_error = "inform refused: " + why;
            });
            logger().warn("snmp receiver {}: inform refused: {}", self->cfg.name, why);
        }
        return 1;
    }
};

Sender::Sender(detail::NetSnmpLibrary& netsnmp, EngineState engine, Oid base, Probe& probe, NowMs now_ms)
    : netsnmp_(netsnmp), engine_(std::move(engine)), base_(std::move(base)), probe_(probe), now_ms_(std::move(now_ms)) {
    start_ms_ = now_ms_();
}

Sender::~Sender() {
    reset();
}

Result<std::unique_ptr<Sender>> Sender::create(std::vector<ReceiverConfig> receivers, EngineState engine, Oid base,
                                               Probe& probe, NowMs now_ms) {
    auto& netsnmp = detail::NetSnmpLibrary::instance();
    if (receivers.empty()) return make_error(errc::config_error, "no receivers");
    std::unique_ptr<Sender> s(new Sender(netsnmp, std::move(engine), std::move(base), probe, std::move(now_ms)));
    for (auto& cfg : receivers) {
        std::size_t len = 0;
        if (cfg.v3) {
            if (auth_protocol(cfg.auth, len) == nullptr)
                return make_error(errc::config_error, cfg.name + ": auth must be SHA-256, SHA-384 or SHA-512");
            if (priv_protocol(cfg.priv, len) == nullptr)
                return make_error(errc::config_error, cfg.name + ": priv must be AES, AES-192 or AES-256");
            if (cfg.user.empty()) return make_error(errc::config_error, cfg.name + ": a v3 receiver needs a user");
            // RFC 3414: passphrases of at least 8 characters.
            if (cfg.auth_password.size() < 8 || cfg.priv_password.size() < 8)
                return make_error(errc::credentials, cfg.name + ": v3 passwords must have at least 8 characters");
        } else if (cfg.community.empty()) {
            return make_error(errc::credentials, cfg.name + ": a v2c receiver needs a community");
        }
        auto r = std::make_unique<Receiver>();
        r->owner = s.get();
        r->stats.name = cfg.name;
        r->stats.address = cfg.address;
        r->stats.mode = std::string(cfg.v3 ? "v3 " : "v2c ") + (cfg.inform ? "inform" : "trap");
        r->cfg = std::move(cfg);
        s->receivers_.push_back(std::move(r));
    }
    return s;
}

std::uint32_t Sender::engine_time() const {
    return static_cast<std::uint32_t>(std::max<std::int64_t>(0, now_ms_() - start_ms_) / 1000);
}

std::vector<Sender::Varbind> Sender::varbinds(const Notification& n) const {
    std::vector<Varbind> out;
    const auto ticks = std::max<std::int64_t>(0, now_ms_() - start_ms_) / 10;
    out.push_back({sys_uptime_oid(), "timeticks", std::to_string(ticks)});
    out.push_back({snmp_trap_oid(), "oid", to_string(notification_oid(base_, *n.def))});
    for (const auto name : n.def->objects) {
        const ObjectDef* o = find_object(name);
        if (o == nullptr) continue;
        std::string v = n.get(name);
        std::string type;
        switch (o->type) {
            case SmiType::display_string:
                type = "octets";
                if (v.size() > 255) v.resize(255);
                break;
            case SmiType::integer32:
                type = "integer";
                v = std::to_string(to_i64(v));
                break;
            case SmiType::unsigned32:
                type = "unsigned";
                v = std::to_string(to_u64(v));
                break;
            case SmiType::gauge32:
                type = "gauge";
                v = std::to_string(std::min<std::uint64_t>(to_u64(v), 0xffffffffULL));
                break;
            case SmiType::counter64:
                type = "counter64";
                v = std::to_string(to_u64(v));
                break;
            case SmiType::date_and_time:
                type = "octets";
                v = date_and_time(n.time_ms);
                break;
        }
        out.push_back({object_oid(base_, *o), type, v});
    }
    return out;
}

namespace {

UniquePdu build_pdu(const std::vector<Sender::Varbind>& vbs, bool inform) {
    UniquePdu pdu(snmp_pdu_create(inform ? SNMP_MSG_INFORM : SNMP_MSG_TRAP2));
    if (!pdu) return pdu;
    for (const auto& vb : vbs) {
        const auto name = to_netsnmp(vb.oid);
        if (vb.type == "timeticks" || vb.type == "unsigned" || vb.type == "gauge") {
            const u_long v = std::strtoul(vb.value.c_str(), nullptr, 10);
            // Gauge32 and Unsigned32 share one tag (RFC 2578; net-snmp's ASN_GAUGE == ASN_UNSIGNED).
            const auto t = static_cast<u_char>(vb.type == "timeticks" ? ASN_TIMETICKS : ASN_UNSIGNED);
            snmp_pdu_add_variable(pdu.get(), name.data(), name.size(), t, &v, sizeof v);
        } else if (vb.type == "oid") {
            auto parsed = parse_oid(vb.value);
            if (!parsed) return nullptr;
            const auto value = to_netsnmp(*parsed);
            snmp_pdu_add_variable(pdu.get(), name.data(), name.size(), ASN_OBJECT_ID, value.data(),
                                  value.size() * sizeof(oid));
        } else if (vb.type == "integer") {
            const long v = std::strtol(vb.value.c_str(), nullptr, 10);
            snmp_pdu_add_variable(pdu.get(), name.data(), name.size(), ASN_INTEGER, &v, sizeof v);
        } else if (vb.type == "counter64") {
            const unsigned long long v = std::strtoull(vb.value.c_str(), nullptr, 10);
            counter64 c{};
            c.high = static_cast<u_long>(v >> 32);
            c.low = static_cast<u_long>(v & 0xffffffffULL);
            snmp_pdu_add_variable(pdu.get(), name.data(), name.size(), ASN_COUNTER64, &c, sizeof c);
        } else {
            snmp_pdu_add_variable(pdu.get(), name.data(), name.size(), ASN_OCTET_STR, vb.value.data(), vb.value.size());
        }
    }
    return pdu;
}

}  // namespace

std::uint64_t Sender::submit(const Notification& n) {
    const auto ticket = next_ticket_++;
    remaining_[ticket] = static_cast<std::uint32_t>(receivers_.size());
    for (auto& r : receivers_) {
        r->queue.push_back({ticket, n, 0, {}});
        r->update([&](ReceiverStats& s) { s.queued = r->queue.size(); });
    }
    pump(std::chrono::milliseconds(0));
    return ticket;
}

void Sender::finish(std::uint64_t ticket) {
    auto it = remaining_.find(ticket);
    if (it == remaining_.end()) return;
    if (--it->second == 0) remaining_.erase(it);
}

bool Sender::complete(std::uint64_t ticket) const {
    return !remaining_.contains(ticket);
}

void Sender::pump(std::chrono::milliseconds wait) {
    const auto deadline = SteadyClock::now() + wait;
    for (;;) {
        const auto now = SteadyClock::now();
        bool in_flight = false;
        auto next_event = deadline;
        for (auto& r : receivers_) {
            if (r->queue.empty()) continue;
            // net-snmp drops, without a callback, a report it cannot authenticate (a v3 receiver
            // refusing our credentials answers with an unauthenticated usmStatsWrongDigests report),
            // and the request then never times out. An inform still in flight past its deadline is
            // counted unanswered; the session is reopened (dropping such requests) and it is retried.
            bool expired = false;
            for (auto& item : r->queue)
                if (item.reqid != 0 && now >= item.deadline) expired = true;
            if (expired && r->session) {
                std::uint64_t n = 0;
                for (auto& item : r->queue)
                    if (item.reqid != 0) {
                        item.reqid = 0;
                        item.next_try = now + r->cfg.retry_interval;
                        ++n;
                    }
                r->session.reset();
                Probe::add(probe_.inform_timeouts, n);
                r->update([&](ReceiverStats& st) {
                    st.timeouts += n;
                    st.session_open = false;
                    st.last_error =
                        "inform not acknowledged: no response, or a report net-snmp could not authenticate "
                        "(check the receiver and our credentials: user, passwords, protocols)";
                });
                logger().warn("snmp receiver {}: {} inform(s) unanswered; check its credentials", r->cfg.name, n);
            }
            if (!r->session) {
                if (now < r->next_open) {
                    next_event = std::min(next_event, r->next_open);
                    continue;
                }
                if (auto st = r->open(); !st) {
                    r->next_open = now + r->cfg.retry_interval;
                    Probe::add(probe_.session_failures);
                    r->update([&](ReceiverStats& s) {
                        ++s.open_failures;
                        s.last_error = st.error().describe();
                    });
                    logger().warn("snmp receiver {}: {}", r->cfg.name, st.error().describe());
                    continue;
                }
                r->update([](ReceiverStats& s) { s.session_open = true; });
            }
            for (auto it = r->queue.begin(); it != r->queue.end();) {
                if (it->reqid != 0) {
                    in_flight = true;
                    ++it;
                    continue;
                }
                if (now < it->next_try) {
                    next_event = std::min(next_event, it->next_try);
                    ++it;
                    continue;
                }
                auto lock = netsnmp_.lock();  // until the end of this item's turn
                if (r->cfg.v3 && !r->cfg.inform) {
                    // Our engine's time, as the receiver will check it (RFC 3414 timeliness).
                    set_enginetime(engine_.engine_id.data(), static_cast<u_int>(engine_.engine_id.size()),
                                   engine_.boots, engine_time(), TRUE);
                }
                UniquePdu pdu = build_pdu(varbinds(it->n), r->cfg.inform);
                int id = 0;
                if (pdu) {
                    id = r->cfg.inform ? snmp_sess_async_send(r->session.get(), pdu.get(), &Receiver::on_pdu, r.get())
                                       : snmp_sess_send(r->session.get(), pdu.get());
                }
                if (id == 0) {
                    int lib_errno = 0;
                    int snmp_errno_value = 0;
                    char* text = nullptr;
                    snmp_sess_error(r->session.get(), &lib_errno, &snmp_errno_value, &text);
                    const std::string why = text != nullptr ? text : "unknown error";
                    SNMP_FREE(text);
                    Probe::add(probe_.send_errors);
                    r->update([&](ReceiverStats& s) {
                        ++s.send_errors;
                        s.last_error = "send failed: " + why;
                    });
                    it->next_try = now + r->cfg.retry_interval;
                    next_event = std::min(next_event, it->next_try);
                    ++it;
                    continue;
                }
                (void)pdu.release();  // the library owns (and frees) a PDU it accepted
                r->update([](ReceiverStats& s) { ++s.sent; });
                if (r->cfg.inform) {
                    Probe::add(probe_.informs_sent);
                    it->reqid = id;
                    // net-snmp's own retransmissions plus a margin; past it we stop waiting (see below).
                    it->deadline = now + r->cfg.timeout * (r->cfg.retries + 1) + std::chrono::milliseconds(500);
                    in_flight = true;
                    ++it;
                } else {
                    Probe::add(probe_.traps_sent);
                    const auto ticket = it->ticket;
                    it = r->queue.erase(it);
                    finish(ticket);
                }
            }
            r->update([&](ReceiverStats& s) { s.queued = r->queue.size(); });
        }
        if (remaining_.empty() || SteadyClock::now() >= deadline) return;
        if (!in_flight) {
            // Nothing to read: sleep until a retry is due or the wait ends.
            std::this_thread::sleep_until(std::min(next_event, deadline));
            continue;
        }
        // Wait for responses on every session with informs in flight.
        netsnmp_large_fd_set fds;
        netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
        int maxfd = 0;
        struct timeval tv {};
        const auto left =
            std::chrono::duration_cast<std::chrono::microseconds>(std::min(next_event, deadline) - SteadyClock::now());
        tv.tv_sec = static_cast<long>(std::max<std::int64_t>(0, left.count()) / 1'000'000);
        tv.tv_usec = static_cast<long>(std::max<std::int64_t>(0, left.count()) % 1'000'000);
        int block = 0;
        {
            auto lock = netsnmp_.lock();
            for (auto& r : receivers_)
                if (r->session) snmp_sess_select_info2(r->session.get(), &maxfd, &fds, &tv, &block);
        }
        // Unlocked: other exporters' senders use net-snmp while this one waits.
        const int n = netsnmp_large_fd_set_select(maxfd, &fds, nullptr, nullptr, &tv);
        {
            auto lock = netsnmp_.lock();
            for (auto& r : receivers_) {
                if (!r->session) continue;
                if (n > 0) snmp_sess_read2(r->session.get(), &fds);
                snmp_sess_timeout(r->session.get());  // retransmits, and reports timeouts to on_pdu
                r->update([&](ReceiverStats& s) { s.queued = r->queue.size(); });
            }
        }
        netsnmp_large_fd_set_cleanup(&fds);
    }
}

void Sender::reset() {
    for (auto& r : receivers_) {
        r->queue.clear();    // first: a callback run by the close below finds nothing to update
        r->session.reset();  // drops the requests in flight
        r->next_open = {};
        r->update([](ReceiverStats& s) {
            s.session_open = false;
            s.queued = 0;
        });
    }
    remaining_.clear();
}

std::vector<ReceiverStats> Sender::receiver_stats() const {
    std::lock_guard lock(stats_mutex_);
    std::vector<ReceiverStats> out;
    for (const auto& r : receivers_) out.push_back(r->stats);
    return out;
}

}  // namespace hsmaudit::exporters::snmp
