#include "agent/tools/tap.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>

#include "agent/api/errc.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/export/manager.h"
#include "agent/engine/export/runner.h"
#include "agent/engine/export/store_source.h"
#include "agent/engine/store/state_layout.h"
#include "agent/tools/status.h"
#include "agent/tools/tail.h"
#include "agent/tools/tool_paths.h"
#include "mac/keys.h"

namespace hsmaudit::agent::tools {
namespace {

std::size_t idx(Stream s) {
    return static_cast<std::size_t>(s);
}

/// The damage the store reader meets, as warnings instead of alerts (the tap writes nothing).
class WarningSink final : public AlertSink {
public:
    void alert(Alert&& a) override { warnings.push_back(a.kind + ": " + a.message); }
    std::vector<std::string> warnings;
};

}  // namespace

struct DestinationTap::Impl {
    RunnerOptions runner;
    EventRenderer render;
    WarningSink sink;
    std::shared_ptr<StoreDamageLedger> ledger;
    std::unique_ptr<EventSource> source;
    std::array<std::uint64_t, 4> after{};  // shown through, per stream
    std::size_t next_stream = 0;
    std::vector<std::string> held;           // stream hold messages since the last take_warnings()
    std::array<std::string, 4> last_hold{};  // per stream: the hold last reported (each once, not every poll)
};

DestinationTap::DestinationTap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DestinationTap::~DestinationTap() = default;

Result<std::unique_ptr<DestinationTap>> DestinationTap::open(const base::Config& config, const std::string& name,
                                                             std::span<const ExporterFactory> factories,
                                                             const TapSource& source) {
    const auto names = config.instances("exporters");
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        return make_error(errc::invalid_argument, "no destination '" + name + "' in " + config.source_name() +
                                                      " (configured: " + (known.empty() ? "none" : known) + ")");
    }
    // The checks the agent makes at start (a known kind, streams and filters, endpoints).
    HSMAUDIT_TRY(validate_exporters(config, factories));
    const std::string& type = config.str("exporters." + name + ".type");
    const auto f =
        std::find_if(factories.begin(), factories.end(), [&](const ExporterFactory& k) { return k.type == type; });
    if (f == factories.end())
        return make_error(errc::invalid_argument, "exporters." + name + ": unknown kind '" + type + "'");
    if (f->renderer == nullptr)
        return make_error(errc::invalid_argument, "exporters." + name + " is a '" + type +
                                                      "' destination: it sends no rendered message to show");
    auto settings = read_destination_settings(config, name);
    if (!settings) return std::move(settings).error();
    auto render = f->renderer(config, name);
    if (!render) return make_error(errc::config_error, "exporters." + name + ": " + render.error().describe());

    auto impl = std::make_unique<Impl>();
    impl->runner = std::move(settings->runner);
    impl->render = std::move(*render);
    impl->ledger = std::make_shared<StoreDamageLedger>(impl->sink, [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    });
    impl->source = make_store_event_source(StoreSourceOptions{source.state_dir, source.key, source.serial, source.host,
                                                              settings->chain_lines, impl->ledger});
    std::array<bool, 4> streams{};
    for (Stream s : kAllStreams) streams[idx(s)] = impl->runner.streams[idx(s)] && source.only[idx(s)];
    if (std::none_of(streams.begin(), streams.end(), [](bool b) { return b; })) {
        std::string has;
        for (Stream s : kAllStreams)
            if (impl->runner.streams[idx(s)]) has += (has.empty() ? "" : ", ") + std::string(to_string(s));
        return make_error(errc::invalid_argument,
                          "exporters." + name + " receives none of the streams asked for (it receives: " + has + ")");
    }
    std::unique_ptr<DestinationTap> tap(new DestinationTap(std::move(impl)));
    tap->streams_ = streams;
    return tap;
}

Status DestinationTap::seek_oldest() {
    for (Stream s : kAllStreams) {
        if (!streams_[idx(s)]) continue;
        auto before = impl_->source->before_oldest(s);
        if (!before) return std::move(before).error();
        impl_->after[idx(s)] = *before;
    }
    return {};
}

