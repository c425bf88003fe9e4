// `hsmaudit tap`'s library (agent/tools/tap.h) over a real store: the destination's streams, its
// runner's filter and its kind's renderer; --last N counted in messages the filter passes; poll()
// following what is stored next; the errors naming the configured destinations; terminal_line().
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "agent/engine/config_keys.h"
#include "agent/engine/store/state_layout.h"
#include "agent/tools/tap.h"
#include "tools_test_fixture.h"

namespace hsmaudit::agent::tools {
namespace {

using testing::StoreFixture;

std::span<const base::KeySpec> fake_keys() {
    static constexpr base::KeySpec kKeys[] = {{"exporters.*.fake.target", base::KeyType::string, "", "where"}};
    return kKeys;
}

/// Renders what the test can check: the stream, the position and, for a record, its sequence.
Result<EventRenderer> fake_renderer(const base::Config& config, std::string_view name) {
    const std::string tag = config.str("exporters." + std::string(name) + ".fake.target");
    return EventRenderer([tag](const Event& e, std::string& out) {
        out += tag + " " + std::string(to_string(e.stream)) + " " + std::to_string(e.position);
        if (e.stream == Stream::alerts) out += " " + e.alert.kind;
        if (e.stream == Stream::audit) out += " " + e.serial + " " + e.host;
    });
}

const ExporterFactory kFactories[] = {
    {"fake", fake_keys, nullptr, nullptr, nullptr, fake_renderer},
    {"mute", fake_keys, nullptr, nullptr, nullptr, nullptr},
};

class TapLib : public ::testing::Test {
protected:
    TapLib() : store_(true) {}

    Result<std::unique_ptr<DestinationTap>> open(const std::string& destination_yaml, const std::string& name = "siem",
                                                 std::array<bool, 4> only = {true, true, true, true}) {
        auto c = base::Config::parse("exporters:\n" + destination_yaml, "agent.yaml", all_config_keys(fake_keys()));
        if (!c) return std::move(c).error();
        config_.emplace(std::move(*c));
        return DestinationTap::open(*config_, name, kFactories,
                                    TapSource{store_.state_dir(), &store_.key(), "150123", "hsm-x.example", only});
    }
    void alert(const std::string& kind, const std::string& severity) {
        std::filesystem::create_directories(std::filesystem::path(alerts_file_of(store_.state_dir())).parent_path());
        std::ofstream(alerts_file_of(store_.state_dir()), std::ios::app)
            << R"({"kind":")" << kind << R"(","severity":")" << severity
            << R"(","message":"m","time":"2026-11-24T06:00:00.000Z"})"
            << "\n";
    }
    static std::vector<std::string> all(DestinationTap& tap) {
        std::vector<std::string> out;
        for (;;) {
            auto got = tap.poll();
            EXPECT_TRUE(got.has_value());
            if (!got) return out;
            for (auto& m : *got) out.push_back(std::move(m.bytes));
            if (tap.caught_up()) return out;
        }
    }

    StoreFixture store_;
    std::optional<base::Config> config_;
};

TEST_F(TapLib, ShowsTheDestinationsStreamsFilteredAndRenderedByItsKind) {
    store_.produce(20);
    alert("ring.fill_warning", "warning");
    alert("exporter.up", "info");
    alert("store.damaged", "critical");
    // min_severity warning: the info alert is skipped, as the runner skips it; records are info.
    auto tap = open(
        "  siem:\n    type: fake\n    streams: [alerts]\n    min_severity: warning\n"
        "    fake:\n      target: T\n");
    ASSERT_TRUE(tap.has_value()) << tap.error().describe();
    ASSERT_TRUE((*tap)->seek_oldest().has_value());
    EXPECT_EQ(all(**tap), (std::vector<std::string>{"T alerts 1 ring.fill_warning", "T alerts 3 store.damaged"}));

    auto audit = open("  siem:\n    type: fake\n    streams: audit, alerts\n    fake:\n      target: A\n", "siem",
                      {true, false, false, false});  // --stream audit
    ASSERT_TRUE(audit.has_value()) << audit.error().describe();
    ASSERT_TRUE((*audit)->seek_oldest().has_value());
    const auto shown = all(**audit);
    ASSERT_EQ(shown.size(), 20u);
    EXPECT_EQ(shown.front(), "A audit 1 150123 hsm-x.example");
    EXPECT_EQ(shown.back(), "A audit 20 150123 hsm-x.example");
}

TEST_F(TapLib, LastCountsMessagesTheFilterPassesAndPollFollows) {
    store_.produce(30);
    for (int i = 0; i < 40; ++i) alert("exporter.up", "info");
    alert("ring.fill_warning", "warning");
    for (int i = 0; i < 40; ++i) alert("exporter.up", "info");
    alert("store.damaged", "critical");
    auto tap = open(
        "  siem:\n    type: fake\n    streams: [alerts]\n    min_severity: warning\n"
        "    fake:\n      target: T\n");
    ASSERT_TRUE(tap.has_value()) << tap.error().describe();
    ASSERT_TRUE((*tap)->seek_last(2).has_value());
    // Both wanted alerts although 40 skipped ones lie between them.
    EXPECT_EQ(all(**tap), (std::vector<std::string>{"T alerts 41 ring.fill_warning", "T alerts 82 store.damaged"}));
    // Then what is stored next, once.
    alert("exporter.down", "warning");
    alert("exporter.up", "info");
    EXPECT_EQ(all(**tap), (std::vector<std::string>{"T alerts 83 exporter.down"}));
    EXPECT_TRUE(all(**tap).empty());

    auto audit = open("  siem:\n    type: fake\n    streams: audit\n    fake:\n      target: T\n");
    ASSERT_TRUE(audit.has_value());
    ASSERT_TRUE((*audit)->seek_last(3).has_value());
    EXPECT_EQ(all(**audit).size(), 3u);
    store_.produce(5);
    const auto next = all(**audit);
    ASSERT_EQ(next.size(), 5u);
    EXPECT_EQ(next.front(), "T audit 31 150123 hsm-x.example");
    ASSERT_TRUE((*audit)->seek_newest().has_value());
    EXPECT_TRUE(all(**audit).empty());
}

