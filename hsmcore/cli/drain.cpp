#include "hsmcore/cli/drain.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/files.h"
#include "hsmcore/errc.h"
#include "hsmcore/host/module_host.h"
#include "mac/segment_format.h"

namespace hsmaudit::hsmcore::cli {
namespace {

namespace fs = std::filesystem;
constexpr char kStateName[] = ".drain.state";

Error io(const std::string& what) {
    return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

/// One segment file being appended to.
class SegmentFile {
public:
    SegmentFile() = default;
    SegmentFile(const SegmentFile&) = delete;
    SegmentFile& operator=(const SegmentFile&) = delete;
    ~SegmentFile() { close_fd(); }

    Status open(const fs::path& path, bool truncate) {
        close_fd();
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0640);
        if (fd_ < 0) return io("cannot open " + path.string());
        name_ = path.filename().string();
        const off_t end = ::lseek(fd_, 0, SEEK_END);
        if (end < 0) return io("cannot seek " + path.string());
        size_ = static_cast<std::uint64_t>(end);
        return {};
    }
    void append(std::string_view s) { buf_ += s; }
    Status flush_and_sync() {
        std::size_t off = 0;
        while (off < buf_.size()) {
            const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return io("cannot write " + name_);
            off += static_cast<std::size_t>(n);
        }
        size_ += buf_.size();
        buf_.clear();
        if (::fsync(fd_) != 0) return io("cannot fsync " + name_);
        return {};
    }
    [[nodiscard]] bool is_open() const { return fd_ >= 0; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] std::uint64_t size() const { return size_; }

private:
    void close_fd() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
    std::string name_;
    std::string buf_;
    std::uint64_t size_ = 0;
};

Status sync_dir(const fs::path& dir) {
    return base::fsync_dir(dir.string());
}

}  // namespace

Result<DrainStats> run_drain(const DrainOptions& opt, const std::stop_token& stop) {
    auto host = host::connect_host(opt.dir);
    if (!host) return std::move(host).error();
    const fs::path out(opt.out);
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) return make_error(errc::io_error, "cannot create " + opt.out + ": " + ec.message());
    const std::string serial = (*host)->serial();
    const fs::path state_path = out / kStateName;

    // Where we are: the state file (entry, file, size) written after each fsync, before each ack.
    std::uint64_t cursor = 0;
    SegmentFile file;
    if (fs::exists(state_path)) {
        auto text = base::read_file(state_path.string(), 4096);
        if (!text) return std::move(text).error();
        char name[256] = {};
        unsigned long long entry = 0;
        unsigned long long size = 0;
        if (std::sscanf(text->c_str(), "v1 entry=%llu size=%llu file=%255s", &entry, &size, name) != 3)
            return make_error(errc::corrupt, state_path.string() + ": malformed drain state");
        cursor = entry;
        // Discard whatever a crash left after the last recorded fsync; the ring still holds it.
        if (name[0] != '-') {
            fs::resize_file(out / name, size, ec);
            if (ec) return make_error(errc::io_error, "cannot truncate " + (out / name).string() + ": " + ec.message());
            HSMAUDIT_TRY(file.open(out / name, false));
        }
    } else {
        auto st = (*host)->status();
        if (!st) return std::move(st).error();
        cursor = st->oldest_entry - 1;
    }

    DrainStats stats;
    std::uint64_t since_seal = 0;
    bool final_seal = false;  // --seal-at-end: the last seal was requested
    ring::EntryKind last_kind = ring::EntryKind::record;
    std::vector<ring::EntryView> batch;
    std::string line;
    while (!stop.stop_requested()) {
        batch.clear();
        auto n = (*host)->read_after(cursor, opt.batch, batch);
        if (!n) return std::move(n).error();
        if (*n == 0) {
            if (opt.seal_at_end && !final_seal && last_kind != ring::EntryKind::seal) {
                auto s = (*host)->seal();
                if (!s) return std::move(s).error();
                final_seal = true;
                continue;
            }
            if (!opt.follow) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        bool new_file = false;
        bool halt = false;
        std::size_t used = 0;
        for (const auto& e : batch) {
            // After the final seal, the next epoch's open entry stays in the ring for the next drain:
            // every file written is then sealed.
            if (final_seal && last_kind == ring::EntryKind::seal && e.entry.kind == ring::EntryKind::open) {
                halt = true;
                break;
            }
            line.clear();
            HSMAUDIT_TRY(host::render_line(e, serial, line));
            if (e.entry.kind == ring::EntryKind::open) {
                auto o = mac::parse_open_line(std::string_view(line).substr(0, line.size() - 1));
                if (!o)
                    return make_error(errc::corrupt,
                                      "entry " + std::to_string(e.entry.entry_no) + ": " + o.error().message);
                if (file.is_open()) HSMAUDIT_TRY(file.flush_and_sync());
                HSMAUDIT_TRY(file.open(out / mac::segment_file_name(serial, o->epoch), true));
                new_file = true;
                ++stats.files;
            } else if (!file.is_open()) {
                return make_error(errc::invalid_state, "the ring's oldest entry (" + std::to_string(e.entry.entry_no) +
                                                           ") is in the middle of a segment whose file is not in " +
                                                           opt.out + "; drain into the directory used before");
            }
            file.append(line);
            if (e.entry.kind == ring::EntryKind::record) {
                ++stats.records;
                ++since_seal;
            } else if (e.entry.kind == ring::EntryKind::seal) {
                ++stats.seals;
                since_seal = 0;
            }
            last_kind = e.entry.kind;
            cursor = e.entry.entry_no;
            ++stats.entries;
            ++used;
        }
        if (used > 0) {
            // Durable first (file, directory, state), acknowledged second.
            HSMAUDIT_TRY(file.flush_and_sync());
            if (new_file) HSMAUDIT_TRY(sync_dir(out));
            const std::string state = "v1 entry=" + std::to_string(cursor) + " size=" + std::to_string(file.size()) +
                                      " file=" + (file.is_open() ? file.name() : std::string("-")) + "\n";
            HSMAUDIT_TRY(base::write_file_atomic(state_path.string(), state, 0600, false));
            HSMAUDIT_TRY((*host)->ack_through(cursor));
            stats.acked_through = cursor;
        }
        if (halt) break;
        if (opt.seal_every > 0 && since_seal >= opt.seal_every && !final_seal) {
            auto s = (*host)->seal();
            if (!s) return std::move(s).error();
            since_seal = 0;
        }
    }
    return stats;
}

}  // namespace hsmaudit::hsmcore::cli
