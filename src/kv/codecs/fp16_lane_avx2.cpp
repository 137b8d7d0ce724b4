// AVX2/F16C body of lane_dot_f16 (codecs.h): lane_dot's 8 partial sums (kv/lane_dot.h)
// over f16 values converted in registers instead of through the table. The build gives
// this file -ffp-contract=off: lane_dot multiplies and adds in two roundings, and a fused
// multiply-add here would change the bits.
#include <immintrin.h>

#include <cstdint>

namespace strata::kv {

float lane_dot_f16_avx2(const float* a, const uint16_t* h, int64_t n) {
    __m256 p = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)));
        p = _mm256_add_ps(p, _mm256_mul_ps(_mm256_loadu_ps(a + i), v));
    }
    alignas(32) float l[8];
    _mm256_store_ps(l, p);
    for (int k = 0; i < n; ++i, ++k) l[k] += a[i] * _cvtsh_ss(h[i]);
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

// m rows a[k] against the same f16 row: m independent chains, each the single-row body's
// operations in its order (so every result equals lane_dot_f16_avx2(a[k], h, n) bit for
// bit), with each f16 load and conversion shared. m <= 8.
void lane_dot_f16_multi_avx2(const float* const* a, int m, const uint16_t* h, int64_t n, float* out) {
    __m256 p[8];
    for (int k = 0; k < m; ++k) p[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)));
        for (int k = 0; k < m; ++k) p[k] = _mm256_add_ps(p[k], _mm256_mul_ps(_mm256_loadu_ps(a[k] + i), v));
    }
    for (int k = 0; k < m; ++k) {
        alignas(32) float l[8];
        _mm256_store_ps(l, p[k]);
        for (int64_t j = i, t = 0; j < n; ++j, ++t) l[t] += a[k][j] * _cvtsh_ss(h[j]);
        out[k] = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
    }
}

}  // namespace strata::kv
