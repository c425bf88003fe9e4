#include "hsmcore/module/module.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/files.h"
#include "base/unique_fd.h"
#include "hsmcore/errc.h"
#include "hsmcore/ring/entry_codec.h"
#include "mac/keys.h"
#include "mac/note.h"

namespace hsmaudit::hsmcore::module {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// PKCS#11 return values recorded in the result field.
constexpr std::uint32_t kCkrFunctionFailed = 0x06;
constexpr std::uint32_t kCkrArgumentsBad = 0x07;
constexpr std::uint32_t kCkrKeyHandleInvalid = 0x60;
constexpr std::uint32_t kCkrPinIncorrect = 0xA0;
constexpr std::uint32_t kCkrPinLocked = 0xA4;
constexpr std::uint32_t kCkrSessionHandleInvalid = 0xB3;
constexpr std::uint32_t kCkrSignatureInvalid = 0xC0;
constexpr std::uint32_t kCkrUserAlreadyLoggedIn = 0x100;
constexpr std::uint32_t kCkrUserNotLoggedIn = 0x101;
constexpr std::uint32_t kCkrUserTypeInvalid = 0x103;
constexpr std::uint64_t kResumeMargin = 1024;  // hysteresis: resume once this much above the reserve

std::uint32_t ckr_for(const Error& e) {
    if (e.code == errc::pin_incorrect) return kCkrPinIncorrect;
    if (e.code == errc::pin_locked) return kCkrPinLocked;
    if (e.code == errc::not_permitted) return kCkrUserNotLoggedIn;
    if (e.code == errc::not_found) return kCkrKeyHandleInvalid;
    if (e.code == errc::invalid_argument) return kCkrArgumentsBad;
    if (e.code == errc::log_full) return kCkrLogFull;
    if (e.code == errc::invalid_state) return kCkrUserAlreadyLoggedIn;
    return kCkrFunctionFailed;
}

constexpr unsigned bit(Role r) {
    return 1u << static_cast<unsigned>(r);
}
constexpr unsigned kKeyManagers = bit(Role::co) | bit(Role::lco);
constexpr unsigned kKeyUsers = bit(Role::co) | bit(Role::lco) | bit(Role::cu);

Result<std::string> pin_hash(std::string_view salt_hex, std::string_view pin) {
    auto sha = mac::Sha256::create();
    if (!sha) return std::move(sha).error();
    const auto h = sha->compute(mac::as_bytes(salt_hex), mac::as_bytes(pin));
    return mac::hex_encode(h);
}

Result<std::string> random_hex(std::size_t bytes) {
    std::vector<std::uint8_t> b(bytes);
    HSMAUDIT_TRY(mac::random_bytes(b));
    return mac::hex_encode(b);
}

// tree.state: two slots of kTreeSlotBytes; generation g goes into slot g % 2, so a torn write
// leaves the other slot (the previous save) intact. A slot is one line
// "hsmaudit-tree/1 gen=<g> crc=<8 hex> <CompactTree::encode()>" padded with NUL bytes; the CRC-32
// covers the text after it. The frontier has at most 64 hashes: a slot always fits.
constexpr std::size_t kTreeSlotBytes = 8192;

std::string tree_slot_text(std::uint64_t gen, const mac::tlog::CompactTree& tree) {
    const std::string body = tree.encode();
    char crc[9];
    (void)std::snprintf(crc, sizeof crc, "%08x",
                        ring::crc32_of({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}));
    std::string s = "hsmaudit-tree/1 gen=" + std::to_string(gen) + " crc=" + crc + " " + body + "\n";
    s.resize(kTreeSlotBytes, '\0');
    return s;
}

struct TreeSlot {
    std::uint64_t gen = 0;
    mac::tlog::CompactTree tree;
};

std::optional<TreeSlot> parse_tree_slot(std::string_view slot) {
    const auto nl = slot.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view text = slot.substr(0, nl);
    constexpr std::string_view kMagic = "hsmaudit-tree/1 gen=";
    if (!text.starts_with(kMagic)) return std::nullopt;
    text.remove_prefix(kMagic.size());
    const auto sp = text.find(' ');
    TreeSlot out;
    if (sp == std::string_view::npos || !mac::parse_u64(text.substr(0, sp), out.gen)) return std::nullopt;
    text.remove_prefix(sp + 1);
    if (!text.starts_with("crc=") || text.size() < 13 || text[12] != ' ') return std::nullopt;
    const std::string_view crc = text.substr(4, 8);
    const std::string_view body = text.substr(13);
    char want[9];
    (void)std::snprintf(want, sizeof want, "%08x",
                        ring::crc32_of({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}));
    if (crc != std::string_view(want, 8)) return std::nullopt;
    auto tree = mac::tlog::CompactTree::decode(body);
    if (!tree) return std::nullopt;
    out.tree = std::move(*tree);
    return out;
}

bool role_allowed_in(Role r, std::uint32_t partition) {
    const bool admin = r == Role::so || r == Role::au;
    return admin == (partition == 0);
}

}  // namespace

const char* role_name(Role r) noexcept {
    switch (r) {
        case Role::so: return "SO";
        case Role::au: return "AU";
        case Role::pso: return "PSO";
        case Role::co: return "CO";
        case Role::lco: return "LCO";
        case Role::cu: return "CU";
    }
    return "-";
}

Result<Role> parse_role(std::string_view name) {
    for (Role r : {Role::so, Role::au, Role::pso, Role::co, Role::lco, Role::cu})
        if (name == role_name(r)) return r;
    return make_error(errc::invalid_argument,
                      "unknown role '" + std::string(name.substr(0, 16)) + "' (SO, AU, PSO, CO, LCO, CU)");
}

