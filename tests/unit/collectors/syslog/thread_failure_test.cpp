// The collector's last-resort catch (issue 13, item 5): an exception thrown by the sink on a
// listener's or a follower's thread stops that source, is counted and told to the owner, and does
// not end the process (without the catch, std::terminate would abort this test binary).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "collectors/syslog/file_follower.h"
#include "collectors/syslog/listener.h"
#include "tests/unit/collectors/syslog/test_sink.h"

namespace hsmaudit::collectors::syslog {
namespace {

class ThrowingSink final : public SyslogSink {
public:
    void on_message(SyslogMessage&& /*message*/) override { throw std::runtime_error("sink exploded"); }
};

/// Collects on_failure calls (from the source's thread).
class Failures {
public:
    ThreadFailureHandler handler() {
        return [this](const std::string& what) {
            {
                std::lock_guard lock(mutex_);
                what_.push_back(what);
            }
            cv_.notify_all();
        };
    }
    std::vector<std::string> wait_for_one() {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, testing::kStuck, [&] { return !what_.empty(); });
        return what_;
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::string> what_;
};

TEST(SyslogThreadFailure, ListenerStopsCountsAndTellsTheOwner) {
    ThrowingSink sink;
    Probe probe;
    Failures failures;
    ListenerOptions o;
    o.endpoint = "udp:127.0.0.1:0";
    o.on_failure = failures.handler();
    auto l = SyslogListener::start(o, sink, probe);
    ASSERT_TRUE(l) << l.error().message;
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons((*l)->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::string msg = "<13>Oct 11 22:14:15 host tag: boom";
    ASSERT_EQ(::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(msg.size()));
    ::close(fd);
    const auto what = failures.wait_for_one();
    ASSERT_EQ(what.size(), 1u);
    EXPECT_NE(what[0].find("sink exploded"), std::string::npos) << what[0];
    EXPECT_NE(what[0].find("udp:127.0.0.1:0"), std::string::npos) << what[0];
    EXPECT_EQ(probe.snapshot().thread_failures, 1u);
    (*l)->stop();  // joins the ended thread; idempotent
}

TEST(SyslogThreadFailure, FollowerStopsCountsAndTellsTheOwner) {
    const auto dir = testing::make_temp_dir();
    const auto path = dir / "messages";
    {
        std::ofstream out(path);
        out << "<13>Oct 11 22:14:15 host tag: boom\n";
    }
    ThrowingSink sink;
    Probe probe;
    Failures failures;
    FollowerOptions o;
    o.on_failure = failures.handler();
    auto t = FollowerThread::start(path, sink, probe, std::chrono::milliseconds(5), o);
    ASSERT_TRUE(t) << t.error().message;
    const auto what = failures.wait_for_one();
    ASSERT_EQ(what.size(), 1u);
    EXPECT_NE(what[0].find("sink exploded"), std::string::npos) << what[0];
    EXPECT_NE(what[0].find(path.string()), std::string::npos) << what[0];
    EXPECT_EQ(probe.snapshot().thread_failures, 1u);
    (*t)->stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace hsmaudit::collectors::syslog
