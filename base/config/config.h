// The agent's configuration: a YAML file whose keys are declared by the components that read
// them (key, type, default, bounds, description in one KeySpec, next to the code), validated
// once at start. Unknown keys and bad values are errors naming the file, line and column.
// docs/CONFIG.md is generated from the same specs (`hsmauditd --config-reference`) and a test
// checks it is current.
//
// Thread-safety: Config is immutable after load(); read it from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hsmaudit::base {

enum class KeyType : std::uint8_t {
    string,
    path,
    boolean,
    integer,   // with min/max
    bytes,     // "16MiB", "220GB", "4096"
    duration,  // "60s", "500ms", "1h"; stored in milliseconds
    ratio,     // 0.0 .. 1.0
    choice,    // one of `choices` ("a|b|c")
    list,      // a YAML list of plain values, or one comma-separated string; read it with split_list()
};

/// One configuration key, declared by the component that reads it.
///
/// A key may name instances: in "exporters.*.type" the "*" stands for a name the user chooses
/// ("exporters.siem.type"); Config::instances("exporters") lists the names used, and every
/// instance gets the defaults of the keys it does not set.
struct KeySpec {
    std::string_view key;  // dotted path: "store.quota", or "exporters.*.type" for named instances
    KeyType type;
    std::string_view default_value;  // as it would be written in the file
    std::string_view description;
    std::int64_t min = 0;  // integer, bytes, duration (ms)
    std::int64_t max = INT64_MAX;
    std::string_view choices = {};  // choice: "a|b|c"
};

/// Parsed, validated values; every declared key has one (its default if not in the file).
class Config {
public:
    /// Loads and validates `path` against `specs`. Error messages name file:line:column. Refused
    /// without blocking: a path that is not a regular file (a FIFO, a device such as /dev/zero, a
    /// directory) and a file larger than kMaxFileBytes.
    static Result<Config> load(const std::string& path, std::span<const KeySpec> specs);
    /// Validates YAML text (for tests and --check-config); `name` is used in messages. Refused: an
    /// empty document (no keys, or only comments), a key given twice at any level (both lines
    /// named), an unknown key or section (with the nearest declared key suggested).
    static Result<Config> parse(std::string_view yaml, const std::string& name, std::span<const KeySpec> specs);
    /// The largest configuration file load() reads.
    static constexpr std::size_t kMaxFileBytes = std::size_t{1} << 20;
    /// Only defaults.
    static Config defaults(std::span<const KeySpec> specs);

    [[nodiscard]] const std::string& str(std::string_view key) const;
    /// True if `key` has a value (every declared plain key does; an instance key only when its
    /// instance is named in the file).
    [[nodiscard]] bool has(std::string_view key) const;
    /// The instance names used under `group` ("exporters" -> {"kafka1", "siem"}), sorted.
    [[nodiscard]] std::vector<std::string> instances(std::string_view group) const;
    [[nodiscard]] bool boolean(std::string_view key) const;
    [[nodiscard]] std::int64_t integer(std::string_view key) const;  // integer, bytes, duration (ms)
    [[nodiscard]] double ratio(std::string_view key) const;
    /// Where the value came from: "file:line" or "default".
    [[nodiscard]] std::string origin(std::string_view key) const;
    /// Where to look for `key` in the file, for error messages: "file:line" of the key, else of the
    /// nearest enclosing section the file has ("exporters.siem" for a defaulted
    /// "exporters.siem.relp.ca"), else "file".
    [[nodiscard]] std::string locate(std::string_view key) const;
    /// Every key that has a value (declared plain keys, and the keys of the named instances), sorted.
    [[nodiscard]] std::vector<std::string> keys() const;
    [[nodiscard]] const std::string& source_name() const { return name_; }

    /// Takes the value of `key` (text, number and origin) from `other`: a reload keeps the running
    /// value of a key that needs a restart.
    void keep(std::string_view key, const Config& other);
    /// Every key with a value under `prefix` ("exporters.siem.") and its text: a reload compares
    /// what a destination is built from.
    [[nodiscard]] std::map<std::string, std::string> values_under(std::string_view prefix) const;

private:
    struct Value {
        std::string text;
        std::int64_t number = 0;
        double real = 0;
        int line = 0;  // 0 = default
    };
    const Value& at(std::string_view key) const;
    std::string name_;
    std::map<std::string, Value, std::less<>> values_;
    std::map<std::string, std::set<std::string>, std::less<>> instances_;
    std::map<std::string, int, std::less<>> sections_;  // "exporters.siem" -> its line in the file
};

/// The items of a comma-separated list value ("audit, alerts,,checkpoints"), each trimmed of
/// spaces and tabs, empty items dropped. A KeyType::list key's value is kept in this form (its
/// items joined with ","), whether the file wrote a YAML list or a string.
std::vector<std::string> split_list(std::string_view text);

/// True if `name` may name an instance: [a-z0-9][a-z0-9_-]{0,63}.
bool valid_instance_name(std::string_view name);

/// Parses "16MiB", "220GB", "4096" (bytes). Units: B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB.
Result<std::int64_t> parse_bytes(std::string_view text);
/// Parses "500ms", "60s", "5m", "1h", "1d" into milliseconds.
Result<std::int64_t> parse_duration_ms(std::string_view text);

/// The declared key nearest to `key` (an unknown key found in a file), for "did you mean ...?":
/// the spelling nearest by Damerau-Levenshtein distance among the declared keys with as many
/// segments (a "*" segment matches the instance name `key` uses), or else the one declared key
/// with the same last segment. "" if none is near enough. With `sections`, candidates are the
/// declared sections ("store", "exporters.siem.relp") instead of keys.
std::string nearest_key(std::span<const KeySpec> specs, std::string_view key, bool sections = false);

/// docs/CONFIG.md's content for `specs`.
std::string config_reference_markdown(std::span<const KeySpec> specs);

}  // namespace hsmaudit::base