TEST_F(TapLib, DamageHoldsTheStreamAsTheRunnerDoesNamedOnceAndNothingIsWritten) {
    store_.produce(3);
    store_.produce(3);
    const std::string path = store_.current_path();
    std::string data = StoreFixture::slurp(path);
    data[data.size() - 5] ^= 0x01;  // the last chunk's tag: records 4-6 fail authentication
    StoreFixture::spit(path, data);
    alert("exporter.up", "info");
    auto tap = open("  siem:\n    type: fake\n    streams: [audit, alerts]\n    fake:\n      target: T\n");
    ASSERT_TRUE(tap.has_value()) << tap.error().describe();
    ASSERT_TRUE((*tap)->seek_oldest().has_value());
    const auto shown = all(**tap);
    // What the reader can prove is shown, the other stream goes on, and the open segment's damaged
    // end holds (no later segment shows where good data resumes).
    std::vector<std::string> audit;
    std::vector<std::string> alerts;
    for (const auto& m : shown) (m.starts_with("T audit ") ? audit : alerts).push_back(m);
    EXPECT_EQ(audit, (std::vector<std::string>{"T audit 1 150123 hsm-x.example", "T audit 2 150123 hsm-x.example",
                                               "T audit 3 150123 hsm-x.example"}));
    EXPECT_EQ(alerts, std::vector<std::string>{"T alerts 1 exporter.up"});
    EXPECT_TRUE((*tap)->incomplete());
    const auto warnings = (*tap)->take_warnings();
    ASSERT_EQ(warnings.size(), 2u) << ::testing::PrintToString(warnings);
    EXPECT_EQ(warnings[0].rfind("store.damaged: ", 0), 0u) << warnings[0];
    EXPECT_EQ(warnings[1].rfind("audit stream held: ", 0), 0u) << warnings[1];
    // Polled again (tap -f), the same hold is not repeated.
    EXPECT_TRUE(all(**tap).empty());
    EXPECT_TRUE((*tap)->take_warnings().empty());
    // The tap wrote nothing: no export/ directory, no alert line.
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(store_.state_dir()) / "export"));
    EXPECT_EQ(StoreFixture::slurp(alerts_file_of(store_.state_dir())).find("store.damaged"), std::string::npos);
}

TEST_F(TapLib, ErrorsNameTheConfiguredDestinationsAndWhatIsMissing) {
    const std::string two = "  siem:\n    type: fake\n  traps:\n    type: mute\n";
    auto unknown = open(two, "qradar");
    ASSERT_FALSE(unknown.has_value());
    EXPECT_EQ(unknown.error().message, "no destination 'qradar' in agent.yaml (configured: siem, traps)");
    auto mute = open(two, "traps");
    ASSERT_FALSE(mute.has_value());
    EXPECT_NE(mute.error().message.find("is a 'mute' destination: it sends no rendered message"), std::string::npos);
    auto none = open("  siem:\n    type: fake\n    streams: [syslog]\n", "siem", {true, false, true, true});
    ASSERT_FALSE(none.has_value());
    EXPECT_NE(none.error().message.find("receives none of the streams asked for (it receives: syslog)"),
              std::string::npos);
    auto bad = open("  siem:\n    type: fake\n    streams: [audit, telepathy]\n");
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("unknown stream 'telepathy'"), std::string::npos) << bad.error().message;
}

TEST(TapTerminalLine, ControlBytesC1AndBadUtf8AreEscapedEverythingElseKept) {
    EXPECT_EQ(terminal_line("CEF:0|a\\|b|c=d\\=e Z\xC3\xBCrich \xE2\x9C\x93"),
              "CEF:0|a\\|b|c=d\\=e Z\xC3\xBCrich \xE2\x9C\x93");  // unchanged: backslashes too
    EXPECT_EQ(terminal_line("a\tb\nc\rd\x1B[31me\x7F"), "a\\x09b\\x0ac\\x0dd\\x1b[31me\\x7f");
    EXPECT_EQ(terminal_line("csi\xC2\x9B"
                            "2J nel\xC2\x85 nbsp\xC2\xA0"),
              "csi\\xc2\\x9b2J nel\\xc2\\x85 nbsp\xC2\xA0");
    EXPECT_EQ(terminal_line("bad\xFF\xC3(\xE2\x82 over\xC0\xAF sur\xED\xA0\x80"),
              "bad\\xff\\xc3(\\xe2\\x82 over\\xc0\\xaf sur\\xed\\xa0\\x80");
    EXPECT_EQ(terminal_line(std::string("nul\0end", 7)), "nul\\x00end");
}

}  // namespace
}  // namespace hsmaudit::agent::tools
