// KIVI as the KVarN paper ran it ("matched", spec §4.3): keys quantized per channel over
// groups of 128 tokens, values per token over the whole head vector (64 channels for our
// model), asymmetric min/max RTN with FP16 step and minimum, an FP16 sink of 128 tokens
// and the partial tile in FP16. It is the tile format with rotation and VarN off, so it
// shares tile_format.h's record and fused kernels. (KIVI's own G=32, R=128 FIFO variant
// is kivi_fifo.cpp: kivi2_g32_r128 / kivi4_g32_r128.)
#include "kv/codecs/codecs.h"
#include "kv/tile_cache.h"

namespace strata::kv {

namespace {
std::unique_ptr<Method> make_kivi(std::string_view name, int bits, std::string_view summary) {
    TileConfig c;
    c.name = name;
    c.bits_k = c.bits_v = bits;
    c.hadamard = false, c.varn = false;
    return std::make_unique<TileMethod>(c, summary);
}
}  // namespace

std::unique_ptr<Method> make_kivi2_method() {
    return make_kivi("kivi2", 2, "KIVI 2-bit, matched to KVarN (K per channel/128 tokens, V per token, FP16 sink/tail)");
}
std::unique_ptr<Method> make_kivi4_method() {
    return make_kivi("kivi4", 4, "KIVI 4-bit, matched to KVarN (K per channel/128 tokens, V per token, FP16 sink/tail)");
}

}  // namespace strata::kv
