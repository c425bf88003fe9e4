// The build's version, from one place: `git describe` of the source tree when it was built (or the
// project VERSION of CMakeLists.txt outside a git checkout), written into version_build.cpp at build
// time by cmake/version.cmake only when it changed. hsmauditd, hsmaudit and hsmcore link that
// definition and print it with --version; the CEF/LEEF header, hsmaudit_build_info and the agent's
// status report it. Tests and tools link a definition that returns the project VERSION, so a commit
// relinks three programs, not every test (base/version/CMakeLists.txt).
// Thread-safety: constants, readable from any thread.
#pragma once

#include <string_view>

namespace hsmaudit::base {

/// The full version: "0.1.0" at a release tag v0.1.0; "0.1.0-12-g1a2b3c4" 12 commits after it (or after
/// the start of history when no tag exists yet); "-dirty" appended when the tree had uncommitted changes.
std::string_view version();

/// The release number alone (CMakeLists.txt project VERSION, "0.1.0"): what the documentation shows.
std::string_view project_version();

/// The Debian package version derived from version() ("0.1.0+git12.g1a2b3c4-1"): see cmake/version.cmake.
std::string_view debian_version();

}  // namespace hsmaudit::base