Status DestinationTap::seek_newest() {
    for (Stream s : kAllStreams) {
        if (!streams_[idx(s)]) continue;
        auto newest = impl_->source->newest(s);
        if (!newest) return std::move(newest).error();
        impl_->after[idx(s)] = *newest;
    }
    return {};
}

Status DestinationTap::seek_last(std::size_t n) {
    Impl& m = *impl_;
    for (Stream s : kAllStreams) {
        if (!streams_[idx(s)]) continue;
        auto newest = m.source->newest(s);
        if (!newest) return std::move(newest).error();
        auto oldest = m.source->before_oldest(s);
        if (!oldest) return std::move(oldest).error();
        m.after[idx(s)] = *newest;
        if (n == 0 || *newest <= *oldest) continue;
        // Read back a window that grows until it holds n events the filter passes (or reaches
        // the oldest): memory stays bounded by n positions, whatever the filter skips.
        std::uint64_t window = n;
        for (;;) {
            const std::uint64_t from = *newest - *oldest > window ? *newest - window : *oldest;
            std::deque<std::uint64_t> wanted;  // positions of the last n wanted events in (from, newest]
            std::uint64_t at = from;
            std::vector<Event> batch;
            bool held = false;
            while (at < *newest) {
                batch.clear();
                auto got = m.source->read(s, at, m.runner.batch, batch);
                if (!got) {
                    // Damage the reader holds at: poll() starts there and reports the hold.
                    held = true;
                    break;
                }
                if (*got == 0) break;
                for (const auto& e : batch) {
                    if (event_wanted(m.runner, e)) {
                        wanted.push_back(e.position);
                        if (wanted.size() > n) wanted.pop_front();
                    }
                    at = e.position;
                }
            }
            if (held) {
                m.after[idx(s)] = from;
                break;
            }
            if (wanted.size() >= n || from == *oldest) {
                if (!wanted.empty()) m.after[idx(s)] = wanted.front() > 0 ? wanted.front() - 1 : 0;
                break;
            }
            window = window > UINT64_MAX / 4 ? UINT64_MAX : window * 4;
        }
    }
    return {};
}

Result<std::vector<TapMessage>> DestinationTap::poll() {
    Impl& m = *impl_;
    std::vector<TapMessage> out;
    std::vector<Event> batch;
    caught_up_ = true;
    for (std::size_t tried = 0; tried < std::size(kAllStreams); ++tried) {
        const Stream s = kAllStreams[m.next_stream];
        m.next_stream = (m.next_stream + 1) % std::size(kAllStreams);
        if (!streams_[idx(s)]) continue;
        batch.clear();
        auto got = m.source->read(s, m.after[idx(s)], m.runner.batch, batch);
        if (!got) {
            // Held at damage, as the runner holds the stream: the other streams go on.
            incomplete_ = true;
            std::string hold = std::string(to_string(s)) + " stream held: " + got.error().describe();
            if (hold != m.last_hold[idx(s)]) m.held.push_back(hold);
            m.last_hold[idx(s)] = std::move(hold);
            continue;
        }
        m.last_hold[idx(s)].clear();
        if (*got > 0) caught_up_ = false;
        for (const auto& e : batch) {
            m.after[idx(s)] = e.position;
            if (!event_wanted(m.runner, e)) continue;
            TapMessage msg;
            msg.stream = s;
            msg.position = e.position;
            m.render(e, msg.bytes);
            out.push_back(std::move(msg));
        }
    }
    return out;
}

std::vector<std::string> DestinationTap::take_warnings() {
    std::vector<std::string> out = std::move(impl_->sink.warnings);
    impl_->sink.warnings.clear();
    for (auto& h : impl_->held) out.push_back(std::move(h));
    impl_->held.clear();
    return out;
}

