// Reductions for the plain-C++ fused kernels of the per-token formats (row_cache, fp16's
// exact path, TurboQuant): kLanes independent partial sums combined pairwise, so the
// compiler vectorizes them without -ffast-math (a single running sum is one serial chain
// of dependent adds, about 8x slower at head_dim 64). The order is fixed, so results are
// deterministic; they differ from a single running sum by f32 round-off only.
#pragma once

#include <cstdint>

namespace strata::kv {

inline constexpr int kLanes = 8;

// sum over i < n of a[i] * get(i).
template <class Get>
inline float lane_dot(const float* a, int64_t n, Get get) {
    float p[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) p[l] += a[i + l] * get(i + l);
    for (int l = 0; i < n; ++i, ++l) p[l] += a[i] * get(i);
    return ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
}

inline float dot8(const float* a, const float* b, int64_t n) {
    return lane_dot(a, n, [b](int64_t i) { return b[i]; });
}

// IEEE half -> float for all 65536 codes (exact; 256 KiB, built on first use), so inner
// loops convert with a load instead of a call.
const float* fp16_table();

}  // namespace strata::kv
