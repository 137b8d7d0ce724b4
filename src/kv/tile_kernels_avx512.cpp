// AVX-512 (F/BW/VL) instantiation of the tile-format attention kernels (bodies in
// tile_kernels-inl.h; 16 float lanes, 64-code work units). Compiled with AVX-512 flags;
// called only after run-time detection (tile_kernels.cpp).
#define STRATA_TILE_V16 1
#include "kv/tile_kernels-inl.h"
#include "kv/varn_stats-inl.h"

namespace strata::kv {

const TileKernels& tile_kernels_avx512() {
    static const TileKernels k{"avx512", simd_scores, simd_values, simd_fp_scores, simd_fp_values, simd_max, simd_exp_sum,
                               col_sd, row_sd};
    return k;
}

}  // namespace strata::kv
