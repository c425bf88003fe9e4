// The project's RAII descriptor and waker (mac/unique_fd.h), under the names hsmcore/appliance uses.
#pragma once

#include "mac/unique_fd.h"

namespace hsmaudit::appliance::detail {
using hsmaudit::UniqueFd;
using hsmaudit::Waker;
}  // namespace hsmaudit::appliance::detail
