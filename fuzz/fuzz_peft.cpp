// PEFT adapter loading (adapters::parse_peft over a parse_safetensors image): the
// adapter_config.json (peft_type, r, lora_alpha, rank_pattern/alpha_pattern regex keys,
// rslora, the rejected DoRA/bias/fan_in_fan_out/modules_to_save options) and the tensor
// names and shapes, checked against a small llama shape (src/adapters/test_util.h).
// Input layout: 2 bytes little-endian = length of the config JSON, the config, then the
// adapter_model.safetensors bytes (fuzz/corpus/peft/ seeds are written this way).
#include <algorithm>
#include <cmath>

#include "adapters/peft.h"
#include "adapters/safetensors.h"
#include "fuzz.h"

namespace {

using namespace strata;

adapters::ModelShape small_shape() {
    adapters::ModelShape s;
    s.n_layer = 2, s.n_embd = 8, s.n_ff = 12, s.n_head = 2, s.n_head_kv = 1, s.head_dim = 4;
    return s;
}

}  // namespace

STRATA_FUZZ_TARGET(peft) {
    if (size < 2) return 0;
    const size_t n_cfg = std::min<size_t>(size_t(data[0]) | size_t(data[1]) << 8, size - 2);
    const std::string config(reinterpret_cast<const char*>(data + 2), n_cfg);
    const uint8_t* st_bytes = data + 2 + n_cfg;
    const size_t st_size = size - 2 - n_cfg;
    auto st = adapters::parse_safetensors(st_bytes, st_size, "fuzz");
    if (!st) return 0;
    const auto shape = small_shape();
    auto ad = adapters::parse_peft(config, *st, shape, "fuzz");
    if (!ad) {
        STRATA_FUZZ_CHECK(!ad.error().message().empty(), "error without a message");
        return 0;
    }
    STRATA_FUZZ_CHECK(!ad->modules.empty(), "");
    STRATA_FUZZ_CHECK(adapters::check_against(*ad, shape).ok(), "parse_peft returned an adapter check_against rejects");
    for (const auto& m : ad->modules) {
        STRATA_FUZZ_CHECK(m.layer >= 0 && m.layer < shape.n_layer, m.name());
        STRATA_FUZZ_CHECK(m.rank >= 1, m.name());
        STRATA_FUZZ_CHECK(int64_t(m.a.size()) == m.rank * m.d_in && int64_t(m.b.size()) == m.d_out * m.rank, m.name());
    }
    return 0;
}
