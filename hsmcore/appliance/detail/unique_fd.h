// The project's RAII descriptor and waker (base/unique_fd.h), under the names hsmcore/appliance uses.
#pragma once

#include "base/unique_fd.h"

namespace hsmaudit::appliance::detail {
using hsmaudit::UniqueFd;
using hsmaudit::Waker;
}  // namespace hsmaudit::appliance::detail
