// libFuzzer target for the proof file parser and checker of `hsmaudit verify-proof`
// (agent/tools/proof.h): any bytes are parsed, a parsed proof re-renders to the same bytes and
// is checked (hashes, embedded signed notes) against the fixed key's verifier without crashing.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/tools/proof.h"
#include "tests/fuzz/fuzz_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace hsmaudit;
    static const fuzz::FixedKeys keys = fuzz::fixed_keys();
    static const mac::note::NoteVerifier verifier = *mac::tree_verifier(keys.key.pub());
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto proof = agent::tools::parse_proof(in);
    if (!proof) return 0;
    if (agent::tools::render_proof(*proof) != in) std::abort();  // one text per proof
    (void)agent::tools::check_proof(*proof, verifier, {std::string(in)});
    return 0;
}