Result<std::map<std::pair<std::string, std::uint32_t>, std::string>> load_client_pins(const std::string& dir) {
    const std::string path = (fs::path(dir) / kClientPinsFile).string();
    auto text = base::read_secret_file(path);
    if (!text) return std::move(text).error();
    std::map<std::pair<std::string, std::uint32_t>, std::string> pins;
    std::string_view rest = *text;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        if (line.empty()) continue;
        const auto a = line.find(' ');
        const auto b = line.find(' ', a == std::string_view::npos ? a : a + 1);
        std::uint64_t part = 0;
        if (a == std::string_view::npos || b == std::string_view::npos ||
            !mac::parse_u64(line.substr(a + 1, b - a - 1), part) || part > UINT32_MAX)
            return make_error(errc::corrupt, path + ": malformed line (expected 'ROLE PARTITION PIN')");
        pins[{std::string(line.substr(0, a)), static_cast<std::uint32_t>(part)}] = std::string(line.substr(b + 1));
    }
    return pins;
}

Module::Module(std::string dir, ModuleOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), clock_(options_.clock) {}

Module::~Module() = default;

Status Module::init(const std::string& dir, const InitOptions& opt) {
    if (!mac::valid_serial(opt.serial))
        return make_error(errc::invalid_argument, "--serial must be 1-32 characters of [A-Za-z0-9._-]");
    auto mask = parse_audit_mask(opt.audit_mask);
    if (!mask) return std::move(mask).error();
    if (opt.max_failed_logins == 0) return make_error(errc::invalid_argument, "max failed logins must be at least 1");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
    if (fs::exists(fs::path(dir) / kModuleConfigFile) || fs::exists(fs::path(dir) / ring::kRingFile))
        return make_error(errc::invalid_state, dir + " already holds a module; choose an empty directory");
    auto keys = mac::generate_chain_keys();
    if (!keys) return std::move(keys).error();
    HSMAUDIT_TRY(mac::write_key_dir(dir, *keys));
    HSMAUDIT_TRY(ring::RingWriter::create(ring::RingPaths::in_dir(dir), {opt.ring_bytes, opt.reserve_bytes}, opt.serial,
                                          mac::genesis_head(keys->key)));

    // Configuration: partition 0 (SO, AU) and partition 1 "default" (PSO, CO, CU).
    json cfg;
    cfg["format"] = 1;
    cfg["serial"] = opt.serial;
    cfg["audit_mask"] = format_audit_mask(*mask);
    cfg["max_failed_logins"] = opt.max_failed_logins;
    json parts = json::array();
    std::string pins;
    auto add_role = [&](json& roles, std::uint32_t pid, Role r) -> Status {
        auto pin = random_hex(8);
        if (!pin) return std::move(pin).error();
        auto salt = random_hex(16);
        if (!salt) return std::move(salt).error();
        auto hash = pin_hash(*salt, *pin);
        if (!hash) return std::move(hash).error();
        roles[role_name(r)] = {{"salt", *salt}, {"hash", *hash}, {"locked", false}};
        pins += std::string(role_name(r)) + " " + std::to_string(pid) + " " + *pin + "\n";
        return {};
    };
    json admin_roles = json::object();
    HSMAUDIT_TRY(add_role(admin_roles, 0, Role::so));
    HSMAUDIT_TRY(add_role(admin_roles, 0, Role::au));
    parts.push_back({{"id", 0}, {"label", "admin"}, {"initialized", true}, {"roles", admin_roles}});
    json user_roles = json::object();
    for (Role r : {Role::pso, Role::co, Role::cu}) HSMAUDIT_TRY(add_role(user_roles, 1, r));
    parts.push_back({{"id", 1}, {"label", "default"}, {"initialized", true}, {"roles", user_roles}});
    cfg["partitions"] = parts;
    HSMAUDIT_TRY(base::write_file_atomic((fs::path(dir) / kClientPinsFile).string(), pins, 0600, true));
    HSMAUDIT_TRY(base::write_file_atomic((fs::path(dir) / kModuleConfigFile).string(), cfg.dump(2) + "\n", 0600, true));

    // First start: opens the first segment and audits the initialisation.
    auto m = open(dir);
    if (!m) return std::move(m).error();
    std::lock_guard lock((*m)->mu_);
    static const Event ev{"LUNA_MODULE_INIT", kManage, true, false, Priority::reserve, false};
    auto r = (*m)->finish(ev, nullptr, 0, Reply{}, {{"label", "default"}, {"mask", format_audit_mask(*mask)}});
    if (!r) return std::move(r).error();
    return {};
}

Result<std::unique_ptr<Module>> Module::open(const std::string& dir, ModuleOptions options) {
    std::unique_ptr<Module> m(new Module(dir, std::move(options)));
    HSMAUDIT_TRY(m->start());
    return m;
}

