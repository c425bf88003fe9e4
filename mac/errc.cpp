#include "mac/errc.h"

#include <string>

namespace hsmaudit::mac {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "hsmaudit.mac"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok: return "ok";
            case errc::io_error: return "I/O error";
            case errc::bad_format: return "malformed input";
            case errc::bad_mac: return "MAC mismatch";
            case errc::bad_signature: return "bad signature";
            case errc::bad_key: return "bad or foreign key";
            case errc::bad_passphrase: return "wrong passphrase or corrupted wrapped secret";
            case errc::insecure_file: return "secret file is readable by group or others";
            case errc::crypto_error: return "cryptographic library error";
            case errc::invalid_argument: return "invalid argument";
            case errc::invalid_state: return "invalid state";
        }
        return "unknown mac error " + std::to_string(ev);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hsmaudit::mac
