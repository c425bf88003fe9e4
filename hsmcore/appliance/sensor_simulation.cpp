#include "hsmcore/appliance/sensor_simulation.h"

#include <algorithm>
#include <cmath>

namespace hsmaudit::appliance {
namespace {

// Thresholds live in "badness" space (larger is worse) so one rule serves every sensor:
// temperatures and disk sectors are bad when high, fans when slow, PSUs when far from 12 V.
struct Limits {
    double warn;
    double crit;
    double hysteresis;  // a level clears only once badness is this far below its threshold
};

constexpr double kPsuNominal = 12.0;

Limits limits_for(SensorKind kind) {
    switch (kind) {
        case SensorKind::cpu_temperature: return {75.0, 90.0, 3.0};
        case SensorKind::ambient_temperature: return {35.0, 45.0, 2.0};
        case SensorKind::fan: return {-3000.0, -1000.0, 300.0};  // RPM at or below 3000 warns, 1000 is critical
        case SensorKind::psu: return {0.6, 1.2, 0.1};            // volts away from 12 V (5 %, 10 %)
        case SensorKind::disk: return {10.0, 100.0, 0.5};        // reallocated sectors
    }
    return {0, 0, 0};
}

double badness(SensorKind kind, double v) {
    switch (kind) {
        case SensorKind::fan: return -v;
        case SensorKind::psu: return std::fabs(v - kPsuNominal);
        default: return v;
    }
}

}  // namespace

const char* to_string(SensorKind kind) noexcept {
    switch (kind) {
        case SensorKind::cpu_temperature: return "cpu_temperature";
        case SensorKind::ambient_temperature: return "ambient_temperature";
        case SensorKind::fan: return "fan";
        case SensorKind::psu: return "psu";
        case SensorKind::disk: return "disk";
    }
    return "unknown";
}

const char* to_string(SensorLevel level) noexcept {
    switch (level) {
        case SensorLevel::normal: return "normal";
        case SensorLevel::warning: return "warning";
        case SensorLevel::critical: return "critical";
    }
    return "unknown";
}

SensorSimulation::SensorSimulation(std::uint64_t seed) : rng_(seed) {
    sensors_.push_back({"CPU_TEMP", SensorKind::cpu_temperature, "C", 0, 0, 20.0, 0.2, kTemperatureLogStep});
    sensors_.push_back({"AMBIENT_TEMP", SensorKind::ambient_temperature, "C", 0, 0, 120.0, 0.2, kTemperatureLogStep});
    for (std::size_t i = 0; i < kFans; ++i) {
        sensors_.push_back({"FAN" + std::to_string(i + 1), SensorKind::fan, "RPM", 0, 0, 4.0, 20.0, 500.0});
    }
    for (std::size_t i = 0; i < kPsus; ++i) {
        sensors_.push_back({"PSU" + std::to_string(i + 1), SensorKind::psu, "V", 0, 0, 0.5, 0.01, 0.2});
    }
    sensors_.push_back({"DISK0", SensorKind::disk, "sectors", 0, 0, 0.0, 0.0, 1.0});
    update_targets();
    for (auto& s : sensors_) s.value = s.measured = s.target;
}

void SensorSimulation::update_targets() {
    for (auto& s : sensors_) {
        switch (s.kind) {
            case SensorKind::cpu_temperature: s.target = ambient_ + 20.0 + cpu_load_ * 40.0 + cpu_extra_; break;
            case SensorKind::ambient_temperature: s.target = ambient_; break;
            case SensorKind::fan: {
                const std::size_t i = static_cast<std::size_t>(s.name.back() - '1');
                s.target = fan_failed_[i] ? 0.0 : 9000.0 + 150.0 * static_cast<double>(i);
                break;
            }
            case SensorKind::psu: {
                const std::size_t i = static_cast<std::size_t>(s.name.back() - '1');
                s.present = psu_present_[i];
                s.target = psu_present_[i] ? psu_volts_[i] : 0.0;
                break;
            }
            case SensorKind::disk: s.target = static_cast<double>(disk_reallocated_); break;
        }
    }
}

double SensorSimulation::reported(const Sensor& s) const {
    switch (s.kind) {
        case SensorKind::fan: return std::round(s.measured / 10.0) * 10.0;
        case SensorKind::psu: return std::round(s.measured * 100.0) / 100.0;
        default: return std::round(s.measured);
    }
}

SensorLevel SensorSimulation::classify(const Sensor& s, double v) const {
    if (s.kind == SensorKind::psu && !s.present) return SensorLevel::critical;
    if (s.kind == SensorKind::disk && disk_failed_) return SensorLevel::critical;
    const Limits l = limits_for(s.kind);
    const double b = badness(s.kind, v);
    const SensorLevel raw = b >= l.crit   ? SensorLevel::critical
                            : b >= l.warn ? SensorLevel::warning
                                          : SensorLevel::normal;
    if (raw >= s.level) return raw;
    // Going down: leave each level only once clearly below its threshold (no flapping at the edge).
    SensorLevel lvl = s.level;
    while (lvl > raw) {
        const double thr = lvl == SensorLevel::critical ? l.crit : l.warn;
        if (b >= thr - l.hysteresis) break;
        lvl = static_cast<SensorLevel>(static_cast<int>(lvl) - 1);
    }
    return lvl;
}

double SensorSimulation::threshold_for(const Sensor& s, SensorLevel level) const {
    const Limits l = limits_for(s.kind);
    const double b = level == SensorLevel::critical ? l.crit : l.warn;
    switch (s.kind) {
        case SensorKind::fan: return -b;
        case SensorKind::psu: return s.measured >= kPsuNominal ? kPsuNominal + b : kPsuNominal - b;
        default: return b;
    }
}

std::vector<SensorEvent> SensorSimulation::tick(std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    update_targets();
    std::vector<SensorEvent> events;
    const bool first = !last_tick_.has_value();
    double dt = 0;
    if (!first && now > *last_tick_) dt = std::min(duration<double>(now - *last_tick_).count(), 3600.0);
    if (first || now > *last_tick_) last_tick_ = now;

    for (auto& s : sensors_) {
        if (!first) {
            const double alpha = s.tau_s <= 0 ? 1.0 : 1.0 - std::exp(-dt / s.tau_s);
            s.value += (s.target - s.value) * alpha;
            // Measurement noise: it jitters the reading, never the simulated physics (no random walk).
            s.measured = s.value;
            if (s.noise > 0 && s.target != 0) {
                std::uniform_real_distribution<double> noise(-s.noise, s.noise);
                s.measured += noise(rng_);
            }
            s.measured = std::max(0.0, s.measured);
        } else {
            s.measured = s.value;
        }
        const double v = reported(s);
        const SensorLevel before = first ? SensorLevel::normal : s.level;
        if (first) s.level = SensorLevel::normal;
        const SensorLevel after = classify(s, v);

        SensorEvent e;
        e.sensor = s.name;
        e.kind = s.kind;
        e.unit = s.unit;
        e.value = v;
        e.previous_value = first ? v : s.logged;
        e.previous_level = before;
        e.level = after;
        e.present = s.present;
        e.at = now;
        if (after != before) {
            e.type = after > before ? SensorEvent::Type::asserted : SensorEvent::Type::cleared;
            e.threshold = threshold_for(s, after > before ? after : before);
            events.push_back(std::move(e));
            s.logged = v;
        } else if (!first && std::fabs(v - s.logged) >= s.log_step - 1e-9) {
            e.type = SensorEvent::Type::reading_changed;
            events.push_back(std::move(e));
            s.logged = v;
        } else if (first) {
            s.logged = v;
        }
        s.level = after;
    }
    return events;
}

std::vector<SensorReading> SensorSimulation::readings() const {
    std::vector<SensorReading> out;
    out.reserve(sensors_.size());
    for (const auto& s : sensors_) out.push_back({s.name, s.kind, reported(s), s.unit, s.level, s.present});
    return out;
}

void SensorSimulation::set_fan_failed(std::size_t fan, bool failed) {
    if (fan < kFans) fan_failed_[fan] = failed;
}
void SensorSimulation::set_cpu_extra_heat(double degrees) {
    cpu_extra_ = std::clamp(degrees, -50.0, 150.0);
}
void SensorSimulation::set_cpu_load(double load) {
    cpu_load_ = std::clamp(load, 0.0, 1.0);
}
void SensorSimulation::set_ambient(double degrees) {
    ambient_ = std::clamp(degrees, -40.0, 100.0);
}
void SensorSimulation::set_psu_present(std::size_t psu, bool present) {
    if (psu < kPsus) psu_present_[psu] = present;
}
void SensorSimulation::set_psu_voltage(std::size_t psu, double volts) {
    if (psu < kPsus) psu_volts_[psu] = std::clamp(volts, 0.0, 20.0);
}
void SensorSimulation::set_disk_reallocated_sectors(std::uint32_t sectors) {
    disk_reallocated_ = sectors;
}
void SensorSimulation::set_disk_health_failed(bool failed) {
    disk_failed_ = failed;
}

}  // namespace hsmaudit::appliance