Status Module::start() {
    const fs::path d(dir_);
    const std::string cfg_path = (d / kModuleConfigFile).string();
    auto text = base::read_secret_file(cfg_path, 4 << 20);
    if (!text) return std::move(text).error();
    try {
        const json cfg = json::parse(*text);
        serial_ = cfg.at("serial").get<std::string>();
        auto mask = parse_audit_mask(cfg.at("audit_mask").get<std::string>());
        if (!mask) return make_error(errc::corrupt, cfg_path + ": " + mask.error().message);
        audit_mask_ = *mask;
        max_failed_logins_ = cfg.at("max_failed_logins").get<unsigned>();
        for (const auto& p : cfg.at("partitions")) {
            Partition part;
            part.id = p.at("id").get<std::uint32_t>();
            part.label = p.at("label").get<std::string>();
            part.initialized = p.at("initialized").get<bool>();
            for (const auto& [name, r] : p.at("roles").items()) {
                auto role = parse_role(name);
                if (!role) return make_error(errc::corrupt, cfg_path + ": " + role.error().message);
                part.roles[*role] = RoleState{r.at("salt").get<std::string>(), r.at("hash").get<std::string>(),
                                              r.at("locked").get<bool>(), 0};
            }
            partitions_[part.id] = std::move(part);
        }
    } catch (const json::exception& e) {
        return make_error(errc::corrupt, cfg_path + ": " + e.what());
    }
    if (!partitions_.count(0)) return make_error(errc::corrupt, cfg_path + ": no admin partition 0");

    auto signer = mac::load_signing_key((d / mac::kAuditSignFile).string());
    if (!signer) return std::move(signer).error();
    signer_.emplace(std::move(*signer));
    chain_id_ = mac::chain_id_of(signer_->public_key());

    auto ring = ring::RingWriter::open(ring::RingPaths::in_dir(dir_), options_.ring);
    if (!ring) return std::move(ring).error();
    ring_.emplace(std::move(*ring));
    recovery_ = ring_->recovery();
    if (ring_->serial() != serial_)
        return make_error(errc::corrupt, "ring serial " + ring_->serial() + " does not match " + cfg_path);
    const std::uint32_t boot = ring_->state().boot + 1;
    ring_->set_boot(boot);
    auto chain = mac::ChainWriter::create(chain_id_, serial_, boot, *signer_, ring_->state().head);
    if (!chain) return std::move(chain).error();
    chain_.emplace(std::move(*chain));

    std::lock_guard lock(mu_);
    HSMAUDIT_TRY(ring_->commit_state());  // the boot counter is durable before anything else happens
    load_tree();
    if (!chain_->head().segment_open) {
        auto line = chain_->open_segment(clock_.now_ms());
        if (!line) return std::move(line).error();
        entry_buf_.clear();
        ring::encode_line_entry(ring::EntryKind::open, ring_->state().next_entry, chain_->head().next_seq, *line,
                                entry_buf_);
        std::string_view v = entry_buf_;
        if (auto st = ring_->commit({&v, 1}, chain_->head()); !st) {
            reset_chain();
            return st;
        }
    }
    static const Event ev{"LUNA_MODULE_START", kManage, true, false, Priority::reserve, false};
    auto r = finish(
        ev, nullptr, 0, Reply{},
        {{"pid", std::to_string(::getpid())}, {"msg", std::to_string(recovery_.entries) + " entries recovered"}});
    (void)r;  // a start that cannot be logged (ring at its floor) still starts: it is counted as unlogged
    return {};
}

Status Module::save_config() {
    json cfg;
    cfg["format"] = 1;
    cfg["serial"] = serial_;
    cfg["audit_mask"] = format_audit_mask(audit_mask_);
    cfg["max_failed_logins"] = max_failed_logins_;
    json parts = json::array();
    for (const auto& [id, p] : partitions_) {
        json roles = json::object();
        for (const auto& [r, st] : p.roles)
            roles[role_name(r)] = {{"salt", st.salt_hex}, {"hash", st.hash_hex}, {"locked", st.locked}};
        parts.push_back({{"id", id}, {"label", p.label}, {"initialized", p.initialized}, {"roles", roles}});
    }
    cfg["partitions"] = parts;
    return base::write_file_atomic((fs::path(dir_) / kModuleConfigFile).string(), cfg.dump(2) + "\n", 0600, false);
}

void Module::reset_chain() {
    // A failed commit leaves the chain writer ahead of the ring: rebuild it from the committed head.
    auto chain = mac::ChainWriter::create(chain_id_, serial_, ring_->state().boot, *signer_, ring_->state().head);
    if (chain) chain_.emplace(std::move(*chain));
}

Result<std::uint64_t> Module::append_record(mac::AuditRecord& rec) {
    rec.seq = chain_->head().next_seq;
    rec.serial = serial_;
    rec.boot = chain_->boot();
    entry_buf_.clear();
    ring::encode_record_entry(ring_->state().next_entry, rec, mac::Mac{}, entry_buf_);
    const std::size_t size = entry_buf_.size();
    if (ring_->free_after({&size, 1}) < static_cast<std::int64_t>(ring::kSealFloorBytes))
        return make_error(errc::log_full, "audit ring full: no room for the record");
    line_buf_.clear();
    auto m = chain_->append(rec, line_buf_);
    if (!m) return make_error(errc::invalid_argument, m.error().message);
    ring::patch_record_mac(entry_buf_, 0, *m);
    std::string_view v = entry_buf_;
    if (auto st = ring_->commit({&v, 1}, chain_->head()); !st) {
        reset_chain();
        return std::move(st).error();
    }
    if (tree_) {
        // Leaf seq-1: the record's line without its LF (docs/FORMAT.md section 10).
        std::string_view leaf = line_buf_;
        if (!leaf.empty() && leaf.back() == '\n') leaf.remove_suffix(1);
        tree_->append(mac::tlog::leaf_hash(leaf));
    }
    return rec.seq;
}

bool Module::blocked_locked() const {
    return (ring_->state().flags & 1u) != 0;
}

void Module::update_blocked() {
    const bool was = blocked_locked();
    const std::uint64_t free = ring_->free_bytes();
    const bool now = was ? free < ring_->reserve() + kResumeMargin : free < ring_->reserve();
    if (now == was) return;
    ring_->set_blocked(now);
    mac::AuditRecord rec;
    rec.time_ms = clock_.now_ms();
    rec.role = "-";
    rec.event = now ? "LUNA_LOG_FULL" : "LUNA_LOG_RESUME";
    rec.event_class = "logmanage";
    rec.details = {{"bytes", std::to_string(free)}};
    ++ring_->counters().critical_events;
    if (!append_record(rec)) ++ring_->counters().unlogged_events;
    (void)ring_->commit_state();
}

