// Module: the emulated cryptographic module. Partitions and roles, sessions and logins with
// lock-out, real OpenSSL operations on in-memory keys, and an authentic audit record for each
// event, MAC'd by mac::ChainWriter and committed to the NVRAM ring before the operation is
// reported done. When the ring reaches its reserve the module refuses cryptographic operations
// and partition creation (errc::log_full) and audits the refusals in the reserve; sessions and
// logins still proceed. It resumes as soon as an acknowledgement frees space.
//
// State directory D: nvram.ring, nvram.state (ring.h), audit.key/audit.sign (0600), audit.pub,
// module.json (0600: serial, partitions, role PIN hashes, audit mask), client.pins (0600: the
// PINs `hsmcore init` generated, for test clients), tree.state (0600: the RFC 6962 Merkle tree
// over the chain's records, mac/merkle.h, as a compact frontier; see tree_head()).
//
// Thread-safety: every public method may be called from any thread. Bookkeeping and the audit
// append are serialised by one mutex; the cryptography itself runs outside it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "hsmcore/module/audit_config.h"
#include "hsmcore/module/clock.h"
#include "hsmcore/module/key_object.h"
#include "hsmcore/ring/ring.h"
#include "mac/chain_writer.h"
#include "mac/checkpoint.h"
#include "mac/merkle.h"

namespace hsmaudit::hsmcore::module {

inline constexpr char kModuleConfigFile[] = "module.json";
inline constexpr char kClientPinsFile[] = "client.pins";
/// The module's Merkle tree state: one line "hsmaudit-tree/1 <CompactTree::encode()>".
inline constexpr char kTreeStateFile[] = "tree.state";
/// Result code recorded for operations refused because the audit log is full (vendor-defined range).
inline constexpr std::uint32_t kCkrLogFull = 0x80000100;

enum class Role { so, au, pso, co, lco, cu };
const char* role_name(Role r) noexcept;  // "SO", "AU", "PSO", "CO", "LCO", "CU"
Result<Role> parse_role(std::string_view name);

struct InitOptions {
    std::string serial = "150123";
    std::size_t ring_bytes = ring::kDefaultRingBytes;
    std::size_t reserve_bytes = 0;  // 0: the ring's default (1/16 of the data area)
    std::string audit_mask = "all";
    unsigned max_failed_logins = 3;
};

struct ModuleOptions {
    BaseClock clock = system_clock_ms();
    ring::RingOptions ring;
};

/// What an operation returns: the record that audits it (0 if the audit mask filtered it out),
/// a handle (session, key or partition id) and data (signature, ciphertext, wrapped blob...).
struct Reply {
    std::uint64_t seq = 0;
    std::uint64_t handle = 0;
    std::string data;
};

struct PartitionInfo {
    std::uint32_t id = 0;
    std::string label;
    bool initialized = false;
    std::size_t keys = 0;
};

/// The PINs `hsmcore init` wrote to D/client.pins: (role name, partition) -> PIN.
Result<std::map<std::pair<std::string, std::uint32_t>, std::string>> load_client_pins(const std::string& dir);

class Module {
public:
    /// Creates a new module in `dir`: audit keys, ring, configuration with partition 0 (SO, AU) and
    /// partition 1 "default" (PSO, CO, CU, initialized), random PINs written to client.pins.
    static Status init(const std::string& dir, const InitOptions& options);
    /// Starts the module: recovers the ring, increments the boot counter and audits the start.
    static Result<std::unique_ptr<Module>> open(const std::string& dir, ModuleOptions options = {});
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Sessions and roles. Exempt from log-full blocking (they proceed even if they cannot be logged).
    Result<Reply> open_session(std::uint32_t partition);
    Result<Reply> close_session(std::uint64_t session);
    Result<Reply> login(std::uint64_t session, Role role, std::string_view pin);
    Result<Reply> logout(std::uint64_t session);

    // Partition management (SO of partition 0; creation is refused while the log is full).
    Result<Reply> create_partition(std::uint64_t session, std::string_view label);
    Result<Reply> init_partition(std::uint64_t session, std::uint32_t partition, std::string_view label,
                                 std::string_view pso_pin);
    /// PSO (or SO on partition 0) sets a role's PIN and clears its lock-out.
    Result<Reply> init_role(std::uint64_t session, Role role, std::string_view pin);
    [[nodiscard]] std::vector<PartitionInfo> list_partitions() const;

    // Key operations (CO/LCO manage keys, CU uses them). Refused while the log is full.
    Result<Reply> generate_key(std::uint64_t session, KeyAlg alg, std::string_view label);
    Result<Reply> destroy_object(std::uint64_t session, std::uint64_t key);
    Result<Reply> sign(std::uint64_t session, std::uint64_t key, std::string_view data);
    Result<Reply> verify(std::uint64_t session, std::uint64_t key, std::string_view data, std::string_view sig);
    Result<Reply> encrypt(std::uint64_t session, std::uint64_t key, std::string_view plaintext);
    Result<Reply> decrypt(std::uint64_t session, std::uint64_t key, std::string_view ciphertext);
    Result<Reply> wrap_key(std::uint64_t session, std::uint64_t wrapping_key, std::uint64_t key);
    Result<Reply> unwrap_key(std::uint64_t session, std::uint64_t wrapping_key, std::string_view blob,
                             std::string_view label);

