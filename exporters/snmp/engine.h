// The SNMPv3 engine the exporter is: for traps the sender is the authoritative engine (RFC 3414),
// so receivers configure its users under its engine ID and track its boots and time. The engine
// ID is stable (generated once, or set in the configuration) and kept with the boot counter in
// <state>/export/<name>/snmp-engine.json (0600); every start increments the boot counter, so a
// receiver that cached the previous run's time does not reject the new run's traps as replays.
//
// Thread-safety: EngineState is a value type; load_and_boot() writes the file (one caller at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/result.h"

namespace hsmaudit::exporters::snmp {

struct EngineState {
    std::vector<std::uint8_t> engine_id;
    std::uint32_t boots = 0;  // this run's snmpEngineBoots (1 on the first start)
    bool unsaved = false;     // the file could not be written (a full disk): this count is not stored

    [[nodiscard]] std::string engine_id_hex() const;  // "80007ed905..." as snmptrapd's createUser -e wants it (with 0x)
};

/// Parses an engine ID in hex ("0x80007ed9...", 5..32 octets, RFC 3411 SnmpEngineID).
Result<std::vector<std::uint8_t>> parse_engine_id(std::string_view hex);

/// A new engine ID in the RFC 3411 format for "administratively assigned octets": 0x80 | the
/// enterprise number (32473 by default), format 5, then 8 random octets.
std::vector<std::uint8_t> generate_engine_id(std::uint32_t enterprise);

/// Loads <dir>/snmp-engine.json (creating it with a generated engine ID, or `configured` if not
/// empty), increments the boot counter and writes it back atomically before returning. A configured
/// ID that differs from the stored one replaces it and restarts boots at 1. A damaged file is an
/// error (a new engine ID would silently break every receiver's user configuration). A failed
/// write is not: it is logged, the state comes back with `unsaved` set, the old file stays whole,
/// and the next start tries again (writes go through `fs`).
Result<EngineState> load_and_boot(const std::string& dir, const std::vector<std::uint8_t>& configured,
                                  std::uint32_t enterprise, base::FileSystem& fs = base::posix_file_system());

}  // namespace hsmaudit::exporters::snmp
