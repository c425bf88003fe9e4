// libFuzzer target for the anchors a verifier reads from files that travel through SIEMs
// (mac/anchors.h, mac/checkpoint.h; docs/FORMAT.md sections 4 and 7): the checkpoints file is
// read through load_anchor_files() exactly as `hsmaudit verify --anchors FILE` reads it, then
// matched by check_anchors() against a small trail of records 1..8 of the fixed fuzz chain.
//
// Input: first byte = mode, the rest = the file's bytes. Mode bit 0 set: a checkpoint signed with
// the fixed key (seq = mode >> 4, version 2 if bit 1, retained = 1 + (mode >> 2 & 3)) is inserted
// at the middle of the file, so that signed checkpoints reach the matching rules whatever the
// seeds; its line is on a line of its own or (bit 3) inside the surrounding text.
// Properties checked besides "no crash": find_checkpoint() of a line a checkpoint renders gives
// that checkpoint back; every fault the check reports names a known kind; no more checkpoints are
// matched than were read.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mac/anchors.h"
#include "mac/checkpoint.h"
#include "tests/fuzz/fuzz_keys.h"

namespace {

using namespace hsmaudit;

const fuzz::FixedKeys& keys() {
    static const fuzz::FixedKeys k = fuzz::fixed_keys();
    return k;
}

mac::Mac mac_of(std::uint64_t seq) {
    mac::Mac m{};
    m.fill(static_cast<std::uint8_t>(seq));
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0 || size > 64 * 1024) return 0;
    const std::uint8_t mode = data[0];
    std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    if ((mode & 1) != 0) {
        const std::uint64_t seq = mode >> 4;
        auto cp = (mode & 2) != 0 ? mac::make_checkpoint(keys().key.chain(), "150123", 0, seq, 1 + ((mode >> 2) & 3),
                                                         1'700'000'000'000, mac_of(seq), keys().signer)
                                  : mac::make_checkpoint(keys().key.chain(), "150123", 0, seq, 1'700'000'000'000,
                                                         mac_of(seq), keys().signer);
        if (cp) {
            const std::string line = cp->line();
            auto back = mac::find_checkpoint("{\"msg\": \"" + line + "\"}");
            if (!back || back->line() != line) std::abort();
            const std::size_t at = text.size() / 2;
            text.insert(at, (mode & 8) != 0 ? line : "\n" + line + "\n");
        } else if ((mode & 2) == 0) {
            std::abort();  // a version 1 checkpoint of a valid seq always signs
        }
    }
    // The file as the CLI reads it: a path (an anonymous memory file, no disk).
    const int fd = ::memfd_create("anchors", MFD_CLOEXEC);
    if (fd < 0) return 0;
    std::size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);

    mac::VerifyOptions opt;
    opt.key = keys().key;
    opt.all_chains = (mode & 4) != 0;
    auto loaded = mac::load_anchor_files({path}, opt);
    ::close(fd);
    if (!loaded) return 0;  // a file without any checkpoint: a usage error, fine

    mac::VerifyReport report;
    auto st = mac::check_anchors(
        opt, keys().key.chain(), report,
        [](mac::Fault&& f) {
            if (static_cast<std::size_t>(f.kind) >= mac::kFaultKindCount) std::abort();
        },
        [&report](const mac::AnchorRecordObserver& observe) -> hsmaudit::Status {
            // The trail: records 1..8 (what verify_chain would have put in the report).
            report.records = 8;
            report.first_seq = 1;
            report.last_seq = 8;
            if (observe)
                for (std::uint64_t seq = 1; seq <= 8; ++seq) observe("trail.log", seq, mac_of(seq), seq);
            return {};
        });
    (void)st;
    if (report.anchors_checked > opt.anchors.size()) std::abort();
    return 0;
}
