// The appliance around the emulated module: its host syslog stream (NTLS, logins, services, sensors).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "hsmcore/appliance/appliance_events.h"
#include "hsmcore/appliance/sensor_simulation.h"
#include "hsmcore/appliance/syslog_sender.h"

namespace hsmaudit::appliance {

/// What Appliance::start needs; only `destination` is required. A value type, read once by start().
struct ApplianceOptions {
    std::string destination;                        // "unix:/path", "udp:127.0.0.1:514" or "tcp:127.0.0.1:601"
    std::string hostname = "myLuna";                // RFC 5424 HOSTNAME of every message
    std::uint64_t seed = 1;                         // sensor noise; same seed + same clock = same stream
    std::chrono::milliseconds tick_interval{1000};  // real time between sensor ticks (>= 1 ms)
    Clock clock;                                    // timestamps and sensor time; empty = system clock
    SenderOptions sender;                           // queue bound, back-off, I/O timeout
    bool announce_startup = true;                   // log "Starting up NTLS" at start
};

/// The emulated appliance host: owns a SensorSimulation, an ApplianceEvents formatter and a SyslogSender,
/// and a thread that ticks the sensors every tick_interval and sends what they report.
/// Thread-safety: every public member may be called from any thread; stop() (or destruction) joins the
/// ticker and the sender. Nothing here blocks the caller on the network (the sender's queue is bounded).
class Appliance {
public:
    /// Parses the destination, opens the sender, logs the NTLS start-up line and starts ticking.
    static Result<std::unique_ptr<Appliance>> start(ApplianceOptions options);
    ~Appliance();
    Appliance(const Appliance&) = delete;
    Appliance& operator=(const Appliance&) = delete;

    /// Stops ticking and sending; idempotent.
    void stop();

    // Host events the module emulator reports (each becomes one syslog message).
    void ntls_link_up(std::string_view client_address, std::string_view client_name);
    void ntls_link_down(std::string_view client_address, std::string_view client_name, std::string_view reason);
    void login(LoginRole role, std::string_view user, std::string_view from, bool success);
    void service_restart(std::string_view service, std::string_view by);

    /// Runs `f` on the sensor simulation under the appliance's lock (fail a fan, heat the CPU, ...).
    void steer(const std::function<void(SensorSimulation&)>& f);
    /// Ticks the sensors now (in the caller's thread) and sends what they report; returns the count.
    std::size_t tick_now();
    std::vector<SensorReading> readings() const;

    /// Waits up to `timeout` until every message so far has left the sender.
    bool flush(std::chrono::milliseconds timeout) { return sender_->wait_idle(timeout); }
    [[nodiscard]] SenderStats stats() const noexcept { return sender_->stats(); }
    [[nodiscard]] const SyslogDestination& destination() const noexcept { return sender_->destination(); }

private:
    Appliance(ApplianceOptions options, std::unique_ptr<SyslogSender> sender);
    void emit(const SyslogRecord& record);
    std::size_t tick_locked();
    void run(const std::stop_token& stop);

    ApplianceOptions options_;
    ApplianceEvents events_;
    std::unique_ptr<SyslogSender> sender_;

    mutable std::mutex mutex_;  // guards sensors_
    SensorSimulation sensors_;
    std::condition_variable_any cv_;
    std::jthread thread_;  // last: joined first
};

}  // namespace hsmaudit::appliance
