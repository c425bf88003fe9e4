#include "agent/errc.h"

#include <string>

namespace hsmaudit::agent {
namespace {

class Category final : public std::error_category {
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

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::agent
