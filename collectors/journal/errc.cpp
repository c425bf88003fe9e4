#include "collectors/journal/errc.h"

#include <string>

namespace hsmaudit::collectors::journal {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.journal_collector"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::invalid_argument: return "invalid argument";
            case errc::open_failed: return "cannot open the journal";
            case errc::read_error: return "journal read error";
            case errc::cursor_damaged: return "damaged cursor file";
            case errc::io_error: return "I/O error";
        }
        return "unknown journal collector error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::collectors::journal
