#include "agent/engine/sample.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "agent/api/errc.h"
#include "mac/encrypted_file.h"

namespace hsmaudit::agent {
namespace {

struct FileCloser {
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): the deleter of the FilePtr that owns `f`
    void operator()(std::FILE* f) const { (void)std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

struct EventKind {
    const char* event;
    const char* cls;
    unsigned weight;
};

// Roughly what a CA-style workload produces with first/manage/access/keymanage/usage logging.
constexpr EventKind kEvents[] = {
    {"LUNA_SIGN", "usage", 50},
    {"LUNA_VERIFY", "usage", 8},
    {"LUNA_ENCRYPT", "usage", 6},
    {"LUNA_DECRYPT", "usage", 6},
    {"LUNA_LOGIN", "access", 8},
    {"LUNA_LOGOUT", "access", 6},
    {"LUNA_OPEN_SESSION", "access", 4},
    {"LUNA_CLOSE_SESSION", "access", 3},
    {"LUNA_GENERATE_KEY_PAIR", "keymanage", 4},
    {"LUNA_GENERATE_KEY", "keymanage", 2},
    {"LUNA_WRAP_KEY", "keymanage", 1},
    {"LUNA_DESTROY_OBJECT", "keymanage", 1},
    {"LUNA_PARTITION_INIT", "manage", 1},
};
constexpr const char* kRoles[] = {"CO", "CU", "CU", "CU", "LCO", "SO", "PSO", "AU"};
constexpr const char* kAlgs[] = {"RSA-2048", "RSA-3072", "EC-P256", "EC-P384", "AES-256"};
constexpr const char* kMechs[] = {"CKM_SHA256_RSA_PKCS", "CKM_ECDSA_SHA256", "CKM_AES_GCM", "CKM_RSA_PKCS_PSS"};

}  // namespace

SampleWorkload::SampleWorkload(std::uint64_t seed, std::int64_t start_time_ms)
    : state_(seed * 0x9E3779B97F4A7C15ULL + 1), time_ms_(start_time_ms) {}

std::uint64_t SampleWorkload::rand() {
    // splitmix64: deterministic and good enough for a workload mix (not for keys).
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void SampleWorkload::next(mac::AuditRecord& rec) {
    unsigned total = 0;
    for (const auto& e : kEvents) total += e.weight;
    unsigned pick = static_cast<unsigned>(rand() % total);
    const EventKind* kind = &kEvents[0];
    for (const auto& e : kEvents) {
        if (pick < e.weight) {
            kind = &e;
            break;
        }
        pick -= e.weight;
    }
    time_ms_ += static_cast<std::int64_t>(rand() % 40);
    rec.time_ms = time_ms_;
    rec.partition = static_cast<std::uint32_t>(1 + rand() % 3);
    rec.role = kRoles[rand() % std::size(kRoles)];
    rec.session = 1 + rand() % next_session_;
    rec.event = kind->event;
    rec.details.clear();
    const bool failed = rand() % 100 < 3;
    rec.event_class = failed ? "failure" : kind->cls;
    rec.result = 0;
    const std::string ev = kind->event;
    if (ev == "LUNA_LOGIN") {
        if (failed) rec.result = 0x000000a0;  // CKR_PIN_INCORRECT
        rec.details.push_back({"client", "10.20.0." + std::to_string(2 + rand() % 200)});
    } else if (ev == "LUNA_OPEN_SESSION") {
        rec.session = ++next_session_;
        rec.role = "-";
    } else if (ev == "LUNA_GENERATE_KEY_PAIR" || ev == "LUNA_GENERATE_KEY") {
        if (failed) rec.result = 0x00000130;  // CKR_DOMAIN_PARAMS_INVALID
        rec.details.push_back({"key", std::to_string(++next_key_)});
        rec.details.push_back({"alg", kAlgs[rand() % std::size(kAlgs)]});
        rec.details.push_back({"label", "issuing CA " + std::to_string(rand() % 10)});
    } else if (ev == "LUNA_PARTITION_INIT") {
        rec.role = "SO";
        rec.details.push_back({"label", "partition-" + std::to_string(rec.partition)});
    } else {
        if (failed)
            rec.result = (rand() % 2) ? 0x00000060 /*CKR_KEY_HANDLE_INVALID*/ : 0x00000101 /*CKR_USER_NOT_LOGGED_IN*/;
        if (ev != "LUNA_LOGOUT" && ev != "LUNA_CLOSE_SESSION") {
            rec.details.push_back({"key", std::to_string(100 + rand() % (next_key_ - 99))});
            rec.details.push_back({"mech", kMechs[rand() % std::size(kMechs)]});
        }
    }
}

Result<std::vector<std::string>> write_sample_trail(const mac::AuditKey& key, const mac::Ed25519PrivateKey& signer,
                                                    const std::string& out_dir, const SampleOptions& opt) {
    namespace fs = std::filesystem;
    if (opt.segment_records == 0) return make_error(errc::invalid_argument, "--segment-records must be at least 1");
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + out_dir + ": " + ec.message());
    for (fs::directory_iterator it(out_dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().extension() == ".log")
            return make_error(errc::invalid_argument,
                              out_dir + " already holds segment files; choose an empty directory");
    }
    auto writer = mac::ChainWriter::create(key.chain(), opt.serial, opt.boot, signer, mac::genesis_head(key));
    if (!writer) return make_error(errc::invalid_argument, writer.error().message);

    std::optional<mac::Bytes32> store_key;
    if (opt.encrypt) {
        auto k = mac::store_key(key);
        if (!k) return make_error(errc::internal, k.error().message);
        store_key = *k;
    }
    SampleWorkload workload(opt.seed, opt.start_time_ms);
    std::vector<std::string> paths;
    FilePtr file;
    std::string buf;
    buf.reserve(1 << 20);
    std::optional<mac::ChunkSealer> sealer;
    std::string sealed;
    auto write = [&](const std::string& bytes) -> Status {
        if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
            return make_error(errc::io_error, "cannot write " + paths.back());
        return {};
    };
    auto flush = [&]() -> Status {
        if (sealer && !buf.empty()) {
            sealed.clear();
            std::string_view rest = buf;
            while (!rest.empty()) {
                const std::size_t n = std::min(rest.size(), mac::kMaxChunkBytes);
                if (auto st = sealer->seal(rest.substr(0, n), sealed); !st)
                    return make_error(errc::internal, st.error().message);
                rest.remove_prefix(n);
            }
            HSMAUDIT_TRY(write(sealed));
        } else {
            HSMAUDIT_TRY(write(buf));
        }
        buf.clear();
        return {};
    };
    auto open_next = [&]() -> Status {
        const std::string path =
            (fs::path(out_dir) / mac::segment_file_name(opt.serial, writer->head().epoch)).string();
        file.reset(std::fopen(path.c_str(), "wx"));  // NOLINT(cppcoreguidelines-owning-memory): FilePtr owns it
        if (!file) return make_error(errc::io_error, "cannot create " + path);
        paths.push_back(path);
        if (store_key) {
            auto s = mac::ChunkSealer::create(*store_key);
            if (!s) return make_error(errc::internal, s.error().message);
            sealer.emplace(std::move(*s));
            HSMAUDIT_TRY(write(sealer->header()));
        }
        auto line = writer->open_segment(workload.now_ms());
        if (!line) return make_error(errc::internal, line.error().message);
        buf += *line;
        return {};
    };
    auto close_file = [&]() -> Status {
        HSMAUDIT_TRY(flush());
        if (std::fclose(file.release()) != 0) return make_error(errc::io_error, "cannot close " + paths.back());
        return {};
    };

    HSMAUDIT_TRY(open_next());
    mac::AuditRecord rec;
    for (std::uint64_t i = 0; i < opt.records; ++i) {
        if (writer->head().segment_records == opt.segment_records) {
            auto seal = writer->seal(workload.now_ms());
            if (!seal) return make_error(errc::internal, seal.error().message);
            buf += *seal;
            HSMAUDIT_TRY(close_file());
            HSMAUDIT_TRY(open_next());
        }
        workload.next(rec);
        auto mac = writer->append(rec, buf);
        if (!mac) return make_error(errc::internal, mac.error().message);
        if (buf.size() > (1u << 20)) HSMAUDIT_TRY(flush());
    }
    HSMAUDIT_TRY(close_file());
    if (store_key) mac::secure_zero(store_key->data(), store_key->size());
    return paths;
}

}  // namespace hsmaudit::agent
