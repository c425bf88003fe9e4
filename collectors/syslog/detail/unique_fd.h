// The project's RAII descriptor and waker (base/unique_fd.h), under the names collectors/syslog uses.
#pragma once

#include "base/unique_fd.h"

namespace hsmaudit::collectors::syslog::detail {
using hsmaudit::UniqueFd;
using hsmaudit::Waker;
}  // namespace hsmaudit::collectors::syslog::detail
