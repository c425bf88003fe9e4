// HoldDown: de-duplication and flap damping per condition, so a flapping sensor does not flood
// the NMS and the NMS still ends up knowing the condition's real state.
//
// Per condition (hsmNotifyCondition), within a window of `holddown` starting at the first
// notification sent:
//   - a raise at the level already notified, or a clear of a condition already notified clear,
//     is a duplicate: dropped (counted). A clear of a condition never seen is sent (the NMS may
//     hold a raise from before a restart).
//   - at most `flap_limit` notifications are sent; later changes are held down (counted);
//   - when the window ends with changes held down, the latest state is sent once if it differs
//     from what was notified (an event condition: the latest event), carrying in
//     hsmNotifySuppressed how many were held back. A condition that flapped back to the state
//     notified sends nothing more.
// So a condition flapping N times in a window costs at most flap_limit + 1 notifications, and
// every raise the NMS saw is followed by its clear once the condition goes away.
//
// Time comes from the caller (an injected clock). Thread-safety: not thread-safe; the runner's
// thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "exporters/snmp/notification.h"

namespace hsmaudit::exporters::snmp {

class HoldDown {
public:
    HoldDown(std::chrono::milliseconds holddown, std::uint32_t flap_limit);

    enum class Verdict : std::uint8_t { send, duplicate, held };
    /// Decides about `n` at `now_ms`; on `send`, sets hsmNotifySuppressed in `n`.
    Verdict offer(Notification& n, std::int64_t now_ms);

    /// Notifications whose window has ended with a held-down state to report (see the file comment).
    std::vector<Notification> due(std::int64_t now_ms);

    /// The earliest time a window with held-down changes ends (nullopt if none).
    [[nodiscard]] std::optional<std::int64_t> next_due() const;

    [[nodiscard]] std::size_t conditions() const { return conditions_.size(); }

private:
    struct Condition {
        std::optional<std::string> notified;  // signature of the state last sent; nullopt: never sent
        std::int64_t window_start_ms = 0;
        std::uint32_t sent_in_window = 0;
        std::uint32_t held = 0;              // held down since the last one sent
        std::optional<Notification> latest;  // the newest held-down notification
    };
    static std::string signature(const Notification& n);
    void forget_idle(std::int64_t now_ms);

    std::int64_t holddown_ms_;
    std::uint32_t flap_limit_;
    std::map<std::string, Condition, std::less<>> conditions_;
};

}  // namespace hsmaudit::exporters::snmp
