#include "hsmcore/appliance/errc.h"

#include <string>

namespace hsmaudit::appliance {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.appliance"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::invalid_argument: return "invalid argument";
            case errc::io_error: return "I/O error";
            case errc::invalid_state: return "invalid state";
        }
        return "unknown appliance error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::appliance
