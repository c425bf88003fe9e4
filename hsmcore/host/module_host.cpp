#include "hsmcore/host/module_host.h"

#include <filesystem>
#include <optional>

#include "hsmcore/errc.h"
#include "hsmcore/host/control_protocol.h"
#include "hsmcore/module/module.h"
#include "mac/crypto.h"

namespace hsmaudit::hsmcore::host {
namespace {

/// Module and agent in one process: reads share the module's mapping; acks and seals are calls.
class InProcessHost final : public ModuleHost {
public:
    explicit InProcessHost(module::Module& m) : module_(m), reader_(m.reader()), serial_(m.serial()) {}
    Result<std::size_t> read_after(std::uint64_t after, std::size_t max, std::vector<ring::EntryView>& out) override {
        return reader_.read_after(after, max, out);
    }
    Status ack_through(std::uint64_t entry_no) override { return module_.ack_through(entry_no); }
    Result<ring::RingStatus> status() override { return reader_.status(); }
    Result<std::uint64_t> seal() override {
        auto r = module_.seal();
        if (!r) return std::move(r).error();
        return r->handle;
    }
    Result<mac::Checkpoint> checkpoint(std::uint64_t retained) override { return module_.checkpoint(retained); }
    Result<std::string> tree_head() override { return module_.tree_head(); }
    [[nodiscard]] const std::string& serial() const override { return serial_; }

private:
    module::Module& module_;
    ring::RingReader reader_;
    std::string serial_;
};

/// The agent in its own process: the ring file mapped read-only, acks and seals over the socket.
class CrossProcessHost final : public ModuleHost {
public:
    CrossProcessHost(ring::RingReader reader, std::string socket_path)
        : reader_(std::move(reader)), socket_path_(std::move(socket_path)), serial_(reader_.serial()) {}
    Result<std::size_t> read_after(std::uint64_t after, std::size_t max, std::vector<ring::EntryView>& out) override {
        return reader_.read_after(after, max, out);
    }
    Status ack_through(std::uint64_t entry_no) override {
        auto r = call("ACK " + std::to_string(entry_no));
        if (!r) return std::move(r).error();
        return {};
    }
    Result<ring::RingStatus> status() override { return reader_.status(); }
    Result<std::uint64_t> seal() override {
        auto r = call("SEAL");
        if (!r) return std::move(r).error();
        return r->get_u64("entry");
    }
    Result<mac::Checkpoint> checkpoint(std::uint64_t retained) override {
        auto r = call(retained == 0 ? std::string("CHECKPOINT") : "CHECKPOINT " + std::to_string(retained));
        if (!r) return std::move(r).error();
        std::string line = "@checkpoint";
        for (const auto& [k, v] : r->fields) {
            line += ' ';
            line += k;
            line += '=';
            line += v;
        }
        return mac::parse_checkpoint_line(line);
    }
    Result<std::string> tree_head() override {
        auto r = call("TREEHEAD");
        if (!r) return std::move(r).error();
        const std::string_view hex = r->get("note");
        std::string note(hex.size() / 2, '\0');
        if (hex.empty() || hex.size() % 2 != 0 ||
            !mac::hex_decode(hex, {reinterpret_cast<std::uint8_t*>(note.data()), note.size()}))
            return make_error(errc::protocol_error, "TREEHEAD: the reply carries no note");
        return note;
    }
    [[nodiscard]] const std::string& serial() const override { return serial_; }

private:
    Result<ReplyFields> call(const std::string& req) {
        // One reconnect attempt: the module may have restarted since the last call.
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!client_) {
                auto c = ControlClient::connect(socket_path_);
                if (!c) return std::move(c).error();
                client_.emplace(std::move(*c));
            }
            auto r = client_->call(req);
            if (r || r.error().code != errc::unavailable) return r;
            client_.reset();
            if (attempt == 1) return r;
        }
        return make_error(errc::unavailable, "module not reachable");
    }

    ring::RingReader reader_;
    std::string socket_path_;
    std::string serial_;
    std::optional<ControlClient> client_;
};

}  // namespace

std::unique_ptr<ModuleHost> make_in_process_host(module::Module& module) {
    return std::make_unique<InProcessHost>(module);
}

Result<std::unique_ptr<ModuleHost>> connect_host(const std::string& dir) {
    namespace fs = std::filesystem;
    auto reader = ring::RingReader::open((fs::path(dir) / ring::kRingFile).string());
    if (!reader) return std::move(reader).error();
    return std::unique_ptr<ModuleHost>(
        std::make_unique<CrossProcessHost>(std::move(*reader), (fs::path(dir) / kControlSocket).string()));
}

}  // namespace hsmaudit::hsmcore::host
