#include "exporters/hec/errc.h"

#include <string>

namespace hsmaudit::exporters::hec {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.hec"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::connect_failed: return "connect failed";
            case errc::token_refused: return "token refused";
            case errc::busy: return "server busy";
            case errc::rejected: return "data rejected";
            case errc::ack_disabled: return "indexer acknowledgement disabled";
            case errc::server_error: return "server error";
            case errc::protocol_error: return "protocol error";
            case errc::ack_timeout: return "acknowledgement timed out";
            case errc::transfer_failed: return "transfer failed";
            case errc::internal: return "internal error";
        }
        return "unknown hec error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::hec
