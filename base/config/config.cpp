#include "base/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>

#include "base/errc.h"
#include "base/unique_fd.h"

namespace hsmaudit::base {
namespace {

std::string type_name(const KeySpec& s) {
    switch (s.type) {
        case KeyType::string: return "string";
        case KeyType::path: return "path";
        case KeyType::boolean: return "boolean";
        case KeyType::integer: return "integer";
        case KeyType::bytes: return "size";
        case KeyType::duration: return "duration";
        case KeyType::ratio: return "ratio";
        case KeyType::choice: return "one of " + std::string(s.choices);
        case KeyType::list: return "list";
    }
    return "?";
}

bool in_choices(std::string_view choices, std::string_view v) {
    while (!choices.empty()) {
        const auto bar = choices.find('|');
        if (choices.substr(0, bar) == v) return true;
        if (bar == std::string_view::npos) break;
        choices.remove_prefix(bar + 1);
    }
    return false;
}

std::string human_number(const KeySpec& s, std::int64_t v) {
    if (s.type == KeyType::duration) return std::to_string(v) + "ms";
    return std::to_string(v);
}

}  // namespace

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        std::string_view item = text.substr(start, comma - start);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
        start = comma + 1;
    }
    return out;
}

bool valid_instance_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok) return false;
    }
    return true;
}

Result<std::int64_t> parse_bytes(std::string_view t) {
    std::size_t i = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == 0) return make_error(errc::config_error, "expected a size like 16MiB or 220GB");
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + i, n);
    if (ec != std::errc{}) return make_error(errc::config_error, "size out of range");
    std::string_view unit = t.substr(i);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    struct U {
        std::string_view name;
        std::int64_t mul;
    };
    static constexpr U kUnits[] = {{"", 1},
                                   {"B", 1},
                                   {"KB", 1000},
                                   {"MB", std::int64_t{1000} * 1000},
                                   {"GB", 1000LL * 1000 * 1000},
                                   {"TB", 1000LL * 1000 * 1000 * 1000},
                                   {"KiB", 1LL << 10},
                                   {"MiB", 1LL << 20},
                                   {"GiB", 1LL << 30},
                                   {"TiB", 1LL << 40}};
    for (const auto& u : kUnits) {
        if (unit != u.name) continue;
        if (n > INT64_MAX / u.mul) return make_error(errc::config_error, "size out of range");
        return n * u.mul;
    }
    return make_error(errc::config_error,
                      "unknown size unit '" + std::string(unit) + "' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
}

Result<std::int64_t> parse_duration_ms(std::string_view t) {
    std::size_t i = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == 0) return make_error(errc::config_error, "expected a duration like 500ms, 60s, 5m, 1h or 1d");
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + i, n);
    if (ec != std::errc{}) return make_error(errc::config_error, "duration out of range");
    const std::string_view unit = t.substr(i);
    std::int64_t mul = 0;
    if (unit == "ms")
        mul = 1;
    else if (unit == "s")
        mul = 1000;
    else if (unit == "m")
        mul = 60'000;
    else if (unit == "h")
        mul = 3'600'000;
    else if (unit == "d")
        mul = 86'400'000;
    else
        return make_error(errc::config_error, "unknown duration unit '" + std::string(unit) + "' (use ms, s, m, h, d)");
    if (n > INT64_MAX / mul) return make_error(errc::config_error, "duration out of range");
    return n * mul;
}

namespace {

/// Checks and converts `text` for `spec` into `v`; returns a message on error.
std::string convert(const KeySpec& spec, const std::string& text, std::int64_t& number, double& real) {
    switch (spec.type) {
        case KeyType::string:
        case KeyType::path:
            if (spec.type == KeyType::path && text.empty()) return "a path must not be empty";
            return {};
        case KeyType::boolean:
            if (text == "true" || text == "false") {
                number = text == "true";
                return {};
            }
            return "expected true or false, got '" + text + "'";
        case KeyType::integer: {
            auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
            if (ec != std::errc{} || p != text.data() + text.size()) return "expected an integer, got '" + text + "'";
            break;
        }
        case KeyType::bytes: {
            auto r = parse_bytes(text);
            if (!r) return r.error().message + ", got '" + text + "'";
            number = *r;
            break;
        }
        case KeyType::duration: {
            auto r = parse_duration_ms(text);
            if (!r) return r.error().message + ", got '" + text + "'";
            number = *r;
            break;
        }
        case KeyType::ratio: {
            char* end = nullptr;
            real = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(real) || real < 0 || real > 1)
                return "expected a ratio between 0 and 1, got '" + text + "'";
            return {};
        }
        case KeyType::choice:
            if (!in_choices(spec.choices, text))
                return "expected one of " + std::string(spec.choices) + ", got '" + text + "'";
            return {};
        case KeyType::list: return {};
    }
    if (number < spec.min || number > spec.max)
        return "must be between " + human_number(spec, spec.min) + " and " + human_number(spec, spec.max) + ", got '" +
               text + "'";
    return {};
}

