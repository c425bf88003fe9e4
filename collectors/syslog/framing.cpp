#include "collectors/syslog/framing.h"

#include <algorithm>
#include <utility>

namespace hsmaudit::collectors::syslog {
namespace {

constexpr std::size_t kMaxCountDigits = 9;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

}  // namespace

StreamFramer::StreamFramer(std::size_t max_frame_bytes) : max_(std::max<std::size_t>(max_frame_bytes, 1)) {}

void StreamFramer::feed(std::string_view data, std::vector<Frame>& out) {
    buf_.append(data);
    process(out);
    if (head_ > 0) {
        buf_.erase(0, head_);
        head_ = 0;
    }
}

void StreamFramer::decide() {
    const std::string_view b = std::string_view(buf_).substr(head_);
    std::size_t i = 0;
    while (i < b.size() && is_digit(b[i]) && i <= kMaxCountDigits) ++i;
    if (i == 0 || b[0] == '0' || i > kMaxCountDigits) {
        if (!b.empty()) mode_ = Mode::lf;
        return;
    }
    if (i == b.size()) return;  // only digits so far
    if (b[i] != ' ') {
        mode_ = Mode::lf;
        return;
    }
    if (i + 1 == b.size()) return;  // "LEN SP" so far
    mode_ = b[i + 1] == '<' ? Mode::octet_counting : Mode::lf;
}

void StreamFramer::process(std::vector<Frame>& out) {
    for (;;) {
        std::string_view b = std::string_view(buf_).substr(head_);
        if (mode_ == Mode::undecided) {
            decide();
            if (mode_ == Mode::undecided) return;
        }
        if (mode_ == Mode::octet_counting) {
            if (discard_ > 0) {
                const std::size_t n = std::min(discard_, b.size());
                head_ += n;
                discard_ -= n;
                if (discard_ > 0) return;
                continue;
            }
            if (!in_frame_) {
                if (b.empty()) return;
                std::size_t i = 0;
                while (i < b.size() && is_digit(b[i]) && i <= kMaxCountDigits) ++i;
                if (i == b.size() && i <= kMaxCountDigits) return;  // header incomplete
                if (i == 0 || i > kMaxCountDigits || b[0] == '0' || b[i] != ' ') {
                    // Not a count: the peer is not octet counting (any more). Fall back to LF framing and
                    // mark the next frame.
                    mode_ = Mode::lf;
                    pending_error_ = true;
                    continue;
                }
                std::size_t len = 0;
                for (std::size_t k = 0; k < i; ++k) len = len * 10 + static_cast<std::size_t>(b[k] - '0');
                head_ += i + 1;
                in_frame_ = true;
                frame_oversized_ = len > max_;
                expecting_ = std::min(len, max_);
                discard_next_ = len - expecting_;
                continue;
            }
            if (b.size() < expecting_) return;
            Frame f;
            f.bytes.assign(b.substr(0, expecting_));
            f.oversized = frame_oversized_;
            out.push_back(std::move(f));
            head_ += expecting_;
            in_frame_ = false;
            expecting_ = 0;
            discard_ = discard_next_;
            discard_next_ = 0;
            continue;
        }
        // LF framing.
        if (lf_discarding_) {
            const auto nl = b.find('\n');
            if (nl == std::string_view::npos) {
                head_ += b.size();
                return;
            }
            head_ += nl + 1;
            lf_discarding_ = false;
            continue;
        }
        const auto nl = b.find('\n');
        if (nl == std::string_view::npos) {
            if (b.size() <= max_) return;
            Frame f;
            f.bytes.assign(b.substr(0, max_));
            f.oversized = true;
            f.framing_error = std::exchange(pending_error_, false);
            out.push_back(std::move(f));
            head_ += b.size();
            lf_discarding_ = true;
            return;
        }
        std::string_view line = b.substr(0, nl);
        head_ += nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        Frame f;
        f.oversized = line.size() > max_;
        f.bytes.assign(line.substr(0, max_));
        f.framing_error = std::exchange(pending_error_, false);
        out.push_back(std::move(f));
    }
}

void StreamFramer::finish(std::vector<Frame>& out) {
    std::string_view b = std::string_view(buf_).substr(head_);
    if (mode_ == Mode::octet_counting || mode_ == Mode::undecided) {
        if (in_frame_ || !b.empty()) {
            Frame f;
            f.bytes.assign(b.substr(0, max_));
            f.truncated = true;
            f.framing_error = true;
            out.push_back(std::move(f));
        }
    } else if (!lf_discarding_) {
        if (!b.empty() && b.back() == '\r') b.remove_suffix(1);
        if (!b.empty()) {
            Frame f;
            f.oversized = b.size() > max_;
            f.bytes.assign(b.substr(0, max_));
            f.framing_error = std::exchange(pending_error_, false);
            out.push_back(std::move(f));
        }
    }
    buf_.clear();
    head_ = 0;
    in_frame_ = false;
    expecting_ = 0;
    discard_ = 0;
    lf_discarding_ = false;
}

}  // namespace hsmaudit::collectors::syslog