std::string terminal_line(std::string_view in) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(in.size());
    auto escape = [&](unsigned char c) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    };
    std::size_t i = 0;
    while (i < in.size()) {
        const auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x20 || c == 0x7F) {
            escape(c);
            ++i;
            continue;
        }
        if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        // A valid UTF-8 sequence (RFC 3629) is kept, except the C1 controls U+0080..U+009F.
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07u;
        }
        bool ok = n != 0 && i + n <= in.size();
        for (std::size_t k = 1; ok && k < n; ++k) {
            const auto cc = static_cast<unsigned char>(in[i + k]);
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (ok) {
            static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= kMin[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (!ok || cp <= 0x9F) {
            const std::size_t len = ok ? n : 1;
            for (std::size_t k = 0; k < len; ++k) escape(static_cast<unsigned char>(in[i + k]));
            i += len;
            continue;
        }
        out.append(in.substr(i, n));
        i += n;
    }
    return out;
}

namespace {

int fail(const std::string& message) {
    std::cerr << "hsmaudit: tap: " << message << "\n";
    return kExitUsage;
}

/// The module's serial as the agent names it: from its status file, else from the newest stored
/// audit record (read as `hsmaudit tail` reads it), else "" (ids of the non-audit streams then
/// lack it: said on stderr).
std::string module_serial(const std::string& state_dir, const mac::AuditKey* key) {
    if (auto s = read_status_file(state_dir); s && !s->status.module.serial.empty()) return s->status.module.serial;
    StoreTail tail(audit_dir_of(state_dir), key);
    if (auto last = tail.last(1); last && !last->empty()) return last->back().record.serial;
    return {};
}

}  // namespace

int run_tap(const TapArgs& a) {
    if (a.config.empty())
        return fail("give the agent's configuration with -c CONFIG (the destination's keys are there)");
    auto paths = resolve_tool_paths("", a.config, a.key, a.plugin_keys);
    if (!paths) return fail(paths.error().describe());
    const auto keys = all_config_keys(a.plugin_keys);
    auto config = base::Config::load(a.config, keys);
    if (!config) return fail(config.error().describe());

    TapSource source;
    source.state_dir = paths->state_dir;
    std::optional<mac::AuditKey> key;
    if (!paths->key_path.empty()) {
        auto k = mac::load_audit_key(paths->key_path);
        if (!k) return fail(k.error().describe());
        key.emplace(std::move(*k));
        source.key = &*key;
    }
    source.host = appliance_host_name(*config);
    source.serial = module_serial(paths->state_dir, source.key);
    if (source.serial.empty())
        std::cerr << "hsmaudit: tap: warning: the module's serial is unknown yet (no status.json, no record): "
                     "event ids show without it\n";
    if (!a.streams.empty()) {
        source.only = {};
        for (const auto& name : a.streams) {
            for (const auto& item : base::split_list(name)) {
                Stream s{};
                if (!parse_stream(item, s))
                    return fail("--stream: unknown stream '" + item + "' (use audit, syslog, alerts, checkpoints)");
                source.only[idx(s)] = true;
            }
        }
    }
    auto tap = DestinationTap::open(*config, a.destination, a.factories, source);
    if (!tap) return fail(tap.error().describe());
    if (!config->boolean("exporters." + a.destination + ".enabled"))
        std::cerr << "hsmaudit: tap: warning: exporters." << a.destination
                  << " is disabled (enabled: false): shown as it would be sent if it were enabled\n";

    Status positioned = a.from_start ? (*tap)->seek_oldest() : (*tap)->seek_last(a.last);
    if (!positioned) return fail(positioned.error().describe());

    auto print = [&](const std::vector<TapMessage>& messages) {
        for (const auto& m : messages) {
            if (a.raw)
                std::cout << m.bytes << '\n';
            else
                std::cout << terminal_line(m.bytes) << '\n';
        }
        std::cout.flush();
        for (const auto& w : (*tap)->take_warnings()) std::cerr << "hsmaudit: tap: warning: " << w << "\n";
    };
    // What is stored now, to the end; then (--follow) what follows.
    for (;;) {
        auto more = (*tap)->poll();
        if (!more) return fail(more.error().describe());
        print(*more);
        if (!std::cout) return kExitUsage;  // stdout closed
        if ((*tap)->caught_up()) break;
    }
    if (!a.follow) return (*tap)->incomplete() ? kExitFault : kExitOk;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(a.poll_ms));
        auto more = (*tap)->poll();
        if (!more) return fail(more.error().describe());
        print(*more);
        if (!std::cout) return kExitUsage;
    }
}

}  // namespace hsmaudit::agent::tools
