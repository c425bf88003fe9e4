#include "exporters/snmp/holddown.h"

#include <algorithm>

namespace hsmaudit::exporters::snmp {

HoldDown::HoldDown(std::chrono::milliseconds holddown, std::uint32_t flap_limit)
    : holddown_ms_(holddown.count()), flap_limit_(std::max<std::uint32_t>(flap_limit, 1)) {}

std::string HoldDown::signature(const Notification& n) {
    if (n.action == Action::clear) return "clear";
    // A raise at another level (warning -> critical) is a change; an event is always new.
    return std::string(n.def->name) + "/" + std::to_string(static_cast<int>(n.severity));
}

HoldDown::Verdict HoldDown::offer(Notification& n, std::int64_t now_ms) {
    auto& c = conditions_[n.condition];
    if (c.sent_in_window > 0 && now_ms - c.window_start_ms >= holddown_ms_ && !c.latest) {
        c.sent_in_window = 0;  // the window ended quietly: a new one starts with this notification
    }
    const std::string sig = signature(n);
    if (n.action != Action::event && c.notified == sig && !c.latest) return Verdict::duplicate;
    if (c.sent_in_window < flap_limit_) {
        if (c.sent_in_window == 0) c.window_start_ms = now_ms;
        ++c.sent_in_window;
        n.set("hsmNotifySuppressed", std::to_string(c.held));
        c.held = 0;
        c.notified = sig;
        c.latest.reset();
        return Verdict::send;
    }
    ++c.held;
    c.latest = n;
    return Verdict::held;
}

std::vector<Notification> HoldDown::due(std::int64_t now_ms) {
    std::vector<Notification> out;
    for (auto& [key, c] : conditions_) {
        if (!c.latest || now_ms - c.window_start_ms < holddown_ms_) continue;
        Notification n = std::move(*c.latest);
        c.latest.reset();
        const std::string sig = signature(n);
        if (n.action != Action::event && c.notified == sig) {
            // Flapped back to what the NMS knows: nothing to say; the count goes with the next one.
            c.sent_in_window = 0;
            continue;
        }
        // The one sent now is not held back: report the others.
        n.set("hsmNotifySuppressed", std::to_string(c.held - 1));
        n.event_id.clear();
        c.held = 0;
        c.notified = sig;
        c.window_start_ms = now_ms;
        c.sent_in_window = 1;
        out.push_back(std::move(n));
    }
    forget_idle(now_ms);
    return out;
}

std::optional<std::int64_t> HoldDown::next_due() const {
    std::optional<std::int64_t> at;
    for (const auto& [key, c] : conditions_)
        if (c.latest) {
            const auto t = c.window_start_ms + holddown_ms_;
            if (!at || t < *at) at = t;
        }
    return at;
}

void HoldDown::forget_idle(std::int64_t now_ms) {
    // Bounded memory: a clear condition whose window is over, with nothing held, is forgotten (a
    // later duplicate clear is then sent once more, which is harmless). Event conditions are keyed
    // by alert kind or rule, a bounded set.
    if (conditions_.size() < 1024) return;
    std::erase_if(conditions_, [&](const auto& kv) {
        const auto& c = kv.second;
        return !c.latest && c.notified == "clear" && now_ms - c.window_start_ms >= holddown_ms_;
    });
}

}  // namespace hsmaudit::exporters::snmp