/// "list", "mapping" or "null": what a YAML node that is not a plain value is, for messages.
const char* node_kind(const YAML::Node& n) {
    if (n.IsSequence()) return "list";
    if (n.IsMap()) return "mapping";
    return "null";
}

/// A KeyType::list value as its text: the items of a YAML list (each a plain value, not empty,
/// without a comma), or of a comma-separated string, joined with ",". Returns a message naming the
/// bad item ("file:line:col: key 'k' item 2 ...") or "".
template <typename Where>
std::string list_text(const YAML::Node& val, const std::string& key, const Where& where, std::string& text) {
    std::vector<std::string> items;
    if (val.IsScalar()) {
        items = split_list(val.Scalar());
    } else {
        std::size_t n = 0;
        for (const auto& item : val) {
            ++n;
            const std::string which = where(item) + ": key '" + key + "' item " + std::to_string(n);
            if (!item.IsScalar()) return which + ": expected a plain value, found a " + node_kind(item);
            const std::string& s = item.Scalar();
            if (s.find(',') != std::string::npos) {
                std::string msg = which;
                msg.append(" ('").append(s).append("') holds a comma: write each value as its own item");
                return msg;
            }
            const auto parts = split_list(s);
            if (parts.empty()) return which + " is empty";
            items.push_back(parts.front());
        }
    }
    text.clear();
    for (const auto& item : items) text += (text.empty() ? "" : ",") + item;
    return {};
}

/// Splits a dotted key into its segments.
std::vector<std::string_view> segments(std::string_view key) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto dot = key.find('.');
        out.push_back(key.substr(0, dot));
        if (dot == std::string_view::npos) return out;
        key.remove_prefix(dot + 1);
    }
}

/// Matches the first `n` segments of `pattern` (a spec key, where "*" stands for an instance
/// name) against `key`'s segments.
bool match_segments(const std::vector<std::string_view>& pattern, const std::vector<std::string_view>& key,
                    std::size_t n) {
    if (pattern.size() < n || key.size() < n) return false;
    for (std::size_t i = 0; i < n; ++i)
        if (pattern[i] != key[i] && !(pattern[i] == "*" && valid_instance_name(key[i]))) return false;
    return true;
}

const KeySpec* find_spec(std::span<const KeySpec> specs, std::string_view key) {
    for (const auto& s : specs)
        if (s.key == key) return &s;
    const auto k = segments(key);
    for (const auto& s : specs) {
        if (s.key.find('*') == std::string_view::npos) continue;
        const auto p = segments(s.key);
        if (p.size() == k.size() && match_segments(p, k, k.size())) return &s;
    }
    return nullptr;
}

bool is_prefix_of_some_key(std::span<const KeySpec> specs, const std::string& prefix) {
    const auto k = segments(prefix);
    for (const auto& s : specs) {
        const auto p = segments(s.key);
        if (p.size() > k.size() && match_segments(p, k, k.size())) return true;
    }
    return false;
}

constexpr std::size_t kMaxSuggestedKey = 160;
constexpr std::size_t kMaxSuggestedEdits = 3;

/// Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap two
/// neighbours), three rolling rows.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> before(b.size() + 1);
    std::vector<std::size_t> previous(b.size() + 1);
    std::vector<std::size_t> current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                current[j] = std::min(current[j], before[j - 2] + 1);
        }
        std::swap(before, previous);
        std::swap(previous, current);
    }
    return previous[b.size()];
}

/// `pattern`'s first `n` segments with each "*" replaced by the segment `key` has there.
std::string instantiate(const std::vector<std::string_view>& pattern, const std::vector<std::string_view>& key,
                        std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) out += '.';
        out += pattern[i] == "*" && i < key.size() ? key[i] : pattern[i];
    }
    return out;
}

