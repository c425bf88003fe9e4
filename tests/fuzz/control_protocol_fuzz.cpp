// libFuzzer target for the module's control-socket protocol (hsmcore/host/control_protocol.h):
// the reply lines the agent's host reads from `hsmcore serve` (parse_reply, ReplyFields) and the
// word splitting both sides use. Input: one or more lines; each is parsed as a reply.
// Properties checked besides "no crash": no word is empty or holds a space, and an OK reply's
// fields are exactly its words' key=value pairs.
//
// An input starting with "REQ\n" is a list of request lines for the module side instead
// (ControlServer::handle on a module emulator in a scratch directory, created once): the harness
// opens a session logged in as CO first and replaces "$S" by its handle; RSA key generation is
// left out (seconds per key under ASan), as are inputs of more than 16 requests. Every reply must
// parse as a reply.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hsmcore/host/control_protocol.h"
#include "hsmcore/host/control_server.h"
#include "hsmcore/module/module.h"
#include "tests/fuzz/fuzz_temp_dir.h"

using namespace hsmaudit;
using namespace hsmaudit::hsmcore::host;

namespace {

/// The module the request mode talks to; re-created when the harness cannot log in any more (a
/// fuzzed INITROLE changed the PIN, or the partition was re-initialized).
class FuzzModule {
public:
    /// A CO session's handle, or 0 if the module had to be re-created and still refuses.
    std::uint64_t session() {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!module_ && !create()) std::abort();
            auto s = module_->open_session(1);
            if (s) {
                if (module_->login(s->handle, hsmcore::module::Role::co, co_pin_)) return s->handle;
                (void)module_->close_session(s->handle);
            }
            module_.reset();
        }
        return 0;
    }
    hsmcore::module::Module& module() { return *module_; }
    /// Keeps the ring from filling: the host acknowledges everything, as the agent would.
    void ack_all() {
        const auto st = module_->status();
        if (st.next_entry > 1) (void)module_->ack_through(st.next_entry - 1);
    }

private:
    bool create() {
        const auto dir = fuzz::temp_dir() / ("module" + std::to_string(++generation_));
        std::error_code ec;
        std::filesystem::remove_all(fuzz::temp_dir() / ("module" + std::to_string(generation_ - 1)), ec);
        hsmcore::module::InitOptions o;
        o.ring_bytes = 256 * 1024;
        o.max_failed_logins = 1'000'000;
        if (!hsmcore::module::Module::init(dir.string(), o)) return false;
        auto m = hsmcore::module::Module::open(dir.string());
        auto pins = hsmcore::module::load_client_pins(dir.string());
        if (!m || !pins || !pins->contains({"CO", 1})) return false;
        module_ = std::move(*m);
        co_pin_ = pins->at({"CO", 1});
        return true;
    }
    std::unique_ptr<hsmcore::module::Module> module_;
    std::string co_pin_;
    unsigned generation_ = 0;
};

void requests(std::string_view in) {
    // Never destroyed: its destructor would write into the scratch directory after the atexit
    // handler removed it.
    static FuzzModule& fm = *new FuzzModule;
    std::size_t n = 0;
    for (std::string_view rest = in; !rest.empty(); ++n) {
        const auto nl = rest.find('\n');
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
    if (n > 16 || in.find("RSA-") != std::string_view::npos) return;
    const std::uint64_t s = fm.session();
    if (s == 0) return;
    const std::string handle = std::to_string(s);
    while (!in.empty()) {
        const auto nl = in.find('\n');
        std::string req(in.substr(0, nl));
        in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
        for (auto at = req.find("$S"); at != std::string::npos; at = req.find("$S", at + handle.size()))
            req.replace(at, 2, handle);
        const std::string reply = ControlServer::handle(fm.module(), req);
        if (reply.find('\n') != std::string::npos) std::abort();
        auto r = parse_reply(reply);
        if (r && reply.substr(0, 2) != "OK") std::abort();
    }
    (void)fm.module().close_session(s);
    fm.ack_all();
}

void one_line(std::string_view line) {
    for (auto w : split_words(line))
        if (w.empty() || w.find(' ') != std::string_view::npos) std::abort();
    auto r = parse_reply(line);
    if (!r) {
        (void)r.error().describe();
        return;
    }
    if (line.substr(0, 2) != "OK") std::abort();
    if (r->fields.size() != split_words(line.substr(2)).size()) std::abort();
    for (const auto& [k, v] : r->fields) {
        if (r->get(k).data() == nullptr && !v.empty()) std::abort();
        (void)r->get_u64(k);
    }
    (void)r->get_u64("seq");
    (void)r->get("");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (in.size() > kMaxRequestBytes) return 0;
    if (in.substr(0, 4) == "REQ\n") {
        requests(in.substr(4));
        return 0;
    }
    one_line(in);
    while (!in.empty()) {
        const auto nl = in.find('\n');
        one_line(in.substr(0, nl));
        if (nl == std::string_view::npos) break;
        in.remove_prefix(nl + 1);
    }
    return 0;
}
