#include "exporters/snmp/errc.h"

#include <string>

namespace hsmaudit::exporters::snmp {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.snmp"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::rules_error: return "notification rules error";
            case errc::credentials: return "credentials error";
            case errc::state_error: return "engine state error";
            case errc::session: return "cannot open an SNMP session";
            case errc::send_failed: return "cannot send a notification";
            case errc::internal: return "internal error";
        }
        return "unknown snmp error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::snmp
