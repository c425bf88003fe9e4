// The Auditor's audit configuration: which event classes are logged (lunacm `audit config evmask`).
// Classes combine; critical events are logged whatever the mask says.
//
// Thread-safety: free functions on values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hsmaudit::hsmcore::module {

enum AuditClass : std::uint32_t {
    kFailure = 1u << 0,    // every failed operation
    kSuccess = 1u << 1,    // every successful operation
    kAccess = 1u << 2,     // login, logout, sessions
    kManage = 1u << 3,     // partitions, roles, module management
    kKeymanage = 1u << 4,  // key generation, wrap, unwrap, destroy
    kUsage = 1u << 5,      // sign, verify, encrypt, decrypt: every key usage
    kFirst = 1u << 6,      // the first usage of each key only
    kExternal = 1u << 7,   // messages logged by applications
    kLogmanage = 1u << 8,  // audit configuration and log management
};
inline constexpr std::uint32_t kAuditAll = (1u << 9) - 1;
inline constexpr std::uint32_t kAuditNone = 0;

/// "all", "none", or classes joined by ',' or '+' ("first,manage,access,keymanage").
Result<std::uint32_t> parse_audit_mask(std::string_view text);
/// The inverse: "all", "none" or the class names joined by ','.
std::string format_audit_mask(std::uint32_t mask);
/// The record class name of a single class bit.
const char* audit_class_name(AuditClass c) noexcept;

/// Whether an event is logged under `mask`: its natural class, failure/success, first use, or critical.
bool should_log(std::uint32_t mask, AuditClass natural, bool failed, bool first_use, bool critical) noexcept;

}  // namespace hsmaudit::hsmcore::module
