// LayerCache for tile formats (KVarN, its ablations, matched KIVI): per (sequence, layer)
// an FP16 sink of the first S tokens, quantized tiles of G tokens (one page per tile,
// holding one tile_format.h record per KV head; page table in token order), and an FP16
// tail of the newest tokens not yet in a full tile (spec §2.2). Everything is stored in
// the rotated frame when the config rotates.
// Flush timing follows the reference: the token that completes a tile is attended in FP
// during its own step; complete tiles are quantized at the start of the next append. So
// appending G-aligned chunks gives the same cache as token-by-token decoding.
#pragma once

#include "kv/kv_cache.h"
#include "kv/tile_format.h"

namespace strata::kv {

Result<std::unique_ptr<LayerCache>> make_tile_cache(const CacheShape& s, ByteBudget& budget, const TileConfig& c);

class TileMethod final : public Method {
public:
    TileMethod(TileConfig c, std::string_view summary) : c_(c), summary_(summary) {}
    std::string_view name() const override { return c_.name; }
    std::string_view summary() const override { return summary_; }
    Status check(const CacheShape& s) const override;
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int, ByteBudget& budget) const override {
        return make_tile_cache(s, budget, c_);
    }
    const TileConfig& config() const { return c_; }

private:
    TileConfig c_;
    std::string_view summary_;
};

}  // namespace strata::kv
