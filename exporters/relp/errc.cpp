#include "exporters/relp/errc.h"

#include <string>

namespace hsmaudit::exporters::relp {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.relp"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::connect_failed: return "connect failed";
            case errc::auth_failed: return "peer authentication failed";
            case errc::send_failed: return "send failed";
            case errc::not_confirmed: return "tail not confirmed";
            case errc::internal: return "internal error";
        }
        return "unknown relp error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::relp
