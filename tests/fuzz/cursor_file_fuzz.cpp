// libFuzzer target for a destination's cursor file (<state>/export/<name>/cursor, JSON), read by
// ExportRunner::open() when the destination starts. The file is on disk, so damage controls its
// bytes: the destination must start with the positions read, or refuse with an error naming the
// file, never throw. The runner gets a no-op exporter and an empty store.
// Properties checked besides "no crash": an accepted file's positions are the runner's cursor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/api/alerts.h"
#include "agent/api/exporter.h"
#include "agent/engine/export/runner.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace {

using namespace hsmaudit;
using namespace hsmaudit::agent;

class NullExporter final : public Exporter {
public:
    Status connect() override { return {}; }
    Status send(std::span<const Event> /*events*/) override { return {}; }
    Result<std::uint64_t> acknowledged(std::chrono::milliseconds /*wait*/) override { return std::uint64_t{0}; }
    void disconnect() override {}
    [[nodiscard]] TransportStats stats() const override { return {}; }
};

class EmptySource final : public EventSource {
public:
    Result<std::size_t> read(Stream, std::uint64_t, std::size_t, std::vector<Event>&) override {
        return std::size_t{0};
    }
    Result<std::uint64_t> newest(Stream) override { return std::uint64_t{0}; }
    Result<std::uint64_t> before_oldest(Stream) override { return std::uint64_t{0}; }
};

class NullAlerts final : public AlertSink {
public:
    void alert(Alert&& /*a*/) override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto path = fuzz::temp_dir() / "cursor";
    fuzz::write_file(path, text);
    RunnerOptions o;
    o.name = "fuzz";
    o.cursor_path = path.string();
    NullAlerts alerts;
    auto r = ExportRunner::open(o, std::make_unique<NullExporter>(), std::make_unique<EmptySource>(), alerts,
                                [] { return std::int64_t{1'795'500'000'000}; });
    if (!r) {
        if (r.error().message.find(path.string()) == std::string::npos) std::abort();
        return 0;
    }
    const auto j = nlohmann::json::parse(text, nullptr, false);
    for (Stream s : kAllStreams) {
        const auto key = std::string(to_string(s));
        if (j.is_object() && j.contains(key) && (*r)->delivered_through(s) != j[key].get<std::uint64_t>()) std::abort();
    }
    return 0;
}