Result<Reply> Module::finish(const Event& ev, const Session* s, std::uint64_t session, Result<Reply> outcome,
                             std::vector<mac::Detail> details, bool first_use) {
    ring::Counters& c = ring_->counters();
    const bool failed = !outcome.has_value();
    if (ev.request) {
        ++c.op_requests;
        if (failed) ++c.op_errors;
    }
    if (ev.crypto) {
        ++c.crypto_requests;
        if (failed) ++c.crypto_errors;
    }
    if (ev.critical)
        ++c.critical_events;
    else
        ++c.noncritical_events;
    std::uint64_t seq = 0;
    if (should_log(audit_mask_, ev.cls, failed, first_use, ev.critical)) {
        mac::AuditRecord rec;
        rec.time_ms = clock_.now_ms();
        rec.partition = s ? s->partition : 0;
        rec.role = (s && s->role) ? role_name(*s->role) : "-";
        rec.session = session;
        rec.event = ev.name;
        rec.event_class = failed                                                       ? "failure"
                          : (first_use && ev.cls == kUsage && !(audit_mask_ & kUsage)) ? "first"
                                                                                       : audit_class_name(ev.cls);
        rec.result = failed ? ckr_for(outcome.error()) : 0;
        rec.details = std::move(details);
        auto r = append_record(rec);
        if (r) {
            seq = *r;
        } else {
            ++c.unlogged_events;
            (void)ring_->commit_state();
            // Fail safe: an operation that must be audited and cannot be is reported as refused.
            // Sessions and logins proceed unlogged, as on the appliance.
            if (ev.priority != Priority::exempt && !failed)
                return make_error(errc::log_full, std::string(ev.name) + ": " + r.error().message);
        }
    } else {
        (void)ring_->commit_state();  // publish the counters
    }
    update_blocked();
    if (failed) return outcome;
    outcome->seq = seq;
    return outcome;
}

Error Module::refuse_log_full(const Event& ev, const Session* s, std::uint64_t session,
                              std::vector<mac::Detail> details) {
    ++ring_->counters().refused_log_full;
    details.push_back({"reason", "log_full"});
    Error err =
        make_error(errc::log_full, std::string(ev.name) + " refused: the audit log is full until the agent drains it");
    // The refusal is audited in the reserve (down to the seal floor), whatever the audit mask says.
    Event refusal = ev;
    refusal.critical = true;
    refusal.priority = Priority::reserve;
    auto r = finish(refusal, s, session, err, std::move(details));
    return r.error();
}

Result<Module::Session*> Module::session_for(std::uint64_t session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end())
        return make_error(errc::not_found, "session " + std::to_string(session) + " is not open");
    return &it->second;
}

Result<std::shared_ptr<KeyObject>> Module::key_for(const Session& s, std::uint64_t key) {
    auto it = keys_.find(key);
    if (it == keys_.end() || it->second->partition() != s.partition)
        return make_error(errc::not_found, "no key " + std::to_string(key) + " in this partition");
    return it->second;
}

// ---- sessions and roles ---------------------------------------------------------------------

Result<Reply> Module::open_session(std::uint32_t partition) {
    static const Event ev{"LUNA_OPEN_SESSION", kAccess, false, false, Priority::exempt};
    std::lock_guard lock(mu_);
    Session s{partition, std::nullopt};
    if (!partitions_.count(partition))
        return finish(ev, &s, 0, make_error(errc::not_found, "no partition " + std::to_string(partition)),
                      {{"partition", std::to_string(partition)}});
    const std::uint64_t id = next_session_++;
    sessions_[id] = s;
    return finish(ev, &s, id, Reply{0, id, {}}, {});
}

Result<Reply> Module::close_session(std::uint64_t session) {
    static const Event ev{"LUNA_CLOSE_SESSION", kAccess, false, false, Priority::exempt};
    std::lock_guard lock(mu_);
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), {});
    const Session copy = **s;
    sessions_.erase(session);
    return finish(ev, &copy, session, Reply{}, {});
}

Result<Reply> Module::login(std::uint64_t session, Role role, std::string_view pin) {
    static const Event ev{"LUNA_LOGIN", kAccess, false, false, Priority::exempt};
    static const Event locked_ev{"LUNA_ROLE_LOCKED", kAccess, true, false, Priority::exempt};
    std::lock_guard lock(mu_);
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), {{"role", role_name(role)}});
    Session& ss = **s;
    Session shown{ss.partition, role};
    std::vector<mac::Detail> details = {{"role", role_name(role)}};
    if (ss.role)
        return finish(ev, &shown, session, make_error(errc::invalid_state, "session already logged in"), details);
    auto& part = partitions_.at(ss.partition);
    auto rit = part.roles.find(role);
    if (!role_allowed_in(role, ss.partition) || rit == part.roles.end())
        return finish(
            ev, &shown, session,
            make_error(errc::not_permitted, std::string("role ") + role_name(role) +
                                                " is not initialised in partition " + std::to_string(ss.partition)),
            details);
    RoleState& rs = rit->second;
    if (rs.locked)
        return finish(ev, &shown, session,
                      make_error(errc::pin_locked, std::string(role_name(role)) + " is locked out"), details);
    auto h = pin_hash(rs.salt_hex, pin);
    if (!h) return finish(ev, &shown, session, std::move(h).error(), details);
    if (!mac::equal_ct(mac::as_bytes(*h), mac::as_bytes(rs.hash_hex))) {
        ++rs.failed;
        details.push_back({"attempts", std::to_string(rs.failed)});
        auto r = finish(ev, &shown, session, make_error(errc::pin_incorrect, "incorrect PIN"), details);
        if (rs.failed >= max_failed_logins_) {
            rs.locked = true;
            (void)save_config();
            (void)finish(locked_ev, &shown, session, Reply{}, {{"role", role_name(role)}});
            return make_error(errc::pin_locked, std::string(role_name(role)) + " locked out after " +
                                                    std::to_string(rs.failed) + " failed logins");
        }
        return r;
    }
    rs.failed = 0;
    ss.role = role;
    return finish(ev, &shown, session, Reply{}, details);
}

