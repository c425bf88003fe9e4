// RFC 6587 framing of syslog over a stream: octet counting or LF-terminated, detected per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hsmaudit::collectors::syslog {

/// One message cut out of a stream. A value type.
struct Frame {
    std::string bytes;
    bool oversized = false;      // the frame was longer than the maximum; bytes holds its first max bytes
    bool truncated = false;      // the connection closed inside an octet-counted frame
    bool framing_error = false;  // a bad octet count made the framer fall back to LF framing here
};

/// Splits one TCP connection's bytes into frames. The first bytes decide the framing for the connection:
/// "LEN SP <" (LEN 1..9 digits, no leading zero) is octet counting, anything else is LF framing (CR LF
/// accepted). A later bad count is a framing error: the connection falls back to LF framing, so a
/// confused peer costs one malformed message rather than the connection. Memory is bounded by about
/// twice the maximum frame size whatever the peer sends.
/// Thread-safety: not thread-safe; one per connection.
class StreamFramer {
public:
    enum class Mode : std::uint8_t { undecided, octet_counting, lf };

    explicit StreamFramer(std::size_t max_frame_bytes);

    /// Consumes `data`, appending every complete frame to `out`.
    void feed(std::string_view data, std::vector<Frame>& out);
    /// The connection closed: a partial octet-counted frame comes out truncated; a last LF line without
    /// its LF comes out as is.
    void finish(std::vector<Frame>& out);

    [[nodiscard]] Mode mode() const noexcept { return mode_; }

private:
    void process(std::vector<Frame>& out);
    void decide();

    std::size_t max_;
    Mode mode_ = Mode::undecided;
    std::string buf_;
    std::size_t head_ = 0;          // consumed prefix of buf_
    std::size_t expecting_ = 0;     // octet: payload bytes of the current frame still to collect (0: header)
    bool in_frame_ = false;         // octet: a header was read
    bool frame_oversized_ = false;  // octet: the current frame exceeds max_
    std::size_t discard_ = 0;       // octet: bytes to skip after an oversized frame
    std::size_t discard_next_ = 0;  // octet: set when the current oversized frame completes
    bool lf_discarding_ = false;    // lf: skipping the rest of an oversized line
    bool pending_error_ = false;    // lf: the next frame follows a bad octet count
};

}  // namespace hsmaudit::collectors::syslog
