// Alerts and checkpoints are written while the disk is full: LineLog keeps space allocated past
// its end. Proven on a real, small tmpfs filled to ENOSPC (root only; skipped elsewhere).
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/engine/store/line_log.h"

namespace hsmaudit::agent {
namespace {

namespace fs = std::filesystem;

class TmpfsMount {
public:
    explicit TmpfsMount(const fs::path& dir) : dir_(dir) {
        fs::create_directories(dir_);
        mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m,mode=0700") == 0;
        if (!mounted_) error_ = std::strerror(errno);
    }
    ~TmpfsMount() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;
    [[nodiscard]] bool mounted() const { return mounted_; }
    [[nodiscard]] const std::string& error() const { return error_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string error_;
};

TEST(LineLogReserve, LinesAreStillWrittenAfterTheDiskFilledUp) {
    const fs::path dir = fs::temp_directory_path() / ("hsmaudit-reserve-" + std::to_string(::getpid()));
    TmpfsMount mnt(dir);
    if (!mnt.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << mnt.error() << "): needs root";
    auto log = LineLog::open(dir.string(), "alerts.jsonl");
    ASSERT_TRUE(log.has_value()) << log.error().message;
    ASSERT_TRUE((*log)->append("{\"kind\":\"first\"}").has_value());
    {
        std::ofstream ballast(dir / "ballast", std::ios::binary);
        const std::string block(64 * 1024, 'x');
        for (int i = 0; i < 64 && ballast.write(block.data(), static_cast<std::streamsize>(block.size())); ++i) {
        }
    }
    std::ofstream probe(dir / "probe", std::ios::binary);
    probe << std::string(8192, 'y') << std::flush;
    ASSERT_TRUE(probe.fail()) << "the tmpfs did not fill up";
    const std::string alert(300, 'a');
    for (int i = 0; i < 500; ++i) ASSERT_TRUE((*log)->append(alert).has_value()) << "alert " << i << " on a full disk";
    EXPECT_EQ(fs::file_size(dir / "alerts.jsonl"), 17 + 500 * 301u);
}

}  // namespace
}  // namespace hsmaudit::agent
