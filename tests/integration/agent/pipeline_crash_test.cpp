// Issue 4's crash proof (label crash): kill -9 of the agent 20 times under load, at seeded
// random points; afterwards the trail verifies end to end with no gap and no duplicate record.
#include "pipeline_fixture.h"

namespace hsmaudit::testing {
namespace {

TEST_F(Pipeline, KillNineTheAgentTwentyTimesUnderLoadAndTheTrailHasNoGapAndNoDuplicate) {
    ASSERT_NO_FATAL_FAILURE(init_module("4194304"));
    ASSERT_NO_FATAL_FAILURE(serve());
    write_config();
    const unsigned seed = static_cast<unsigned>(std::random_device{}());
    std::cout << "crash schedule seed " << seed << "\n";
    std::mt19937 rng(seed);
    Process load({kHsmcore, "load", "--dir", module_, "--rate", "5000", "--duration", "600", "--threads", "2"},
                 dir_ + "/load.out", dir_ + "/load.err");
    for (int i = 0; i < 20; ++i) {
        ASSERT_NO_FATAL_FAILURE(start_agent());
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 500));
        agent_->signal(SIGKILL);
        ASSERT_TRUE(agent_->wait(std::chrono::seconds(30)).has_value());
    }
    load.signal(SIGTERM);
    load.wait(std::chrono::seconds(30));
    ASSERT_NO_FATAL_FAILURE(start_agent());
    ASSERT_NO_FATAL_FAILURE(wait_drained());
    ASSERT_NO_FATAL_FAILURE(stop_agent());
    const auto report = verify();
    const auto ms = module_status();
    EXPECT_EQ(report.value("verdict", ""), "verified") << report.dump().substr(0, 3000);
    EXPECT_EQ(report.value("faults_total", 1u), 0u);
    EXPECT_EQ(report.value("records", 0u), ms.value("next_seq", 0u) - 1);
    EXPECT_EQ(report.value("last_seq", 0u), ms.value("next_seq", 0u) - 1);
}

}  // namespace
}  // namespace hsmaudit::testing
