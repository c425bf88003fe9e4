#include "hsmcore/errc.h"

#include <array>
#include <string>
#include <string_view>

namespace hsmaudit::hsmcore {
namespace {

constexpr std::array<const char*, 14> kNames = {
    "ok",        "io_error",      "corrupt",    "log_full",      "invalid_argument", "invalid_state",
    "not_found", "pin_incorrect", "pin_locked", "not_permitted", "crypto_error",     "protocol_error",
    "overrun",   "unavailable",
};

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.hsmcore"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::io_error: return "I/O error";
            case errc::corrupt: return "ring or module state is corrupt";
            case errc::log_full: return "audit log full: operation refused until the log is drained";
            case errc::invalid_argument: return "invalid argument";
            case errc::invalid_state: return "invalid state";
            case errc::not_found: return "not found";
            case errc::pin_incorrect: return "incorrect PIN";
            case errc::pin_locked: return "role locked out after too many failed logins";
            case errc::not_permitted: return "operation not permitted for this role";
            case errc::crypto_error: return "cryptographic library error";
            case errc::protocol_error: return "control protocol error";
            case errc::overrun: return "entries no longer in the ring";
            case errc::unavailable: return "module not reachable";
        }
        return "unknown hsmcore error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

const char* errc_name(errc e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < kNames.size() ? kNames[i] : "unknown";
}

errc errc_from_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < kNames.size(); ++i)
        if (name == kNames[i]) return static_cast<errc>(i);
    return errc::protocol_error;
}

}  // namespace hsmaudit::hsmcore
