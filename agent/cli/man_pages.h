// The parts of hsmauditd(8) and hsmaudit(1) that are not in their option tables: exit status,
// signals, files, see also. The options come from the programs' CLI::App (base/program/program.h),
// so `hsmauditd --help-man` and `hsmaudit --help-man` (run by the build) cannot drift from --help.
#pragma once

#include "base/program/program.h"

namespace hsmaudit::agent {

base::ManPage hsmauditd_man_page();
base::ManPage hsmaudit_man_page();

}  // namespace hsmaudit::agent
