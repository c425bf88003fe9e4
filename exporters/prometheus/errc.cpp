#include "exporters/prometheus/errc.h"

#include <string>

namespace hsmaudit::exporters::prometheus {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.prometheus_exporter"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::io_error: return "I/O error";
            case errc::bind_failed: return "cannot listen";
            case errc::tls_error: return "TLS error";
        }
        return "unknown prometheus exporter error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::prometheus
