#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agent/daemon/exporter_registry.h"
#include "agent/engine/config_keys.h"
#include "agent/engine/pipeline/drain.h"
#include "base/config/config.h"

namespace hsmaudit::agent {
namespace {

Result<base::Config> parse(std::string_view yaml) {
    const auto keys = all_config_keys(exporters::component_config_keys());
    return base::Config::parse(yaml, "test.yaml", keys);
}

TEST(Config, DefaultsApplyAndNestedKeysParse) {
    auto c = parse("agent:\n  state_dir: /tmp/x\nrotation:\n  period: daily\n  max_segment_bytes: 1MiB\n");
    ASSERT_TRUE(c.has_value()) << c.error().message;
    EXPECT_EQ(c->str("agent.state_dir"), "/tmp/x");
    EXPECT_EQ(c->str("rotation.period"), "daily");
    EXPECT_EQ(c->integer("rotation.max_segment_bytes"), 1 << 20);
    EXPECT_EQ(c->integer("drain.poll_wait"), 20);
    EXPECT_TRUE(c->boolean("store.encrypt"));
    EXPECT_EQ(c->origin("rotation.period"), "test.yaml:4");
    EXPECT_EQ(c->origin("store.encrypt"), "default");
    const DrainOptions o = make_drain_options(*c);
    EXPECT_EQ(o.rotation, RotationPeriod::daily);
    EXPECT_EQ(o.segment_max_bytes, 1u << 20);
}

TEST(Config, UnknownKeysAndSectionsAreErrorsWithFileLineAndColumn) {
    auto c = parse("agent:\n  state_dir: /tmp/x\n  stat_dir: /tmp/y\n");
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().message, "test.yaml:3:3: unknown key 'agent.stat_dir' (did you mean agent.state_dir?)");
    auto s = parse("agnet:\n  state_dir: /tmp/x\n");
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().message, "test.yaml:1:1: unknown section 'agnet' (did you mean agent?)");
}

TEST(Config, BadValuesNameTheKeyAndWhatIsExpected) {
    struct Case {
        const char* yaml;
        const char* expect;
    };
    const Case cases[] = {
        {"store:\n  encrypt: yes please\n", "test.yaml:2:12: key 'store.encrypt': expected true or false"},
        {"rotation:\n  period: fortnightly\n",
         "key 'rotation.period': expected one of never|hourly|daily|weekly|monthly"},
        {"rotation:\n  max_segment_bytes: 12 parsecs\n", "unknown size unit 'parsecs'"},
        {"rotation:\n  max_segment_bytes: 100\n", "must be between 4096 and"},
        {"drain:\n  poll_wait: 5 minutes\n", "unknown duration unit"},
        {"alerts:\n  ring_fill_warning: 1.5\n", "expected a ratio between 0 and 1"},
        {"drain:\n  batch_max_entries: [1, 2]\n", "takes a integer, not a list"},
        {"agent: [\n", "test.yaml:"},
        {"- a\n- b\n", "the top level must be a mapping"},
    };
    for (const auto& k : cases) {
        auto c = parse(k.yaml);
        ASSERT_FALSE(c.has_value()) << k.yaml;
        EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << c.error().message;
    }
}

