#include "exporters/snmp/engine.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/files.h"
#include "exporters/snmp/errc.h"
#include "exporters/snmp/logger.h"

namespace hsmaudit::exporters::snmp {
namespace {

constexpr std::uint32_t kMaxBoots = 2147483647;  // RFC 3414: at this value the engine needs a new ID

std::string to_hex(const std::vector<std::uint8_t>& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s;
    for (auto b : bytes) {
        s += kDigits[b >> 4];
        s += kDigits[b & 15];
    }
    return s;
}

}  // namespace

std::string EngineState::engine_id_hex() const {
    return "0x" + to_hex(engine_id);
}

Result<std::vector<std::uint8_t>> parse_engine_id(std::string_view hex) {
    if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    if (hex.size() % 2 != 0 || hex.size() < 10 || hex.size() > 64)
        return make_error(errc::config_error, "an engine ID is 5 to 32 octets in hex, got '" + std::string(hex) + "'");
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = nibble(hex[i]);
        const int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return make_error(errc::config_error, "'" + std::string(hex) + "' is not hex");
        out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    }
    return out;
}

std::vector<std::uint8_t> generate_engine_id(std::uint32_t enterprise) {
    std::vector<std::uint8_t> id{static_cast<std::uint8_t>(0x80 | ((enterprise >> 24) & 0x7f)),
                                 static_cast<std::uint8_t>(enterprise >> 16),
                                 static_cast<std::uint8_t>(enterprise >> 8), static_cast<std::uint8_t>(enterprise), 5};
    std::uint8_t random[8] = {};
    if (RAND_bytes(random, sizeof random) != 1) {
        // Without randomness fall back to the time; an engine ID must be unique, not secret.
        const auto t = static_cast<std::uint64_t>(::time(nullptr));
        for (int i = 0; i < 8; ++i) random[i] = static_cast<std::uint8_t>(t >> (8 * i));
    }
    id.insert(id.end(), std::begin(random), std::end(random));
    return id;
}

Result<EngineState> load_and_boot(const std::string& dir, const std::vector<std::uint8_t>& configured,
                                  std::uint32_t enterprise, base::FileSystem& fs) {
    const std::string path = dir + "/snmp-engine.json";
    EngineState st;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) == 0) {
        auto text = base::read_file(path, 4096);
        if (!text) return make_error(errc::state_error, text.error().describe());
        try {
            const auto j = nlohmann::json::parse(*text);
            auto id = parse_engine_id(j.at("engine_id").get<std::string>());
            if (!id) return make_error(errc::state_error, path + ": " + id.error().describe());
            st.engine_id = std::move(*id);
            st.boots = j.at("boots").get<std::uint32_t>();
        } catch (const nlohmann::json::exception& e) {
            return make_error(errc::state_error,
                              path + " is damaged (" + e.what() +
                                  "); restore it, or delete it to make a new engine ID (receivers' users must then be "
                                  "created again under the new ID)");
        }
    }
    if (!configured.empty() && configured != st.engine_id) {
        st.engine_id = configured;
        st.boots = 0;
    }
    if (st.engine_id.empty()) {
        st.engine_id = generate_engine_id(enterprise);
        st.boots = 0;
    }
    if (st.boots >= kMaxBoots)
        return make_error(errc::state_error, path + ": snmpEngineBoots reached 2147483647; the engine needs a new ID");
    ++st.boots;
    const nlohmann::json j = {{"version", 1}, {"engine_id", to_hex(st.engine_id)}, {"boots", st.boots}};
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (auto w = base::write_file_atomic(path, text, 0600, false, fs); !w) {
        // Not fatal: an agent that cannot start on a full disk would send no trap at all, and the
        // traps about the full disk matter most. This run uses the new count without having stored
        // it; the file keeps the old one whole (write_file_atomic), and the next start that can
        // write increments from it again (a receiver may then see this boot count twice and drop
        // that run's traps as outside its time window until its engine time passes this run's).
        st.unsaved = true;
        logger().warn(
            "snmp engine: cannot save snmpEngineBoots {} in {}: {}; using it unsaved (retried at the next "
            "start)",
            st.boots, path, w.error().describe());
    }
    return st;
}

}  // namespace hsmaudit::exporters::snmp
