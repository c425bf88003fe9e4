#include "exporters/kafka/errc.h"

#include <string>

namespace hsmaudit::exporters::kafka {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.kafka"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::config_error: return "configuration error";
            case errc::unreachable: return "cluster unreachable";
            case errc::unknown_topic: return "unknown topic";
            case errc::queue_full: return "local queue full";
            case errc::delivery_failed: return "delivery failed";
            case errc::fatal: return "fatal producer error";
            case errc::consume_failed: return "consume failed";
            case errc::commit_failed: return "commit failed";
            case errc::io_error: return "I/O error";
            case errc::invalid_argument: return "invalid argument";
        }
        return "unknown kafka error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::exporters::kafka