/// "the file is a FIFO" and the like, for a path that is not a regular file.
std::string file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

}  // namespace

std::string nearest_key(std::span<const KeySpec> specs, std::string_view key, bool sections) {
    // Declared keys are short; a long unknown key is no typo of one (and the distance is quadratic).
    if (key.size() > kMaxSuggestedKey) return {};
    const auto k = segments(key);
    std::string best;
    std::size_t best_distance = SIZE_MAX;
    std::set<std::string> same_leaf;
    for (const auto& s : specs) {
        const auto p = segments(s.key);
        if (sections ? p.size() <= k.size() : p.size() != k.size()) {
            if (!sections && p.back() == k.back() && p.size() != k.size()) {
                // Another depth: the declared key as written, its instances shown as <name>.
                std::string declared(s.key);
                for (auto at = declared.find(".*."); at != std::string::npos; at = declared.find(".*.", at))
                    declared.replace(at + 1, 1, "<name>");
                same_leaf.insert(std::move(declared));
            }
            continue;
        }
        const std::string candidate = instantiate(p, k, k.size());
        if (!sections && p.back() == k.back()) same_leaf.insert(candidate);
        // The distance is at least the difference in length: skip what cannot be near enough.
        const std::size_t longer = std::max(candidate.size(), key.size());
        if (longer - std::min(candidate.size(), key.size()) > kMaxSuggestedEdits) continue;
        const std::size_t d = edit_distance(candidate, key);
        if (d < best_distance || (d == best_distance && candidate < best)) {
            best_distance = d;
            best = candidate;
        }
    }
    // Near enough: at most 3 edits, and at most a third of the key (so "x" does not suggest "agent").
    if (best_distance > 0 && best_distance <= kMaxSuggestedEdits && best_distance * 3 <= key.size()) return best;
    // A key in the wrong section ("quota" for "store.quota"): the one declared key with that name.
    same_leaf.erase(std::string(key));
    if (same_leaf.size() == 1) return *same_leaf.begin();
    return {};
}

Config Config::defaults(std::span<const KeySpec> specs) {
    Config c;
    c.name_ = "defaults";
    for (const auto& s : specs) {
        if (s.key.find('*') != std::string_view::npos) continue;  // instance keys: when an instance is named
        Value v;
        v.text = std::string(s.default_value);
        (void)convert(s, v.text, v.number, v.real);
        c.values_.emplace(std::string(s.key), std::move(v));
    }
    return c;
}

