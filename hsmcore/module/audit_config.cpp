#include "hsmcore/module/audit_config.h"

#include <array>
#include <chrono>
#include <utility>

#include "hsmcore/errc.h"
#include "hsmcore/module/clock.h"

namespace hsmaudit::hsmcore::module {
namespace {

constexpr std::array<std::pair<AuditClass, const char*>, 9> kClasses = {{
    {kFailure, "failure"},
    {kSuccess, "success"},
    {kAccess, "access"},
    {kManage, "manage"},
    {kKeymanage, "keymanage"},
    {kUsage, "usage"},
    {kFirst, "first"},
    {kExternal, "external"},
    {kLogmanage, "logmanage"},
}};

}  // namespace

Result<std::uint32_t> parse_audit_mask(std::string_view text) {
    if (text == "all") return kAuditAll;
    if (text == "none") return kAuditNone;
    if (text.empty()) return make_error(errc::invalid_argument, "empty audit mask (use 'none' to log nothing)");
    std::uint32_t mask = 0;
    while (!text.empty()) {
        const auto cut = text.find_first_of(",+");
        const std::string_view name = text.substr(0, cut);
        bool found = false;
        for (const auto& [bit, n] : kClasses)
            if (name == n) {
                mask |= bit;
                found = true;
            }
        if (name == "all") {
            mask |= kAuditAll;
            found = true;
        }
        if (!found)
            return make_error(errc::invalid_argument,
                              "unknown audit class '" + std::string(name.substr(0, 32)) +
                                  "' (failure, success, access, manage, keymanage, usage, first, external, "
                                  "logmanage, all, none)");
        text = cut == std::string_view::npos ? std::string_view{} : text.substr(cut + 1);
    }
    return mask;
}

std::string format_audit_mask(std::uint32_t mask) {
    if ((mask & kAuditAll) == kAuditAll) return "all";
    if ((mask & kAuditAll) == 0) return "none";
    std::string out;
    for (const auto& [bit, n] : kClasses)
        if (mask & bit) {
            if (!out.empty()) out += ',';
            out += n;
        }
    return out;
}

const char* audit_class_name(AuditClass c) noexcept {
    for (const auto& [bit, n] : kClasses)
        if (bit == c) return n;
    return "?";
}

bool should_log(std::uint32_t mask, AuditClass natural, bool failed, bool first_use, bool critical) noexcept {
    if (critical) return true;
    if (mask & natural) return true;
    if (failed && (mask & kFailure)) return true;
    if (!failed && (mask & kSuccess)) return true;
    return first_use && (mask & kFirst);
}

BaseClock system_clock_ms() {
    return [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
}

std::int64_t ModuleClock::now_ms() const {
    const std::int64_t base = base_();
    return base + offset_ms_ + (base - anchor_ms_) * drift_ppm_ / 1'000'000;
}

void ModuleClock::set(std::int64_t offset_ms, std::int64_t drift_ppm) {
    const std::int64_t base = base_();
    offset_ms_ = offset_ms;
    drift_ppm_ = drift_ppm;
    anchor_ms_ = base;
}

}  // namespace hsmaudit::hsmcore::module
