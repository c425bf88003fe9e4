// A small deterministic simulation of the appliance's IPMI and SMART sensors.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace hsmaudit::appliance {

enum class SensorKind : std::uint8_t { cpu_temperature, ambient_temperature, fan, psu, disk };

/// Ordered: normal < warning < critical.
enum class SensorLevel : std::uint8_t { normal = 0, warning = 1, critical = 2 };

const char* to_string(SensorKind kind) noexcept;
const char* to_string(SensorLevel level) noexcept;

/// Something worth a syslog line: a reading that moved enough, or a threshold crossed or cleared.
/// A value type.
struct SensorEvent {
    enum class Type : std::uint8_t {
        reading_changed,  // e.g. a temperature moved by 2 degrees since the last logged value
        asserted,         // the level went up (normal->warning, warning->critical, normal->critical)
        cleared,          // the level went down; `level` says to what (normal means fully clear)
    };
    Type type = Type::reading_changed;
    std::string sensor;  // "CPU_TEMP", "AMBIENT_TEMP", "FAN1".."FAN4", "PSU1", "PSU2", "DISK0"
    SensorKind kind = SensorKind::cpu_temperature;
    SensorLevel level = SensorLevel::normal;           // level after the event
    SensorLevel previous_level = SensorLevel::normal;  // level before the event
    double value = 0;                                  // as reported (integer degrees, RPM, volts, sectors)
    double previous_value = 0;                         // last logged value
    double threshold = 0;  // for asserted/cleared: the threshold that was crossed (0 otherwise)
    std::string unit;      // "C", "RPM", "V", "sectors"
    bool present = true;   // false for a pulled PSU
    std::chrono::system_clock::time_point at;
};

/// The current state of one sensor (for status displays and tests). A value type.
struct SensorReading {
    std::string sensor;
    SensorKind kind;
    double value;
    std::string unit;
    SensorLevel level;
    bool present;
};

/// Simulates CPU and ambient temperature, four fans, two PSUs and a disk's SMART state. Values follow
/// first-order lags towards targets the caller can steer (fail a fan, heat the CPU, pull a PSU), plus a
/// little noise from a seeded generator: the same seed and the same tick times give the same events.
/// Not thread-safe: one owner (Appliance serializes access with its own mutex).
class SensorSimulation {
public:
    static constexpr std::size_t kFans = 4;
    static constexpr std::size_t kPsus = 2;
    static constexpr double kTemperatureLogStep = 2.0;  // degrees: FACTS.md "changes of 2 degrees are logged"

    explicit SensorSimulation(std::uint64_t seed);

    /// Advances the simulation to `now` and returns the events it produced. The first call only
    /// initializes (and reports sensors that start out of range). A clock going backwards advances
    /// nothing (dt = 0); a gap longer than an hour is treated as an hour.
    std::vector<SensorEvent> tick(std::chrono::system_clock::time_point now);

    std::vector<SensorReading> readings() const;

    // Steering (takes effect on the next tick; values then move towards the new targets).
    void set_fan_failed(std::size_t fan, bool failed);         // fan 0..kFans-1; failed spins down to 0
    void set_cpu_extra_heat(double degrees);                   // added to the CPU target temperature
    void set_cpu_load(double load);                            // 0..1, default 0.2
    void set_ambient(double degrees);                          // target ambient, default 24
    void set_psu_present(std::size_t psu, bool present);       // pulled PSU reads 0 V, critical
    void set_psu_voltage(std::size_t psu, double volts);       // target output voltage, default 12.0
    void set_disk_reallocated_sectors(std::uint32_t sectors);  // SMART attribute 5
    void set_disk_health_failed(bool failed);                  // SMART overall health FAILED: critical

private:
    struct Sensor {
        std::string name;
        SensorKind kind;
        std::string unit;
        double value = 0;   // simulated physical value
        double target = 0;  // where it is heading
        double tau_s = 1;   // lag time constant
        double noise = 0;   // half-width of the uniform measurement noise
        double log_step = 0;
        double logged = 0;  // last value that produced an event (rounded)
        SensorLevel level = SensorLevel::normal;
        bool present = true;
        double measured = 0;  // value plus measurement noise: what is reported
    };

    double reported(const Sensor& s) const;
    SensorLevel classify(const Sensor& s, double v) const;
    double threshold_for(const Sensor& s, SensorLevel level) const;
    void update_targets();

    std::mt19937_64 rng_;
    std::vector<Sensor> sensors_;
    std::optional<std::chrono::system_clock::time_point> last_tick_;
    bool fan_failed_[kFans] = {};
    bool psu_present_[kPsus] = {true, true};
    double psu_volts_[kPsus] = {12.0, 12.0};
    double cpu_extra_ = 0;
    double cpu_load_ = 0.2;
    double ambient_ = 24.0;
    std::uint32_t disk_reallocated_ = 0;
    bool disk_failed_ = false;
};

}  // namespace hsmaudit::appliance
