// safetensors reader (adapters::parse_safetensors): the 8-byte header length, the JSON
// header (dtype, shape, data_offsets, __metadata__), bounds and exact tiling of the data
// area. Invariants: decoded float tensors have shape-product values; a file of float
// tensors survives serialize -> parse with identical bits.
#include <cstring>

#include "adapters/safetensors.h"
#include "fuzz.h"

namespace {

using namespace strata;

bool is_float(const std::string& d) { return d == "F32" || d == "F16" || d == "BF16" || d == "F64"; }

}  // namespace

STRATA_FUZZ_TARGET(safetensors) {
    auto st = adapters::parse_safetensors(data, size, "fuzz");
    if (!st) {
        STRATA_FUZZ_CHECK(!st.error().message().empty(), "error without a message");
        return 0;
    }
    bool all_float = true;
    for (const auto& [name, t] : st->tensors) {
        uint64_t numel = 1;
        for (int64_t d : t.shape) {
            STRATA_FUZZ_CHECK(d >= 0, name);
            numel *= uint64_t(d);
        }
        if (is_float(t.dtype)) STRATA_FUZZ_CHECK(t.data.size() == numel, name);
        else all_float = false;
    }
    if (!all_float) return 0;
    // Round trip: F32 keeps every value (F16/BF16/F64 were already decoded to float).
    const std::vector<uint8_t> bytes = adapters::serialize_safetensors(*st);
    auto back = adapters::parse_safetensors(bytes.data(), bytes.size(), "round trip");
    STRATA_FUZZ_CHECK(bool(back), back ? "" : back.error().message());
    STRATA_FUZZ_CHECK(back->metadata == st->metadata, "metadata changed in the round trip");
    STRATA_FUZZ_CHECK(back->tensors.size() == st->tensors.size(), "");
    for (const auto& [name, t] : st->tensors) {
        const auto it = back->tensors.find(name);
        STRATA_FUZZ_CHECK(it != back->tensors.end(), name);
        STRATA_FUZZ_CHECK(it->second.shape == t.shape, name);
        STRATA_FUZZ_CHECK(it->second.data.size() == t.data.size(), name);
        STRATA_FUZZ_CHECK(t.data.empty() ||
                              std::memcmp(it->second.data.data(), t.data.data(), 4 * t.data.size()) == 0,
                          name);
    }
    return 0;
}
