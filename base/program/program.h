// What every program of the project shares on its command line: --version (base/version) and the
// manual page, generated from the program's own CLI11 option tables so it cannot drift from --help.
// Each program builds its CLI::App, then calls add_version_flag() before parsing and
// emit_generated_help() with its sections; the build runs `<program> --help-man` and
// `<program> --help-bash-completion` and installs what they print (cmake/HsmauditInstall.cmake). Thread-safety: free
// functions over the caller's App, called from main's thread only.
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

/// A bash completion script for `app` (complete -F): subcommands, each one's options, file names
/// after an option that takes a value and for positional arguments.
std::string bash_completion(const CLI::App& app, const std::string& program);

/// If the command line is exactly `<program> --help-man` or `<program> --help-bash-completion`, prints
/// man_page() or bash_completion() on `out` and returns true (the build runs both and installs the
/// output). Not CLI11 options, so they never show in --help and do not clash with required subcommands.
bool emit_generated_help(int argc, const char* const* argv, const CLI::App& app, const ManPage& page,
                         std::ostream& out);

}  // namespace hsmaudit::base
