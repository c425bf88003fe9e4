#include "hsmcore/appliance/appliance.h"

#include "hsmcore/appliance/errc.h"

namespace hsmaudit::appliance {

Result<std::unique_ptr<Appliance>> Appliance::start(ApplianceOptions options) {
    if (options.tick_interval.count() < 1) {
        return make_error(errc::invalid_argument, "appliance tick_interval must be at least 1 ms");
    }
    if (options.hostname.empty()) return make_error(errc::invalid_argument, "appliance hostname is empty");
    if (!options.clock) options.clock = system_clock();
    auto dest = SyslogDestination::parse(options.destination);
    if (!dest) return std::move(dest).error();
    auto sender = SyslogSender::open(std::move(*dest), options.sender);
    if (!sender) return std::move(sender).error();
    std::unique_ptr<Appliance> a(new Appliance(std::move(options), std::move(*sender)));
    if (a->options_.announce_startup) a->emit(a->events_.ntls_startup());
    {
        std::lock_guard lock(a->mutex_);
        a->tick_locked();  // initializes the simulation at start time
    }
    a->thread_ = std::jthread([raw = a.get()](const std::stop_token& st) { raw->run(st); });
    return a;
}

Appliance::Appliance(ApplianceOptions options, std::unique_ptr<SyslogSender> sender)
    : options_(std::move(options)),
      events_(options_.hostname, options_.clock),
      sender_(std::move(sender)),
      sensors_(options_.seed) {}

Appliance::~Appliance() {
    stop();
}

void Appliance::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

void Appliance::emit(const SyslogRecord& record) {
    sender_->send(format_rfc5424(record));
}

void Appliance::ntls_link_up(std::string_view client_address, std::string_view client_name) {
    emit(events_.ntls_link_up(client_address, client_name));
}
void Appliance::ntls_link_down(std::string_view client_address, std::string_view client_name, std::string_view reason) {
    emit(events_.ntls_link_down(client_address, client_name, reason));
}
void Appliance::login(LoginRole role, std::string_view user, std::string_view from, bool success) {
    emit(events_.login(role, user, from, success));
}
void Appliance::service_restart(std::string_view service, std::string_view by) {
    emit(events_.service_restart(service, by));
}

void Appliance::steer(const std::function<void(SensorSimulation&)>& f) {
    std::lock_guard lock(mutex_);
    f(sensors_);
}

std::size_t Appliance::tick_now() {
    std::lock_guard lock(mutex_);
    return tick_locked();
}

std::size_t Appliance::tick_locked() {
    const auto events = sensors_.tick(options_.clock());
    for (const auto& e : events) emit(events_.sensor(e));
    return events.size();
}

std::vector<SensorReading> Appliance::readings() const {
    std::lock_guard lock(mutex_);
    return sensors_.readings();
}

void Appliance::run(const std::stop_token& stop) {
    std::mutex wait_mutex;
    for (;;) {
        {
            std::unique_lock lock(wait_mutex);
            cv_.wait_for(lock, stop, options_.tick_interval, [] { return false; });
        }
        if (stop.stop_requested()) return;
        tick_now();
    }
}

}  // namespace hsmaudit::appliance
