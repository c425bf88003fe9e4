// HSMAUDIT-MIB: smilint (Debian smitools) reports no errors at level 6, net-snmp's snmptranslate
// loads it, and the sender's table (exporters/snmp/mib.cpp) agrees with it: every notification's
// OID and OBJECTS, every object's OID.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "exporters/snmp/mib.h"
#include "tests/integration/exporters/snmp/snmp_test_support.h"

namespace hsmaudit::testing::snmp {
namespace {

namespace mib = exporters::snmp;

std::string mib_file() {
    return project_mib_dir() + "/HSMAUDIT-MIB.txt";
}

class MibTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(base_mib_dir().empty()) << kMissingMibs;
        dir_ = make_temp_dir();
        ASSERT_FALSE(dir_.empty());
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // snmptranslate with only the base MIBs and ours: no net-snmp defaults, no config files.
    std::pair<int, std::string> translate(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"/usr/bin/snmptranslate", "-M", base_mib_dir() + ":" + project_mib_dir(), "-m",
                                      "HSMAUDIT-MIB"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, dir_ + "/translate");
    }
    std::string dir_;
};

TEST_F(MibTest, SmilintReportsNoErrors) {
    // SMIPATH: the base MIBs; severities 0-3 are errors, 4-6 warnings (the implicit enterprises
    // node is a level-5 warning every enterprise MIB gets).
    auto [code, out] = run({"/usr/bin/env", "SMIPATH=" + base_mib_dir() + ":" + project_mib_dir(), "/usr/bin/smilint",
                            "-s", "-l", "6", mib_file()},
                           dir_ + "/smilint");
    const std::regex error(R"(: \[[0-3]\] )");
    EXPECT_FALSE(std::regex_search(out, error)) << out;
    EXPECT_EQ(out.find("Cannot"), std::string::npos) << out;
}

TEST_F(MibTest, SnmptranslateLoadsIt) {
    auto [code, out] = translate({"-On", "HSMAUDIT-MIB::hsmauditMIB"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find(".1.3.6.1.4.1.32473.1"), std::string::npos) << out;
    EXPECT_EQ(out.find("Cannot find module"), std::string::npos) << out;
}

TEST_F(MibTest, SenderTableMatchesTheMib) {
    const auto base = *mib::parse_oid(mib::kDefaultEnterpriseOid);
    for (const auto& n : mib::mib_notifications()) {
        const std::string name = "HSMAUDIT-MIB::" + std::string(n.name);
        auto [code, oid] = translate({"-On", name});
        EXPECT_EQ(code, 0) << oid;
        EXPECT_EQ(oid.substr(0, oid.find('\n')), mib::to_string(mib::notification_oid(base, n))) << name;
        auto [code2, def] = translate({"-Td", name});
        const auto at = def.find("OBJECTS\t{ ");
        ASSERT_NE(at, std::string::npos) << def;
        const auto list = def.substr(at + 10, def.find(" }", at) - at - 10);
        std::string mine;
        for (const auto o : n.objects) mine += (mine.empty() ? "" : ", ") + std::string(o);
        EXPECT_EQ(list, mine) << name;
    }
    for (const auto& o : mib::mib_objects()) {
        const std::string name = "HSMAUDIT-MIB::" + std::string(o.name);
        auto [code, oid] = translate({"-On", name});
        auto expected = mib::object_oid(base, o);
        if (o.scalar) expected.pop_back();  // the object, not its instance
        EXPECT_EQ(oid.substr(0, oid.find('\n')), mib::to_string(expected)) << name;
    }
}

TEST_F(MibTest, EveryObjectAndNotificationIsInAConformanceGroup) {
    // smilint warns (level 4) about any node outside OBJECT-GROUPs and NOTIFICATION-GROUPs: the only
    // message allowed at level 6 is the implicit enterprises node.
    auto [code, out] = run({"/usr/bin/env", "SMIPATH=" + base_mib_dir() + ":" + project_mib_dir(), "/usr/bin/smilint",
                            "-s", "-l", "6", mib_file()},
                           dir_ + "/smilint");
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty()) {
            EXPECT_NE(line.find("implicit node definition"), std::string::npos) << line;
        }
    }
}

}  // namespace
}  // namespace hsmaudit::testing::snmp