Result<Reply> Module::logout(std::uint64_t session) {
    static const Event ev{"LUNA_LOGOUT", kAccess, false, false, Priority::exempt};
    std::lock_guard lock(mu_);
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), {});
    const Session shown = **s;
    if (!(*s)->role) return finish(ev, &shown, session, make_error(errc::not_permitted, "not logged in"), {});
    (*s)->role.reset();
    return finish(ev, &shown, session, Reply{}, {});
}

// ---- partitions -----------------------------------------------------------------------------

Result<Reply> Module::create_partition(std::uint64_t session, std::string_view label) {
    static const Event ev{"LUNA_CREATE_PARTITION", kManage};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"label", std::string(label)}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (shown.partition != 0 || shown.role != Role::so)
        return finish(ev, &shown, session, make_error(errc::not_permitted, "only the SO creates partitions"), details);
    update_blocked();
    if (blocked_locked()) return refuse_log_full(ev, &shown, session, details);
    if (label.empty() || label.size() > 64)
        return finish(ev, &shown, session, make_error(errc::invalid_argument, "partition label must be 1-64 bytes"),
                      details);
    const std::uint32_t id = partitions_.rbegin()->first + 1;
    if (id > 100)
        return finish(ev, &shown, session, make_error(errc::invalid_state, "100 partitions at most"), details);
    partitions_[id] = Partition{id, std::string(label), false, {}};
    if (auto st = save_config(); !st) {
        partitions_.erase(id);
        return finish(ev, &shown, session, std::move(st).error(), details);
    }
    details.push_back({"partition", std::to_string(id)});
    return finish(ev, &shown, session, Reply{0, id, {}}, details);
}

Result<Reply> Module::init_partition(std::uint64_t session, std::uint32_t partition, std::string_view label,
                                     std::string_view pso_pin) {
    static const Event ev{"LUNA_PARTITION_INIT", kManage, true};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"partition", std::to_string(partition)}, {"label", std::string(label)}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (shown.partition != 0 || shown.role != Role::so)
        return finish(ev, &shown, session, make_error(errc::not_permitted, "only the SO initialises partitions"),
                      details);
    auto it = partitions_.find(partition);
    if (partition == 0 || it == partitions_.end())
        return finish(ev, &shown, session,
                      make_error(errc::not_found, "no user partition " + std::to_string(partition)), details);
    if (pso_pin.size() < 4)
        return finish(ev, &shown, session, make_error(errc::invalid_argument, "PIN too short"), details);
    auto salt = random_hex(16);
    if (!salt) return finish(ev, &shown, session, std::move(salt).error(), details);
    auto h = pin_hash(*salt, pso_pin);
    if (!h) return finish(ev, &shown, session, std::move(h).error(), details);
    const Partition before = it->second;
    if (!label.empty()) it->second.label = std::string(label);
    it->second.initialized = true;
    it->second.roles.clear();  // initialising a partition erases its roles (and, on a real module, its objects)
    it->second.roles[Role::pso] = RoleState{*salt, *h, false, 0};
    std::erase_if(keys_, [&](const auto& kv) { return kv.second->partition() == partition; });
    if (auto st = save_config(); !st) {
        it->second = before;
        return finish(ev, &shown, session, std::move(st).error(), details);
    }
    return finish(ev, &shown, session, Reply{0, partition, {}}, details);
}

Result<Reply> Module::init_role(std::uint64_t session, Role role, std::string_view pin) {
    static const Event ev{"LUNA_INIT_ROLE", kManage};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"role", role_name(role)}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    const bool ok = shown.partition == 0 ? (shown.role == Role::so && (role == Role::au || role == Role::so))
                                         : (shown.role == Role::pso && role != Role::so && role != Role::au);
    if (!ok)
        return finish(ev, &shown, session,
                      make_error(errc::not_permitted, std::string("this role may not initialise ") + role_name(role)),
                      details);
    if (pin.size() < 4)
        return finish(ev, &shown, session, make_error(errc::invalid_argument, "PIN too short"), details);
    auto salt = random_hex(16);
    if (!salt) return finish(ev, &shown, session, std::move(salt).error(), details);
    auto h = pin_hash(*salt, pin);
    if (!h) return finish(ev, &shown, session, std::move(h).error(), details);
    auto& roles = partitions_.at(shown.partition).roles;
    const auto before = roles;
    roles[role] = RoleState{*salt, *h, false, 0};
    if (auto st = save_config(); !st) {
        roles = before;
        return finish(ev, &shown, session, std::move(st).error(), details);
    }
    return finish(ev, &shown, session, Reply{}, details);
}

std::vector<PartitionInfo> Module::list_partitions() const {
    std::lock_guard lock(mu_);
    std::vector<PartitionInfo> out;
    for (const auto& [id, p] : partitions_) {
        PartitionInfo info{id, p.label, p.initialized, 0};
        for (const auto& [h, k] : keys_)
            if (k->partition() == id) ++info.keys;
        out.push_back(info);
    }
    return out;
}

// ---- keys -----------------------------------------------------------------------------------

