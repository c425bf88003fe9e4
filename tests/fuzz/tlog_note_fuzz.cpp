// libFuzzer target for the signed-note and tree parsers of mac/note.h and mac/merkle.h: a note
// opened with the fixed key's verifier (the bytes after the first byte), a checkpoint body, a
// verifier key string, strict base64, and CompactTree::decode. Nothing may crash; what opens must
// re-render to the same text.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mac/merkle.h"
#include "mac/note.h"
#include "tests/fuzz/fuzz_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hsmaudit;
    static const fuzz::FixedKeys keys = fuzz::fixed_keys();
    static const mac::note::NoteVerifier verifier = *mac::tree_verifier(keys.key.pub());
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto head = mac::open_checkpoint(in, verifier)) {
        auto text = mac::render_checkpoint(*head);
        if (!text || in.substr(0, text->size()) != *text) std::abort();  // parse and render disagree
    }
    if (auto head = mac::parse_checkpoint(in)) {
        auto text = mac::render_checkpoint(*head);
        if (!text || *text != in) std::abort();
    }
    (void)mac::note::parse_verifier_key(in);
    if (auto raw = mac::base64_decode(in)) {
        if (mac::base64_encode(mac::as_bytes(*raw)) != in) std::abort();
    }
    if (auto tree = mac::tlog::CompactTree::decode(in)) {
        if (tree->encode() != in) std::abort();
    }
    return 0;
}
