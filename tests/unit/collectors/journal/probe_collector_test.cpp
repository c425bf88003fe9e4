// The journal probe as Prometheus families: every counter, by the name docs/METRICS.md lists.
#include "collectors/journal/probe_collector.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace hsmaudit::collectors::journal {
namespace {

TEST(JournalProbeCollector, EveryCounterIsAFamilyDocumentedInMetricsMd) {
    Probe probe;
    Probe::add(probe.received, 5);
    Probe::add(probe.gaps);
    const auto families = ProbeCollector(probe).Collect();
    EXPECT_EQ(families.size(), 11U);
    std::ifstream in(std::string(HSMAUDIT_SOURCE_DIR) + "/docs/METRICS.md");
    const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const auto& f : families) {
        EXPECT_NE(doc.find("`" + f.name + "`"), std::string::npos) << f.name << " is not in docs/METRICS.md";
        ASSERT_EQ(f.metric.size(), 1U);
        const double v = f.metric[0].counter.value;
        const double expected = f.name == "hsmaudit_journal_entries_received_total" ? 5.0
                                : f.name == "hsmaudit_journal_gaps_total"           ? 1.0
                                                                                    : 0.0;
        EXPECT_EQ(v, expected) << f.name;
    }
}

}  // namespace
}  // namespace hsmaudit::collectors::journal
