#include "agent/export/event.h"

namespace hsmaudit::agent {

std::string_view to_string(Stream s) {
    switch (s) {
        case Stream::audit: return "audit";
        case Stream::syslog: return "syslog";
        case Stream::alerts: return "alerts";
        case Stream::checkpoints: return "checkpoints";
    }
    return "?";
}

bool parse_stream(std::string_view text, Stream& out) {
    for (Stream s : kAllStreams) {
        if (to_string(s) == text) {
            out = s;
            return true;
        }
    }
    return false;
}

std::string make_event_id(const Event& e) {
    if (e.stream == Stream::audit && e.entry != EntryKind::record)
        return e.serial + (e.entry == EntryKind::open ? "-open-" : "-seal-") + std::to_string(e.epoch);
    if (e.stream == Stream::audit)
        return e.serial + "-" + std::to_string(e.record.boot) + "-" + std::to_string(e.record.seq);
    return e.serial + "-" + std::string(to_string(e.stream)) + "-" + std::to_string(e.position);
}

int syslog_severity(const Event& e) {
    switch (e.stream) {
        case Stream::audit: {
            const std::string& c = e.record.event_class;
            if (e.record.result != 0) return (c == "access" || c == "manage") ? 3 : 4;
            if (c == "manage" || c == "keymanage" || c == "logmanage") return 5;
            return 6;
        }
        case Stream::syslog: return e.syslog.severity >= 0 && e.syslog.severity <= 7 ? e.syslog.severity : 6;
        case Stream::alerts:
            switch (e.alert.severity) {
                case Severity::critical: return 2;
                case Severity::warning: return 4;
                case Severity::info: return 6;
            }
            return 4;
        case Stream::checkpoints: return 6;
    }
    return 6;
}

}  // namespace hsmaudit::agent