Result<Config> Config::parse(std::string_view yaml, const std::string& name, std::span<const KeySpec> specs) {
    Config c = defaults(specs);
    c.name_ = name;
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        return make_error(errc::config_error, name + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                  std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    // An empty file (or one of comments only) is refused: it would silently mean "every key at its
    // default" (encryption settings, directories...), and a reload would reset the running keys.
    if (root.IsNull() || (root.IsMap() && root.size() == 0))
        return make_error(errc::config_error, name +
                                                  ": the configuration is empty (no keys, or only comments); "
                                                  "write the keys to set (docs/CONFIG.md), e.g. agent.state_dir");
    if (!root.IsMap()) return make_error(errc::config_error, name + ": the top level must be a mapping of keys");
    std::string error;
    auto where = [&](const YAML::Node& n) {
        return name + ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
    };
    auto suggest = [&](const std::string& key, bool section) {
        const std::string near = nearest_key(specs, key, section);
        return near.empty() ? std::string() : " (did you mean " + near + "?)";
    };
    // Every key and section met, with its line: a second occurrence is refused (YAML parsers keep
    // one of the two silently; a second `store:` section could turn encryption off unnoticed).
    std::map<std::string, int, std::less<>> seen;
    // Walk nested mappings into dotted keys.
    std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& node,
                                                                          const std::string& prefix) {
        for (const auto& kv : node) {
            if (!error.empty()) return;
            const std::string k = kv.first.as<std::string>();
            const std::string key = prefix.empty() ? k : std::string(prefix).append(".").append(k);
            const YAML::Node& val = kv.second;
            const int line = kv.first.Mark().line + 1;
            if (const auto [first, inserted] = seen.emplace(key, line); !inserted) {
                error = where(kv.first)
                            .append(": duplicate key '")
                            .append(key)
                            .append("' (first at ")
                            .append(name)
                            .append(":")
                            .append(std::to_string(first->second))
                            .append(", again at line ")
                            .append(std::to_string(line))
                            .append("): each key may appear once");
                return;
            }
            if (val.IsMap()) {
                if (const KeySpec* spec = find_spec(specs, key);
                    spec != nullptr && !is_prefix_of_some_key(specs, key)) {
                    error = where(val) + ": key '" + key + "' takes a " + type_name(*spec) + ", not a mapping";
                    return;
                }
                if (!is_prefix_of_some_key(specs, key)) {
                    // Name the rule when the section is an instance whose name is not allowed.
                    const auto dot = key.rfind('.');
                    if (dot != std::string::npos && !valid_instance_name(std::string_view(key).substr(dot + 1)) &&
                        is_prefix_of_some_key(specs, key.substr(0, dot) + ".x")) {
                        error = where(kv.first) + ": '" + key.substr(dot + 1) +
                                "' is not a valid name (lower-case letters, digits, '-' and '_'; at most 64)";
                        return;
                    }
                    error = where(kv.first) + ": unknown section '" + key + "'" + suggest(key, true);
                    return;
                }
                c.sections_[key] = line;
                walk(val, key);
                continue;
            }
            const KeySpec* spec = find_spec(specs, key);
            if (spec == nullptr) {
                error = where(kv.first) + ": unknown key '" + key + "'" + suggest(key, false);
                return;
            }
            Value v;
            v.line = val.Mark().line + 1;
            if (spec->type == KeyType::list && (val.IsSequence() || val.IsScalar())) {
                v.line = line;  // a block list starts on the next line: name the key's
                if (std::string msg = list_text(val, key, where, v.text); !msg.empty()) {
                    error = std::move(msg);
                    return;
                }
            } else if (!val.IsScalar()) {
                error = where(val) + ": key '" + key + "' takes a " + type_name(*spec) + ", not a " + node_kind(val) +
                        (val.IsSequence() ? " (write one value)" : "");
                return;
            } else {
                v.text = val.Scalar();
            }
            if (std::string msg = convert(*spec, v.text, v.number, v.real); !msg.empty()) {
                error = where(val).append(": key '").append(key).append("': ").append(msg);
                return;
            }
            c.values_[key] = std::move(v);
            if (spec->key.find('*') != std::string_view::npos) {
                // Remember the instance ("exporters" -> "siem") named by the first "*".
                const auto pattern = segments(spec->key);
                const auto parts = segments(key);
                std::string group;
                for (std::size_t i = 0; i < pattern.size(); ++i) {
                    if (pattern[i] == "*") {
                        c.instances_[group].insert(std::string(parts[i]));
                        break;
                    }
                    group += (group.empty() ? "" : ".") + std::string(parts[i]);
                }
            }
        }
    };
    try {
        walk(root, "");
    } catch (const YAML::Exception& e) {
        return make_error(errc::config_error, name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (!error.empty()) return make_error(errc::config_error, error);
    // Every named instance gets the defaults of the keys it did not set.
    for (const auto& s : specs) {
        const auto star = s.key.find(".*.");
        if (star == std::string_view::npos) continue;
        const auto group = c.instances_.find(s.key.substr(0, star));
        if (group == c.instances_.end()) continue;
        for (const auto& inst : group->second) {
            std::string key = std::string(s.key.substr(0, star)) + "." + inst + std::string(s.key.substr(star + 2));
            if (c.values_.contains(key)) continue;
            Value v;
            v.text = std::string(s.default_value);
            (void)convert(s, v.text, v.number, v.real);
            c.values_.emplace(std::move(key), std::move(v));
        }
    }
    return c;
}

Result<Config> Config::load(const std::string& path, std::span<const KeySpec> specs) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (the main thread reloads at SIGHUP);
    // fstat then refuses anything that is not a regular file before a byte is read.
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid())
        return make_error(errc::config_error,
                          "cannot read the configuration file " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return make_error(errc::config_error,
                          "cannot read the configuration file " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return make_error(errc::config_error,
                          path + ": the configuration is " + file_kind(st.st_mode) + ", not a regular file: refused");
    const auto too_large = [&] {
        return make_error(errc::config_error, path + ": the configuration is larger than " +
                                                  std::to_string(kMaxFileBytes >> 20) + " MiB: refused");
    };
    if (static_cast<std::uint64_t>(st.st_size) > kMaxFileBytes) return too_large();
    // Read at most one byte more than the bound (the file may grow between fstat and read).
    std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd.get(), text.data() + got, std::min(text.size() - got, kMaxFileBytes + 1 - got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return make_error(errc::config_error,
                              "cannot read the configuration file " + path + ": " + std::strerror(errno));
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
        if (got > kMaxFileBytes) return too_large();
        if (got == text.size()) text.resize(std::min(text.size() * 2, kMaxFileBytes + 1));
    }
    text.resize(got);
    return parse(text, path, specs);
}

const Config::Value& Config::at(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) {
        // A key read but never declared is a programming error; fail loudly in tests.
        static const Value kMissing{};
        return kMissing;
    }
    return it->second;
}

const std::string& Config::str(std::string_view key) const {
    return at(key).text;
}
bool Config::boolean(std::string_view key) const {
    return at(key).number != 0;
}
std::int64_t Config::integer(std::string_view key) const {
    return at(key).number;
}
double Config::ratio(std::string_view key) const {
    return at(key).real;
}
bool Config::has(std::string_view key) const {
    return values_.find(key) != values_.end();
}
std::vector<std::string> Config::instances(std::string_view group) const {
    auto it = instances_.find(group);
    if (it == instances_.end()) return {};
    return {it->second.begin(), it->second.end()};
}
std::string Config::origin(std::string_view key) const {
    const Value& v = at(key);
    return v.line == 0 ? "default" : name_ + ":" + std::to_string(v.line);
}
std::string Config::locate(std::string_view key) const {
    if (auto it = values_.find(key); it != values_.end() && it->second.line > 0)
        return name_ + ":" + std::to_string(it->second.line);
    std::string_view section = key;
    for (auto dot = section.rfind('.'); dot != std::string_view::npos; dot = section.rfind('.')) {
        section = section.substr(0, dot);
        if (auto it = sections_.find(section); it != sections_.end()) return name_ + ":" + std::to_string(it->second);
    }
    return name_;
}
std::vector<std::string> Config::keys() const {
    std::vector<std::string> out;
    out.reserve(values_.size());
    for (const auto& [k, v] : values_) out.push_back(k);
    return out;
}
void Config::keep(std::string_view key, const Config& other) {
    auto it = values_.find(key);
    if (it != values_.end()) it->second = other.at(key);
}

std::map<std::string, std::string> Config::values_under(std::string_view prefix) const {
    std::map<std::string, std::string> out;
    for (auto it = values_.lower_bound(prefix); it != values_.end() && it->first.starts_with(prefix); ++it)
        out.emplace(it->first, it->second.text);
    return out;
}

std::string config_reference_markdown(std::span<const KeySpec> specs) {
    std::string out =
        "# Configuration reference\n\n"
        "`hsmauditd -c FILE` reads a YAML file. Keys are nested mappings (`store:` then `quota: 220GB`)\n"
        "written here in dotted form. Every key is optional; unknown keys (the nearest key is suggested),\n"
        "keys given twice and bad values are errors naming the file, line and column, and so are an empty\n"
        "file, a path that is not a regular file and a file over 1 MiB. `hsmauditd -c FILE --check-config`\n"
        "checks a file as the start does (every destination's files, TLS material and ports, the metrics\n"
        "web config, the syslog listeners), without touching the module, and exits 0 (valid) or 2.\n\n"
        "This file is generated by `hsmauditd --config-reference` from the declarations next to the\n"
        "code that reads each key; a unit test fails when it is out of date.\n\n"
        "Sizes: `4096`, `16MiB`, `220GB` (KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024).\n"
        "Durations: `500ms`, `60s`, `5m`, `1h`, `1d`. Ratios: `0` to `1`.\n\n"
        "| key | type | default | description |\n|---|---|---|---|\n";
    for (const auto& s : specs) {
        std::string type = type_name(s);
        for (std::size_t at = type.find('|'); at != std::string::npos; at = type.find('|', at))
            type.replace(at, 1, ", ");
        if (s.type == KeyType::integer && (s.min != 0 || s.max != INT64_MAX))
            type += " (" + std::to_string(s.min) + "-" + std::to_string(s.max) + ")";
        out += "| `" + std::string(s.key) + "` | " + type + " | `" + std::string(s.default_value) + "` | " +
               std::string(s.description) + " |\n";
    }
    return out;
}

}  // namespace hsmaudit::base
