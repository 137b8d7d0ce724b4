// The two halves of KVarN the paper ablates (spec §4.3, Fig. 1/8): hk2 = Hadamard rotation
// then matched-KIVI RTN at 2 bits (no VarN, so no second scale vectors); varn2 = VarN then
// RTN at 2 bits without the rotation. Both are switches of the KVarN tile path.
#include "kv/codecs/codecs.h"
#include "kv/tile_cache.h"

namespace strata::kv {

std::unique_ptr<Method> make_hk2_method() {
    TileConfig c;
    c.name = "hk2";
    c.hadamard = true, c.varn = false;
    return std::make_unique<TileMethod>(c, "ablation: Hadamard + KIVI-matched 2-bit RTN (KVarN without VarN)");
}

std::unique_ptr<Method> make_varn2_method() {
    TileConfig c;
    c.name = "varn2";
    c.hadamard = false, c.varn = true;
    return std::make_unique<TileMethod>(c, "ablation: VarN + 2-bit RTN without rotation (KVarN without Hadamard)");
}

}  // namespace strata::kv