template <class F>
Result<Reply> Module::key_op(const Event& ev, std::uint64_t session, std::uint64_t key, unsigned roles, F&& fn) {
    std::shared_ptr<KeyObject> k;
    Session shown;
    std::vector<mac::Detail> details = {{"key", std::to_string(key)}};
    {
        std::lock_guard lock(mu_);
        auto s = session_for(session);
        if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
        shown = **s;
        if (!shown.role || !(roles & bit(*shown.role)))
            return finish(ev, &shown, session,
                          make_error(errc::not_permitted, std::string(ev.name) + ": role not logged in or not allowed"),
                          details);
        update_blocked();
        if (blocked_locked()) return refuse_log_full(ev, &shown, session, details);
        auto kk = key_for(shown, key);
        if (!kk) return finish(ev, &shown, session, std::move(kk).error(), details);
        k = std::move(*kk);
    }
    Result<Reply> out = fn(*k, details);  // the cryptography runs outside the lock
    std::lock_guard lock(mu_);
    const bool first = k->mark_used();
    return finish(ev, &shown, session, std::move(out), std::move(details), first);
}

Result<Reply> Module::generate_key(std::uint64_t session, KeyAlg alg, std::string_view label) {
    static const Event ev{"LUNA_GENERATE_KEY", kKeymanage, false, true};
    static const Event ev_pair{"LUNA_GENERATE_KEY_PAIR", kKeymanage, false, true};
    const Event& e = alg == KeyAlg::aes256 ? ev : ev_pair;
    std::vector<mac::Detail> details = {{"alg", key_alg_name(alg)}, {"label", std::string(label.substr(0, 64))}};
    Session shown;
    {
        std::lock_guard lock(mu_);
        auto s = session_for(session);
        if (!s) return finish(e, nullptr, session, std::move(s).error(), details);
        shown = **s;
        if (!shown.role || !(kKeyManagers & bit(*shown.role)))
            return finish(e, &shown, session, make_error(errc::not_permitted, "only a CO or LCO generates keys"),
                          details);
        update_blocked();
        if (blocked_locked()) return refuse_log_full(e, &shown, session, details);
    }
    auto k = KeyObject::generate(alg, shown.partition, std::string(label.substr(0, 64)));
    std::lock_guard lock(mu_);
    if (!k) return finish(e, &shown, session, std::move(k).error(), details);
    const std::uint64_t handle = next_key_++;
    details.insert(details.begin(), {"key", std::to_string(handle)});
    auto r = finish(e, &shown, session, Reply{0, handle, {}}, details);
    if (r) keys_[handle] = std::move(*k);  // the key exists only if its creation was audited
    return r;
}

Result<Reply> Module::destroy_object(std::uint64_t session, std::uint64_t key) {
    static const Event ev{"LUNA_DESTROY_OBJECT", kKeymanage, false, true};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"key", std::to_string(key)}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (shown.role != Role::co)
        return finish(ev, &shown, session, make_error(errc::not_permitted, "only a CO destroys keys"), details);
    update_blocked();
    if (blocked_locked()) return refuse_log_full(ev, &shown, session, details);
    auto k = key_for(shown, key);
    if (!k) return finish(ev, &shown, session, std::move(k).error(), details);
    auto r = finish(ev, &shown, session, Reply{0, key, {}}, details);
    if (r) keys_.erase(key);
    return r;
}

Result<Reply> Module::sign(std::uint64_t session, std::uint64_t key, std::string_view data) {
    static const Event ev{"LUNA_SIGN", kUsage, false, true};
    return key_op(ev, session, key, kKeyUsers, [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
        d.push_back({"mech", sign_mechanism(k.alg())});
        auto sig = k.sign(data);
        if (!sig) return std::move(sig).error();
        return Reply{0, 0, std::move(*sig)};
    });
}

Result<Reply> Module::verify(std::uint64_t session, std::uint64_t key, std::string_view data, std::string_view sig) {
    static const Event ev{"LUNA_VERIFY", kUsage, false, true};
    return key_op(ev, session, key, kKeyUsers, [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
        d.push_back({"mech", sign_mechanism(k.alg())});
        auto ok = k.verify(data, sig);
        if (!ok) return std::move(ok).error();
        if (!*ok) return make_error(errc::crypto_error, "signature invalid");
        return Reply{};
    });
}

Result<Reply> Module::encrypt(std::uint64_t session, std::uint64_t key, std::string_view plaintext) {
    static const Event ev{"LUNA_ENCRYPT", kUsage, false, true};
    return key_op(ev, session, key, kKeyUsers, [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
        d.push_back({"mech", encrypt_mechanism(k.alg())});
        auto ct = k.encrypt(plaintext);
        if (!ct) return std::move(ct).error();
        return Reply{0, 0, std::move(*ct)};
    });
}

Result<Reply> Module::decrypt(std::uint64_t session, std::uint64_t key, std::string_view ciphertext) {
    static const Event ev{"LUNA_DECRYPT", kUsage, false, true};
    return key_op(ev, session, key, kKeyUsers, [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
        d.push_back({"mech", encrypt_mechanism(k.alg())});
        auto pt = k.decrypt(ciphertext);
        if (!pt) return std::move(pt).error();
        return Reply{0, 0, std::move(*pt)};
    });
}

Result<Reply> Module::wrap_key(std::uint64_t session, std::uint64_t wrapping_key, std::uint64_t key) {
    static const Event ev{"LUNA_WRAP_KEY", kKeymanage, false, true};
    std::shared_ptr<KeyObject> target;
    {
        std::lock_guard lock(mu_);
        auto s = session_for(session);
        if (s) {
            auto t = key_for(**s, key);
            if (t) target = std::move(*t);
        }
    }
    return key_op(ev, session, wrapping_key, kKeyManagers,
                  [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
                      d.push_back({"new_key", std::to_string(key)});
                      d.push_back({"mech", "CKM_AES_KEY_WRAP_PAD"});
                      if (!target) return make_error(errc::not_found, "no key " + std::to_string(key) + " to wrap");
                      auto blob = k.wrap(*target);
                      if (!blob) return std::move(blob).error();
                      return Reply{0, 0, std::move(*blob)};
                  });
}

