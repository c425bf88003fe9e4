// The control socket protocol between `hsmcore serve` and its clients (the cross-process host,
// `hsmcore load`, `hsmcore drain`): one request line, one reply line, over a unix stream socket.
//
//   request:  VERB ARG...\n            (space separated; binary arguments in lowercase hex)
//   reply:    OK key=value ...\n  |  ERR <errc name> <message>\n
//
// Thread-safety: ControlClient is used by one thread at a time; parse functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hsmaudit::hsmcore::host {

inline constexpr std::size_t kMaxRequestBytes = std::size_t{256} * 1024;

/// A parsed OK reply: its key=value fields in order.
struct ReplyFields {
    std::vector<std::pair<std::string, std::string>> fields;
    [[nodiscard]] std::string_view get(std::string_view key) const;
    [[nodiscard]] std::uint64_t get_u64(std::string_view key) const;  // 0 if absent or malformed
};

/// Parses a reply line (without LF): OK fields, or the Error an ERR line carries.
Result<ReplyFields> parse_reply(std::string_view line);
/// Splits a request line into words.
std::vector<std::string_view> split_words(std::string_view line);

/// A connection to a module's control socket.
class ControlClient {
public:
    static Result<ControlClient> connect(const std::string& socket_path);
    ControlClient(ControlClient&& o) noexcept;
    ControlClient& operator=(ControlClient&& o) noexcept;
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;
    ~ControlClient();

    /// Sends one request line (without LF) and returns the parsed reply.
    Result<ReplyFields> call(std::string_view request);

private:
    explicit ControlClient(int fd) : fd_(fd) {}
    int fd_ = -1;
    std::string buf_;
};

}  // namespace hsmaudit::hsmcore::host
