// What every program of the project shares on its command line: --version (base/version) and the
// manual page, generated from the program's own CLI11 option tables so it cannot drift from --help.
// Each program builds its CLI::App, then calls add_version_flag() before parsing and
// emit_man_page_if_asked() with its sections; the build runs `<program> --help-man` and installs the
// roff it prints (base/program/CMakeLists.txt). Thread-safety: free functions over the caller's App,
// called from main's thread only.
#pragma once

#include <CLI/CLI.hpp>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace hsmaudit::base {

/// One section of a manual page beyond NAME, SYNOPSIS, DESCRIPTION, OPTIONS and COMMANDS.
/// `text` is plain paragraphs (blank line between them); `items` become tagged paragraphs (.TP):
/// the term in bold, then its description.
struct ManSection {
    std::string title;  // upper case: "EXIT STATUS", "SIGNALS", "FILES", "SEE ALSO"
    std::string text;
    std::vector<std::pair<std::string, std::string>> items;
};

/// The page's identity and the sections the option tables do not hold.
struct ManPage {
    std::string name;     // "hsmauditd"
    int section = 1;      // 1 user commands, 8 system administration
    std::string summary;  // the NAME line's description: "the HSM audit agent service"
    std::vector<ManSection> sections;
};

/// Adds --version, printing "<program> <version>" (base::version()) and exiting 0: CLI11 throws
/// CLI::CallForVersion, a CLI::Success, which app.exit() prints and turns into 0.
void add_version_flag(CLI::App& app, const std::string& program);

/// The manual page (roff, man(7) macros) of `app` and its subcommands, every option with its
/// description, type and default as --help shows them.
std::string man_page(const CLI::App& app, const ManPage& page);

/// If the command line is exactly `<program> --help-man`, prints man_page() on `out` and returns true.
/// Not a CLI11 option, so it never shows in --help and does not clash with required subcommands.
bool emit_man_page_if_asked(int argc, const char* const* argv, const CLI::App& app, const ManPage& page,
                            std::ostream& out);

}  // namespace hsmaudit::base
