#include "hsmcore/appliance/sensor_simulation.h"

#include <gtest/gtest.h>

#include <cmath>

#include "hsmcore/appliance/appliance_events.h"
#include "hsmcore/appliance/syslog_format.h"

namespace hsmaudit::appliance {
namespace {

using namespace std::chrono;
using Type = SensorEvent::Type;

const system_clock::time_point kT0 = sys_days{year{2026} / 11 / 24} + 6h;

// Ticks once a second for `seconds` seconds after `t`, collecting events of `sensor` (all if empty).
std::vector<SensorEvent> run(SensorSimulation& sim, system_clock::time_point& t, int seconds,
                             const std::string& sensor) {
    std::vector<SensorEvent> out;
    for (int i = 0; i < seconds; ++i) {
        t += 1s;
        for (auto& e : sim.tick(t)) {
            if (sensor.empty() || e.sensor == sensor) out.push_back(std::move(e));
        }
    }
    return out;
}

std::vector<SensorEvent> thresholds_only(const std::vector<SensorEvent>& in) {
    std::vector<SensorEvent> out;
    for (const auto& e : in) {
        if (e.type != Type::reading_changed) out.push_back(e);
    }
    return out;
}

TEST(SensorSimulation, StartsQuietAndNormal) {
    SensorSimulation sim(42);
    auto t = kT0;
    EXPECT_TRUE(sim.tick(t).empty());
    EXPECT_TRUE(run(sim, t, 600, "").empty());
    for (const auto& r : sim.readings()) EXPECT_EQ(r.level, SensorLevel::normal) << r.sensor;
}

TEST(SensorSimulation, FanFailureWarnsThenCriticalThenClears) {
    SensorSimulation sim(7);
    auto t = kT0;
    sim.tick(t);
    sim.set_fan_failed(1, true);
    auto failing = run(sim, t, 30, "FAN2");
    auto th = thresholds_only(failing);
    ASSERT_EQ(th.size(), 2u);
    EXPECT_EQ(th[0].type, Type::asserted);
    EXPECT_EQ(th[0].level, SensorLevel::warning);
    EXPECT_LE(th[0].value, 3000);
    EXPECT_EQ(th[0].threshold, 3000);
    EXPECT_EQ(th[1].type, Type::asserted);
    EXPECT_EQ(th[1].level, SensorLevel::critical);
    EXPECT_EQ(th[1].previous_level, SensorLevel::warning);
    EXPECT_LE(th[1].value, 1000);
    EXPECT_EQ(th[1].threshold, 1000);
    // Speed changes on the way down were logged too, each at least 500 RPM from the previous one.
    EXPECT_GE(failing.size(), 5u);
    // The other fans did not move.
    for (const auto& r : sim.readings()) {
        if (r.kind == SensorKind::fan && r.sensor != "FAN2") {
            EXPECT_EQ(r.level, SensorLevel::normal) << r.sensor;
        }
    }

    sim.set_fan_failed(1, false);
    auto th2 = thresholds_only(run(sim, t, 30, "FAN2"));
    ASSERT_EQ(th2.size(), 2u);
    EXPECT_EQ(th2[0].type, Type::cleared);
    EXPECT_EQ(th2[0].previous_level, SensorLevel::critical);
    EXPECT_EQ(th2[0].level, SensorLevel::warning);
    EXPECT_EQ(th2[1].type, Type::cleared);
    EXPECT_EQ(th2[1].level, SensorLevel::normal);
    EXPECT_GT(th2[1].value, 3000 + 300);  // cleared only past the hysteresis

    // As syslog: warning, critical, notice, notice.
    ApplianceEvents ev("myLuna", [&] { return t; });
    EXPECT_EQ(ev.sensor(th[0]).severity, Severity::warning);
    EXPECT_EQ(ev.sensor(th[1]).severity, Severity::critical);
    EXPECT_EQ(ev.sensor(th2[1]).severity, Severity::notice);
    const auto crit = format_rfc5424(ev.sensor(th[1]));
    EXPECT_EQ(crit.rfind("<26>1 ", 0), 0u) << crit;
    EXPECT_NE(crit.find("ipmievd 811 THRESHOLD [sensor@32473 name=\"FAN2\" type=\"fan\""), std::string::npos) << crit;
    EXPECT_NE(crit.find("below critical threshold 1000 RPM : Assert"), std::string::npos) << crit;
    const auto clear = format_rfc5424(ev.sensor(th2[1]));
    EXPECT_NE(clear.find("back to normal, warning threshold 3000 RPM cleared : Deassert"), std::string::npos) << clear;
    EXPECT_NE(clear.find("state=\"deassert\""), std::string::npos) << clear;
}

TEST(SensorSimulation, CpuHeatLogsEveryTwoDegreesAndCrossesThresholds) {
    SensorSimulation sim(3);
    auto t = kT0;
    sim.tick(t);
    const double start = sim.readings()[0].value;
    sim.set_cpu_extra_heat(45);  // target ~97 C
    auto events = run(sim, t, 300, "CPU_TEMP");
    double last = start;
    int changes = 0;
    for (const auto& e : events) {
        if (e.type == Type::reading_changed) {
            ++changes;
            EXPECT_GE(std::fabs(e.value - last), 2.0);
            EXPECT_EQ(e.previous_value, last);
        }
        last = e.value;
    }
    EXPECT_GE(changes, 10);
    auto th = thresholds_only(events);
    ASSERT_EQ(th.size(), 2u);
    EXPECT_EQ(th[0].level, SensorLevel::warning);
    EXPECT_GE(th[0].value, 75);
    EXPECT_EQ(th[1].level, SensorLevel::critical);
    EXPECT_GE(th[1].value, 90);

    sim.set_cpu_extra_heat(0);
    auto cool = thresholds_only(run(sim, t, 300, "CPU_TEMP"));
    ASSERT_EQ(cool.size(), 2u);
    EXPECT_EQ(cool[0].level, SensorLevel::warning);
    EXPECT_LT(cool[0].value, 90 - 3 + 1e-9);
    EXPECT_EQ(cool[1].level, SensorLevel::normal);
    EXPECT_LT(cool[1].value, 75 - 3 + 1e-9);
}

TEST(SensorSimulation, PulledPsuIsCriticalAndReinsertedClears) {
    SensorSimulation sim(5);
    auto t = kT0;
    sim.tick(t);
    sim.set_psu_present(0, false);
    auto th = thresholds_only(run(sim, t, 5, "PSU1"));
    ASSERT_EQ(th.size(), 1u);
    EXPECT_EQ(th[0].level, SensorLevel::critical);
    EXPECT_FALSE(th[0].present);
    ApplianceEvents ev("myLuna", [&] { return t; });
    const auto text = format_rfc5424(ev.sensor(th[0]));
    EXPECT_NE(text.find("PSU removed"), std::string::npos) << text;
    EXPECT_NE(text.find("present=\"no\""), std::string::npos) << text;
    sim.set_psu_present(0, true);
    auto back = thresholds_only(run(sim, t, 10, "PSU1"));
    ASSERT_FALSE(back.empty());
    EXPECT_EQ(back.back().type, Type::cleared);
    EXPECT_EQ(back.back().level, SensorLevel::normal);
}

TEST(SensorSimulation, DiskSmartCountsAndHealth) {
    SensorSimulation sim(5);
    auto t = kT0;
    sim.tick(t);
    sim.set_disk_reallocated_sectors(12);
    auto a = run(sim, t, 1, "DISK0");
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].type, Type::asserted);
    EXPECT_EQ(a[0].level, SensorLevel::warning);
    EXPECT_EQ(a[0].value, 12);
    sim.set_disk_health_failed(true);
    auto b = run(sim, t, 1, "DISK0");
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].level, SensorLevel::critical);
    ApplianceEvents ev("myLuna", [&] { return t; });
    EXPECT_EQ(ev.sensor(b[0]).app_name, "smartd");
}

TEST(SensorSimulation, SameSeedSameEventsAndClockGoingBackIsHarmless) {
    auto scenario = [](std::uint64_t seed) {
        SensorSimulation sim(seed);
        auto t = kT0;
        std::vector<std::string> out;
        sim.tick(t);
        sim.set_fan_failed(3, true);
        sim.set_cpu_extra_heat(30);
        for (int i = 0; i < 120; ++i) {
            t += (i == 50) ? -10s : 1s;  // one step backwards
            for (const auto& e : sim.tick(t)) out.push_back(e.sensor + ":" + std::to_string(e.value));
        }
        return out;
    };
    const auto a = scenario(11);
    EXPECT_EQ(a, scenario(11));
    EXPECT_FALSE(a.empty());
}

TEST(SensorSimulation, SteeringIgnoresOutOfRangeIndices) {
    SensorSimulation sim(1);
    sim.set_fan_failed(99, true);
    sim.set_psu_present(99, false);
    sim.set_psu_voltage(99, 0);
    auto t = kT0;
    sim.tick(t);
    EXPECT_TRUE(run(sim, t, 60, "").empty());
}

}  // namespace
}  // namespace hsmaudit::appliance