Result<Reply> Module::unwrap_key(std::uint64_t session, std::uint64_t wrapping_key, std::string_view blob,
                                 std::string_view label) {
    static const Event ev{"LUNA_UNWRAP_KEY", kKeymanage, false, true};
    std::shared_ptr<KeyObject> created;
    std::uint64_t handle = 0;
    auto r = key_op(ev, session, wrapping_key, kKeyManagers,
                    [&](const KeyObject& k, std::vector<mac::Detail>& d) -> Result<Reply> {
                        d.push_back({"mech", "CKM_AES_KEY_WRAP_PAD"});
                        auto nk = k.unwrap(blob, k.partition(), std::string(label.substr(0, 64)));
                        if (!nk) return std::move(nk).error();
                        created = std::move(*nk);
                        {
                            std::lock_guard lock(mu_);
                            handle = next_key_++;
                        }
                        d.push_back({"new_key", std::to_string(handle)});
                        d.push_back({"alg", key_alg_name(created->alg())});
                        return Reply{0, handle, {}};
                    });
    if (r && created) {
        std::lock_guard lock(mu_);
        keys_[handle] = std::move(created);
    }
    return r;
}

// ---- audit administration and clock ---------------------------------------------------------

Result<Reply> Module::set_audit_mask(std::uint64_t session, std::string_view mask) {
    static const Event ev{"LUNA_AUDIT_CONFIG", kLogmanage, true, false, Priority::reserve};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"mask", std::string(mask.substr(0, 128))}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (shown.partition != 0 || shown.role != Role::au)
        return finish(ev, &shown, session, make_error(errc::not_permitted, "only the Auditor configures the audit log"),
                      details);
    auto m = parse_audit_mask(mask);
    if (!m) return finish(ev, &shown, session, std::move(m).error(), details);
    const std::uint32_t before = audit_mask_;
    audit_mask_ = *m;
    if (auto st = save_config(); !st) {
        audit_mask_ = before;
        return finish(ev, &shown, session, std::move(st).error(), details);
    }
    details[0].value = format_audit_mask(*m);
    return finish(ev, &shown, session, Reply{}, details);
}

Result<Reply> Module::log_external(std::uint64_t session, std::string_view message) {
    static const Event ev{"LUNA_LOG_EXTERNAL", kExternal};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"msg", std::string(message.substr(0, 1024))}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (!shown.role) return finish(ev, &shown, session, make_error(errc::not_permitted, "not logged in"), details);
    update_blocked();
    if (blocked_locked()) return refuse_log_full(ev, &shown, session, details);
    return finish(ev, &shown, session, Reply{}, details);
}

Result<Reply> Module::set_clock(std::uint64_t session, std::int64_t offset_ms, std::int64_t drift_ppm) {
    static const Event ev{"LUNA_CLOCK_SET", kManage, true, false, Priority::reserve};
    std::lock_guard lock(mu_);
    std::vector<mac::Detail> details = {{"offset_ms", std::to_string(offset_ms)},
                                        {"drift_ppm", std::to_string(drift_ppm)}};
    auto s = session_for(session);
    if (!s) return finish(ev, nullptr, session, std::move(s).error(), details);
    const Session shown = **s;
    if (shown.partition != 0 || shown.role != Role::so)
        return finish(ev, &shown, session, make_error(errc::not_permitted, "only the SO sets the module clock"),
                      details);
    if (drift_ppm < -1'000'000 || drift_ppm > 1'000'000)
        return finish(ev, &shown, session, make_error(errc::invalid_argument, "drift must be within +-1e6 ppm"),
                      details);
    clock_.set(offset_ms, drift_ppm);
    return finish(ev, &shown, session, Reply{}, details);
}

std::uint32_t Module::audit_mask() const {
    std::lock_guard lock(mu_);
    return audit_mask_;
}

// ---- host side ------------------------------------------------------------------------------

Result<mac::Checkpoint> Module::checkpoint(std::uint64_t retained) {
    std::lock_guard lock(mu_);
    const mac::ChainHead& h = chain_->head();
    if (retained == 0)
        return mac::make_checkpoint(chain_id_, serial_, h.epoch, h.next_seq - 1, clock_.now_ms(), h.last_mac, *signer_);
    // The host cannot hold a record the module has not written: refuse rather than sign it.
    if (retained > h.next_seq)
        return make_error(errc::invalid_argument, "checkpoint: retained " + std::to_string(retained) +
                                                      " is beyond the chain's next sequence number " +
                                                      std::to_string(h.next_seq));
    return mac::make_checkpoint(chain_id_, serial_, h.epoch, h.next_seq - 1, retained, clock_.now_ms(), h.last_mac,
                                *signer_);
}

Result<Reply> Module::seal() {
    std::lock_guard lock(mu_);
    const std::size_t sizes[2] = {1024, 640};  // upper bounds of a seal and an open entry
    if (ring_->free_after(sizes) < 0) return make_error(errc::log_full, "no room in the ring for a seal");
    const std::int64_t now = clock_.now_ms();
    auto seal_line = chain_->seal(now);
    if (!seal_line) {
        reset_chain();
        return make_error(errc::invalid_state, seal_line.error().message);
    }
    const std::uint64_t last_seq = chain_->head().next_seq - 1;
    auto open_line = chain_->open_segment(now);
    if (!open_line) {
        reset_chain();
        return make_error(errc::invalid_state, open_line.error().message);
    }
    const std::uint64_t seal_entry = ring_->state().next_entry;
    std::string a;
    std::string b;
    ring::encode_line_entry(ring::EntryKind::seal, seal_entry, last_seq, *seal_line, a);
    ring::encode_line_entry(ring::EntryKind::open, seal_entry + 1, chain_->head().next_seq, *open_line, b);
    const std::string_view v[2] = {a, b};
    if (auto st = ring_->commit(v, chain_->head()); !st) {
        reset_chain();
        return std::move(st).error();
    }
    update_blocked();
    return Reply{0, seal_entry, {}};
}