    // Audit administration (Auditor) and the clock (SO).
    Result<Reply> set_audit_mask(std::uint64_t session, std::string_view mask);
    Result<Reply> log_external(std::uint64_t session, std::string_view message);
    Result<Reply> set_clock(std::uint64_t session, std::int64_t offset_ms, std::int64_t drift_ppm);
    [[nodiscard]] std::uint32_t audit_mask() const;

    // The host side (the agent's requests).
    /// Seals the open segment and opens the next one; returns the seal's entry number in handle.
    Result<Reply> seal();
    /// A signed chain-head checkpoint: the newest record's sequence number and MAC (mac/checkpoint.h).
    /// `retained` (the first sequence number the host's store still holds) is signed with them in a
    /// version 2 checkpoint; one beyond the head + 1 is refused (invalid_argument). 0: version 1.
    Result<mac::Checkpoint> checkpoint(std::uint64_t retained = 0);
    /// A signed tree head (C2SP tlog-checkpoint signed note, mac/note.h) of the RFC 6962 tree over
    /// records 1..n, n the newest record's sequence number, signed with the audit signing key.
    /// errc::invalid_state if the module could not keep the tree (tree.state lost after records
    /// were acknowledged: the leaves it would need are gone).
    Result<std::string> tree_head();
    /// The tree's size and root as the module holds them now (tests, the in-process host).
    [[nodiscard]] Result<std::pair<std::uint64_t, mac::tlog::Hash>> tree_root() const;
    /// Frees ring space through `entry_no`. The tree state is saved first (tree.state), so the
    /// records it no longer holds are never needed to rebuild the tree after a restart.
    Status ack_through(std::uint64_t entry_no);
    [[nodiscard]] ring::RingStatus status() const;
    [[nodiscard]] ring::RingReader reader() const;
    [[nodiscard]] const ring::RecoveryReport& recovery() const { return recovery_; }
    [[nodiscard]] const std::string& serial() const { return serial_; }
    [[nodiscard]] std::uint32_t boot() const;
    [[nodiscard]] std::int64_t now_ms() const;

private:
    struct RoleState {
        std::string salt_hex;
        std::string hash_hex;
        bool locked = false;
        unsigned failed = 0;
    };
    struct Partition {
        std::uint32_t id = 0;
        std::string label;
        bool initialized = false;
        std::map<Role, RoleState> roles;
    };
    struct Session {
        std::uint32_t partition = 0;
        std::optional<Role> role;
    };
    enum class Priority { normal, exempt, reserve };
    struct Event {
        const char* name;
        AuditClass cls;
        bool critical = false;
        bool crypto = false;
        Priority priority = Priority::normal;
        bool request = true;  // counts as an operation request (false: the module's own events)
    };

    Module(std::string dir, ModuleOptions options);
    Status start();
    Status save_config();
    // Everything below runs with mu_ held.
    /// Counts, filters and audits an operation's outcome; returns the outcome (with the record's seq).
    Result<Reply> finish(const Event& ev, const Session* s, std::uint64_t session, Result<Reply> outcome,
                         std::vector<mac::Detail> details, bool first_use = false);
    /// Runs `fn(key)` outside the lock for a logged-in session whose role is in `roles` (bit per Role).
    template <class F>
    Result<Reply> key_op(const Event& ev, std::uint64_t session, std::uint64_t key, unsigned roles, F&& fn);
    Result<std::uint64_t> append_record(mac::AuditRecord& rec);
    bool blocked_locked() const;
    void update_blocked();
    Error refuse_log_full(const Event& ev, const Session* s, std::uint64_t session, std::vector<mac::Detail> details);
    Result<Session*> session_for(std::uint64_t session);
    Result<std::shared_ptr<KeyObject>> key_for(const Session& s, std::uint64_t key);
    void reset_chain();
    /// Loads tree.state and appends the ring's records after it (start()).
    void load_tree();
    Status save_tree_locked();

    std::string dir_;
    ModuleOptions options_;
    mutable std::mutex mu_;
    ModuleClock clock_;
    std::optional<ring::RingWriter> ring_;
    std::optional<mac::ChainWriter> chain_;
    std::optional<mac::Ed25519PrivateKey> signer_;
    mac::ChainId chain_id_{};
    ring::RecoveryReport recovery_;
    std::string serial_;
    std::uint32_t audit_mask_ = kAuditAll;
    unsigned max_failed_logins_ = 3;
    std::map<std::uint32_t, Partition> partitions_;
    std::map<std::uint64_t, Session> sessions_;
    std::map<std::uint64_t, std::shared_ptr<KeyObject>> keys_;
    std::uint64_t next_session_ = 1;
    std::uint64_t next_key_ = 1;
    std::string entry_buf_;                       // scratch for encoding entries
    std::string line_buf_;                        // scratch for the chain writer's line
    std::optional<mac::tlog::CompactTree> tree_;  // nullopt: not kept (tree_error_ says why)
    std::string tree_error_;
    std::uint64_t tree_gen_ = 0;               // the generation tree.state's newest slot holds
    std::uint64_t tree_saved_n_ = UINT64_MAX;  // the tree size it holds (UINT64_MAX: none saved)
};

}  // namespace hsmaudit::hsmcore::module
