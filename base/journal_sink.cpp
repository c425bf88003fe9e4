#include "base/journal_sink.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace hsmaudit::base {

int journal_priority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
        case spdlog::level::debug: return 7;     // LOG_DEBUG
        case spdlog::level::info: return 6;      // LOG_INFO
        case spdlog::level::warn: return 4;      // LOG_WARNING
        case spdlog::level::err: return 3;       // LOG_ERR
        case spdlog::level::critical: return 2;  // LOG_CRIT
        default: return 6;
    }
}

bool stderr_is_journal(const char* journal_stream) {
    if (journal_stream == nullptr) return false;
    const std::string_view v(journal_stream);
    const auto colon = v.find(':');
    if (colon == std::string_view::npos) return false;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    const auto d = std::from_chars(v.data(), v.data() + colon, dev);
    const auto i = std::from_chars(v.data() + colon + 1, v.data() + v.size(), ino);
    if (d.ec != std::errc() || d.ptr != v.data() + colon || i.ec != std::errc() || i.ptr != v.data() + v.size())
        return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

namespace {
int sd_send(const std::vector<std::string>& fields) {
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (const auto& f : fields) iov.push_back(iovec{const_cast<char*>(f.data()), f.size()});
    return sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}
}  // namespace

JournalSink::JournalSink(std::string identifier, Send send)
    : identifier_(std::move(identifier)), send_(send ? std::move(send) : Send(sd_send)) {}

std::vector<std::string> JournalSink::entry(const spdlog::details::log_msg& msg,
                                            std::span<const LogField> fields) const {
    std::vector<std::string> out;
    out.reserve(3 + fields.size());
    out.push_back("MESSAGE=" + std::string(msg.payload.data(), msg.payload.size()));
    out.push_back("PRIORITY=" + std::to_string(journal_priority(msg.level)));
    out.push_back("SYSLOG_IDENTIFIER=" + identifier_);
    for (const auto& f : fields) out.push_back(std::string(f.name) + "=" + f.value);
    return out;
}

void JournalSink::log(const spdlog::details::log_msg& msg) {
    log_fields(msg, {});
}

void JournalSink::log_fields(const spdlog::details::log_msg& msg, std::span<const LogField> fields) {
    if (send_(entry(msg, fields)) >= 0) return;
    // The journal refused it (gone, or the socket is full): stderr, as text, so it is not lost.
    const auto level = spdlog::level::to_string_view(msg.level);
    (void)std::fprintf(stderr, "<%d>%.*s %.*s\n", journal_priority(msg.level), static_cast<int>(level.size()),
                       level.data(), static_cast<int>(msg.payload.size()), msg.payload.data());
}

bool use_journal_if_connected(spdlog::logger& log, const std::string& identifier) {
    if (!stderr_is_journal(std::getenv("JOURNAL_STREAM"))) return false;
    const auto level = log.level();
    log.sinks().clear();
    log.sinks().push_back(std::make_shared<JournalSink>(identifier));
    log.set_level(level);
    return true;
}

}  // namespace hsmaudit::base
