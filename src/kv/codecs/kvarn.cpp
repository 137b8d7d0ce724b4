// KVarN (spec §2): Hadamard rotation of K, V and queries, then per 128-token tile VarN
// dual-scale normalization and per-row asymmetric RTN, FP16 scales, an FP16 sink of 128
// tokens and the partial tile kept in FP16. Reference defaults (spec §2.9): G = 128,
// S = 128, 16 VarN iterations. kvarn_k4v2 is the shipped preset, kvarn_k2v2 the paper's.
// Record layout and fused kernels: tile_format.h; lifecycle: tile_cache.h.
#include <fmt/format.h>

#include "kv/codecs/codecs.h"
#include "kv/tile_cache.h"

namespace strata::kv {

std::unique_ptr<Method> make_kvarn_method(int bits_k, int bits_v) {
    // Names and summaries are static: registries hand out string_views.
    static const char* const names[5][5] = {
        {}, {}, {nullptr, nullptr, "kvarn_k2v2", "kvarn_k2v3", "kvarn_k2v4"},
        {nullptr, nullptr, "kvarn_k3v2", "kvarn_k3v3", "kvarn_k3v4"},
        {nullptr, nullptr, "kvarn_k4v2", "kvarn_k4v3", "kvarn_k4v4"}};
    TileConfig c;
    c.name = names[bits_k][bits_v];
    c.bits_k = bits_k, c.bits_v = bits_v;
    c.hadamard = true, c.varn = true;
    return std::make_unique<TileMethod>(c, "KVarN: Hadamard + VarN + RTN tiles of 128, FP16 sink/tail (spec §2)");
}

}  // namespace strata::kv
