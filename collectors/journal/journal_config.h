// The journal source's configuration keys (syslog.journal.*), declared beside the code that reads
// them, and the JournalOptions they make.
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>

#include "base/config/config.h"
#include "base/result.h"
#include "collectors/journal/journal_source.h"

namespace hsmaudit::collectors::journal {

/// syslog.journal.enabled, .units, .matches, .directory, .priority, .start, .cursor_sync.
std::span<const base::KeySpec> journal_config_keys();

/// True if the configuration turns the journal source on.
bool journal_enabled(const base::Config& config);

/// The options the keys give (also syslog.max_message_bytes); the cursor file, alerts and hooks are the
/// caller's. An error names the key and its place in the file.
Result<JournalOptions> journal_options(const base::Config& config);

}  // namespace hsmaudit::collectors::journal