// A list key (KeyType::list, such as exporters.*.streams) takes a YAML list (flow or block) or a
// comma-separated string; both give the same value. A bad item is named with its line and column.
TEST(Config, ListKeysTakeAYamlListOrACommaSeparatedString) {
    const std::string head = "exporters:\n  siem:\n    type: relp\n";
    for (const std::string form :
         {"    streams: [audit, alerts, checkpoints]\n",
          "    streams:\n      - audit\n      - alerts\n      - checkpoints\n",
          "    streams: audit, alerts,checkpoints\n", "    streams: \"audit,alerts,checkpoints\"\n"}) {
        auto c = parse(head + form);
        ASSERT_TRUE(c.has_value()) << form << c.error().message;
        EXPECT_EQ(c->str("exporters.siem.streams"), "audit,alerts,checkpoints") << form;
        EXPECT_EQ(base::split_list(c->str("exporters.siem.streams")),
                  (std::vector<std::string>{"audit", "alerts", "checkpoints"}));
        EXPECT_EQ(c->origin("exporters.siem.streams"), "test.yaml:4") << form;
    }
    auto empty = parse(head + "    streams: []\n");
    ASSERT_TRUE(empty.has_value()) << empty.error().message;  // the destination check refuses it (names no stream)
    EXPECT_EQ(empty->str("exporters.siem.streams"), "");

    struct Case {
        const char* yaml;
        const char* expect;
    };
    const Case cases[] = {
        {"    streams: [audit, [alerts]]\n",
         "test.yaml:4:22: key 'exporters.siem.streams' item 2: expected a plain "
         "value, found a list"},
        {"    streams: [audit, {a: b}]\n", "item 2: expected a plain value, found a mapping"},
        {"    streams:\n      - audit\n      -\n", "item 2: expected a plain value, found a null"},
        {"    streams: [audit, \"alerts,checkpoints\"]\n",
         "item 2 ('alerts,checkpoints') holds a comma: write each value as its own item"},
        {"    streams: [audit, \" \"]\n", "item 2 is empty"},
        {"    streams: {audit: true}\n", "takes a list, not a mapping"},
        {"    batch: [1]\n", "key 'exporters.siem.batch' takes a integer, not a list (write one value)"},
    };
    for (const auto& k : cases) {
        auto c = parse(head + k.yaml);
        ASSERT_FALSE(c.has_value()) << k.yaml;
        EXPECT_NE(c.error().message.find(k.expect), std::string::npos) << c.error().message;
    }
}

TEST(Config, SizesAndDurations) {
    EXPECT_EQ(*base::parse_bytes("220GB"), 220'000'000'000);
    EXPECT_EQ(*base::parse_bytes("16MiB"), 16 << 20);
    EXPECT_EQ(*base::parse_bytes("4096"), 4096);
    EXPECT_FALSE(base::parse_bytes("-1").has_value());
    EXPECT_FALSE(base::parse_bytes("99999999999999999999TB").has_value());
    EXPECT_EQ(*base::parse_duration_ms("60s"), 60'000);
    EXPECT_EQ(*base::parse_duration_ms("1h"), 3'600'000);
    EXPECT_FALSE(base::parse_duration_ms("1y").has_value());
}

TEST(Config, DocsConfigMdIsGeneratedFromTheKeySpecs) {
    std::ifstream in(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/CONFIG.md");
    ASSERT_TRUE(in) << "docs/CONFIG.md is missing";
    std::stringstream ss;
    ss << in.rdbuf();
    const auto keys = all_config_keys(exporters::component_config_keys());
    EXPECT_EQ(ss.str(), base::config_reference_markdown(keys))
        << "docs/CONFIG.md is out of date: regenerate it with `hsmauditd --config-reference > docs/CONFIG.md`";
}

TEST(Config, EveryKeyHasAValidDefaultAndADescription) {
    const auto keys = all_config_keys(exporters::component_config_keys());
    for (const auto& k : keys) {
        EXPECT_FALSE(k.description.empty()) << k.key;
        std::string yaml;
        // Build the nested YAML for the key with its default value.
        std::string_view rest = k.key;
        int depth = 0;
        while (true) {
            const auto dot = rest.find('.');
            // An instance key ("exporters.*.type") is written for an instance named "example".
            const std::string_view part = rest.substr(0, dot);
            yaml += std::string(std::size_t{2} * depth, ' ') +
                    (part == "*" ? std::string("example") : std::string(part)) + ":";
            if (dot == std::string_view::npos) break;
            yaml += "\n";
            rest.remove_prefix(dot + 1);
            ++depth;
        }
        yaml += " \"" + std::string(k.default_value) + "\"\n";
        if (k.type == base::KeyType::path && k.default_value.empty()) continue;  // "empty = derived" keys
        auto c = parse(yaml);
        EXPECT_TRUE(c.has_value()) << k.key << ": " << (c ? "" : c.error().message);
    }
}

}  // namespace
}  // namespace hsmaudit::agent
