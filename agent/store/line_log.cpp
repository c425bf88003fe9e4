#include "agent/store/line_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "agent/errc.h"
#include "mac/files.h"

namespace hsmaudit::agent {

Result<std::unique_ptr<LineLog>> LineLog::open(const std::string& dir, const std::string& name) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + dir + ": " + ec.message());
    const std::string path = (std::filesystem::path(dir) / name).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return make_error(errc::io_error, "cannot open " + path + ": " + std::strerror(errno));
    return std::unique_ptr<LineLog>(new LineLog(path, fd));
}

Status LineLog::append(std::string_view line) {
    std::string data(line);
    data += '\n';
    std::lock_guard lock(mutex_);
    HSMAUDIT_TRY(mac::write_all(fd_.get(), data, path_));
    if (::fdatasync(fd_.get()) != 0)
        return make_error(errc::io_error, "cannot fsync " + path_ + ": " + std::strerror(errno));
    return {};
}

}  // namespace hsmaudit::agent
