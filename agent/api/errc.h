// Error codes of the agent's layers (api, engine, tools, daemon, the CLI) and of the exporter
// modules without codes of their own (exporters/common, exporters/formats). See base/result.h.
#pragma once

#include <string>
#include <system_error>

namespace hsmaudit::agent {

enum class errc {
    ok = 0,
    io_error = 1,          // a file or socket operation failed
    invalid_argument = 2,  // a command-line argument or API argument is wrong
    config_error = 3,      // the configuration is invalid (the message names file and line)
    internal = 4,          // a lower layer failed where it should not
    store_damaged = 5,     // stored data fails authentication, is torn, does not parse or is out of sequence
    store_unreadable = 6,  // the store could not be read (EIO, permission, a file missing): not the destination's fault
};

namespace detail {

class ErrorCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.agent"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::io_error: return "I/O error";
            case errc::invalid_argument: return "invalid argument";
            case errc::config_error: return "configuration error";
            case errc::internal: return "internal error";
            case errc::store_damaged: return "the store is damaged";
            case errc::store_unreadable: return "the store cannot be read";
        }
        return "unknown agent error " + std::to_string(ev);
    }
};

}  // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::ErrorCategory category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace hsmaudit::agent

template <>
struct std::is_error_code_enum<hsmaudit::agent::errc> : std::true_type {};