void Module::load_tree() {
    tree_.reset();
    tree_error_.clear();
    tree_gen_ = 0;
    tree_saved_n_ = UINT64_MAX;
    const std::string path = (fs::path(dir_) / kTreeStateFile).string();
    mac::tlog::CompactTree tree;
    std::uint64_t gen = 0;
    if (fs::exists(path)) {
        auto text = base::read_secret_file(path, 2 * kTreeSlotBytes);
        if (!text) {
            tree_error_ = text.error().message;
            return;
        }
        std::optional<TreeSlot> best;
        for (std::size_t i = 0; i < 2 && i * kTreeSlotBytes < text->size(); ++i) {
            auto slot = parse_tree_slot(std::string_view(*text).substr(i * kTreeSlotBytes, kTreeSlotBytes));
            if (slot && (!best || slot->gen > best->gen)) best = std::move(slot);
        }
        if (!best) {
            tree_error_ = path + " holds no valid tree slot";
            return;
        }
        gen = best->gen;
        tree = std::move(best->tree);
    }
    // The ring still holds every record the saved tree lacks (they are saved before an ack frees them).
    const std::uint64_t newest = chain_->head().next_seq - 1;
    if (tree.size() > newest) {
        tree_error_ =
            path + " covers " + std::to_string(tree.size()) + " records, the chain only " + std::to_string(newest);
        return;
    }
    ring::RingReader reader = ring_->reader();
    const ring::RingStatus st = reader.status();
    if (tree.size() < newest && tree.size() + 1 < st.oldest_seq) {
        tree_error_ = "records " + std::to_string(tree.size() + 1) + ".." + std::to_string(st.oldest_seq - 1) +
                      " are no longer in the ring and " + path + " does not cover them";
        return;
    }
    std::vector<ring::EntryView> views;
    std::string line;
    std::uint64_t after = st.oldest_entry - 1;
    while (tree.size() < newest) {
        views.clear();
        auto n = reader.read_after(after, 4096, views);
        if (!n || *n == 0) {
            tree_error_ = "cannot read the ring to rebuild the Merkle tree";
            return;
        }
        for (const auto& v : views) {
            after = v.entry.entry_no;
            if (v.entry.kind != ring::EntryKind::record || v.entry.seq <= tree.size()) continue;
            line.clear();
            if (v.entry.seq != tree.size() + 1 || !ring::render_entry_line(v.entry, serial_, line)) {
                tree_error_ = "the ring's record " + std::to_string(v.entry.seq) + " does not follow the tree";
                return;
            }
            std::string_view leaf = line;
            if (!leaf.empty() && leaf.back() == '\n') leaf.remove_suffix(1);
            tree.append(mac::tlog::leaf_hash(leaf));
        }
    }
    tree_gen_ = gen;  // the next save writes generation gen + 1
    tree_saved_n_ = gen == 0 ? UINT64_MAX : tree.size();
    tree_.emplace(std::move(tree));
}

Status Module::save_tree_locked() {
    if (!tree_ || tree_->size() == tree_saved_n_) return {};
    const std::string path = (fs::path(dir_) / kTreeStateFile).string();
    const std::uint64_t gen = tree_gen_ + 1;
    const std::string slot = tree_slot_text(gen, *tree_);
    hsmaudit::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return make_error(errc::io_error, "cannot open " + path + ": " + std::strerror(errno));
    const auto off = static_cast<off_t>((gen % 2) * kTreeSlotBytes);
    if (::pwrite(fd.get(), slot.data(), slot.size(), off) != static_cast<ssize_t>(slot.size()))
        return make_error(errc::io_error, "cannot write " + path + ": " + std::strerror(errno));
    if (options_.ring.sync_each_commit && ::fdatasync(fd.get()) != 0)
        return make_error(errc::io_error, "cannot sync " + path + ": " + std::strerror(errno));
    tree_gen_ = gen;
    tree_saved_n_ = tree_->size();
    return {};
}

Result<std::string> Module::tree_head() {
    std::lock_guard lock(mu_);
    if (!tree_) return make_error(errc::invalid_state, "the module keeps no Merkle tree of its chain: " + tree_error_);
    mac::TreeHead head;
    head.origin = mac::tree_origin(chain_id_);
    head.size = tree_->size();
    head.root = tree_->root();
    return mac::sign_checkpoint(head, *signer_);
}

Result<std::pair<std::uint64_t, mac::tlog::Hash>> Module::tree_root() const {
    std::lock_guard lock(mu_);
    if (!tree_) return make_error(errc::invalid_state, "the module keeps no Merkle tree of its chain: " + tree_error_);
    return std::pair{tree_->size(), tree_->root()};
}

Status Module::ack_through(std::uint64_t entry_no) {
    std::lock_guard lock(mu_);
    // Before the ring may reuse the records' space, the tree covering them is saved.
    HSMAUDIT_TRY(save_tree_locked());
    HSMAUDIT_TRY(ring_->ack_through(entry_no));
    update_blocked();
    return {};
}

ring::RingStatus Module::status() const {
    std::lock_guard lock(mu_);
    return ring_->reader().status();
}

ring::RingReader Module::reader() const {
    std::lock_guard lock(mu_);
    return ring_->reader();
}

std::uint32_t Module::boot() const {
    std::lock_guard lock(mu_);
    return chain_->boot();
}

std::int64_t Module::now_ms() const {
    std::lock_guard lock(mu_);
    return clock_.now_ms();
}

}  // namespace hsmaudit::hsmcore::module
