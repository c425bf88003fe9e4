#include "hsmcore/appliance/appliance.h"

#include <gtest/gtest.h>

#include <atomic>

#include "hsmcore/appliance/errc.h"
#include "tests/unit/hsmcore/appliance/loopback_peers.h"

namespace hsmaudit::appliance {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using testing::DatagramPeer;
using testing::TcpPeer;

// A clock the test moves by hand.
struct ManualClock {
    std::shared_ptr<std::atomic<std::int64_t>> us = std::make_shared<std::atomic<std::int64_t>>(
        duration_cast<microseconds>((sys_days{year{2026} / 11 / 24} + 6h).time_since_epoch()).count());
    Clock clock() const {
        return [p = us] { return system_clock::time_point(microseconds(p->load())); };
    }
    void advance(microseconds d) const { us->fetch_add(d.count()); }
};

TEST(Appliance, StreamsStartupLoginsAndSensorEventsOverUnixSocket) {
    const auto dir = testing::make_temp_dir();
    auto peer = DatagramPeer::unix_socket(dir / "syslog.sock");
    ManualClock mc;
    ApplianceOptions o;
    o.destination = "unix:" + (dir / "syslog.sock").string();
    o.seed = 9;
    o.tick_interval = 24h;  // the test ticks by hand
    o.clock = mc.clock();
    auto a = Appliance::start(o);
    ASSERT_TRUE(a) << a.error().message;
    auto& app = **a;
    EXPECT_EQ(peer.receive(),
              "<174>1 2026-11-24T06:00:00.000000Z myLuna NTLS 1234 STARTUP - info : 0 : Starting up NTLS........");

    app.login(LoginRole::admin, "admin", "10.0.0.9", false);
    auto line = peer.receive();
    ASSERT_TRUE(line);
    EXPECT_NE(line->find("HSM Admin Login: incorrect password or PED key"), std::string::npos) << *line;

    app.steer([](SensorSimulation& s) { s.set_fan_failed(0, true); });
    std::vector<std::string> thresholds;
    for (int i = 0; i < 20; ++i) {
        mc.advance(1s);
        const std::size_t n = app.tick_now();
        for (std::size_t k = 0; k < n; ++k) {
            auto m = peer.receive();
            ASSERT_TRUE(m);
            EXPECT_NE(m->find("FAN1"), std::string::npos) << *m;
            if (m->find(" THRESHOLD ") != std::string::npos) thresholds.push_back(*m);
        }
    }
    ASSERT_EQ(thresholds.size(), 2u);
    EXPECT_EQ(thresholds[0].rfind("<28>1 ", 0), 0u) << thresholds[0];  // daemon.warning
    EXPECT_EQ(thresholds[1].rfind("<26>1 ", 0), 0u) << thresholds[1];  // daemon.crit
    EXPECT_EQ(app.readings()[2].level, SensorLevel::critical);
    app.stop();
    app.stop();
    EXPECT_EQ(app.stats().dropped_queue_full, 0u);
    a->reset();
    std::filesystem::remove_all(dir);
}

TEST(Appliance, TickerThreadTicksAndStopsCleanlyOverTcp) {
    TcpPeer peer;
    ManualClock mc;
    ApplianceOptions o;
    o.destination = "tcp:127.0.0.1:" + std::to_string(peer.port());
    o.tick_interval = 1ms;
    o.clock = mc.clock();
    o.announce_startup = false;
    auto a = Appliance::start(o);
    ASSERT_TRUE(a);
    // Heat the CPU and jump the clock: the ticker thread (not the test) reports the change.
    (*a)->steer([](SensorSimulation& s) { s.set_cpu_extra_heat(60); });
    mc.advance(10min);
    ASSERT_TRUE(peer.accept_one());
    auto m = peer.receive_frame();
    ASSERT_TRUE(m);
    EXPECT_NE(m->find("CPU_TEMP"), std::string::npos) << *m;
    (*a)->stop();
}

TEST(Appliance, RejectsBadOptionsWithClearErrors) {
    ApplianceOptions o;
    o.destination = "smtp:1.2.3.4:25";
    auto a = Appliance::start(o);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, errc::invalid_argument);
    EXPECT_NE(a.error().message.find("smtp"), std::string::npos);
    o.destination = "udp:127.0.0.1:514";
    o.tick_interval = 0ms;
    EXPECT_FALSE(Appliance::start(o));
    o.tick_interval = 1s;
    o.hostname.clear();
    EXPECT_FALSE(Appliance::start(o));
}

}  // namespace
}  // namespace hsmaudit::appliance
