#include "exporters/common/host_port.h"

#include <algorithm>

#include "agent/api/errc.h"

namespace hsmaudit::exporters::common {

Result<std::pair<std::string, std::string>> parse_host_port(std::string_view text, std::string_view key) {
    auto bad = [&](const std::string& why) {
        return make_error(agent::errc::config_error, std::string(key) + ": '" + std::string(text) + "' " + why +
                                                         " (expected host:port or [v6addr]:port)");
    };
    if (text.empty()) return bad("is empty");
    std::string host;
    std::string_view rest;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return bad("is malformed");
        host = std::string(text.substr(1, close - 1));
        rest = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0) return bad("has no port");
        host = std::string(text.substr(0, colon));
        if (host.find(':') != std::string::npos) return bad("needs brackets around an IPv6 address");
        rest = text.substr(colon + 1);
    }
    if (host.empty()) return bad("has no host");
    if (rest.empty() || rest.size() > 5 ||
        !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return bad("has an invalid port");
    const int port = std::stoi(std::string(rest));
    if (port < 1 || port > 65535) return bad("has a port out of range");
    return std::pair{host, std::string(rest)};
}

}  // namespace hsmaudit::exporters::common
