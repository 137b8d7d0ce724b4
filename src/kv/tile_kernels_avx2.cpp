// AVX2 + FMA + F16C instantiation of the tile-format attention kernels (bodies in
// tile_kernels-inl.h; 8 float lanes, 12 ymm accumulators). Compiled with
// -mavx2 -mfma -mf16c; called only after run-time detection (tile_kernels.cpp).
#include "kv/tile_kernels-inl.h"
#include "kv/varn_stats-inl.h"

namespace strata::kv {

const TileKernels& tile_kernels_avx2() {
    static const TileKernels k{"avx2", simd_scores, simd_values, simd_fp_scores, simd_fp_values, simd_max, simd_exp_sum,
                               col_sd, row_sd};
    return k;
}

}  // namespace strata::kv
