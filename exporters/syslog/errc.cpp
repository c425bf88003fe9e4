#include "exporters/syslog/errc.h"

#include <string>

namespace hsmaudit::exporters::syslog {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.syslog_exporter"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::connect_failed: return "connect failed";
            case errc::auth_failed: return "server authentication failed";
            case errc::send_failed: return "send failed";
            case errc::internal: return "internal error";
        }
        return "unknown syslog exporter error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::syslog
