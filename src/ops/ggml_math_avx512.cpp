// AVX-512 bodies of ggml_math.h. Compiled with AVX-512F/DQ flags; called only after the
// runtime check in ggml_math.cpp.
#include <immintrin.h>

#include <cmath>

#include "ops/ggml_math.h"

namespace strata::ops {

namespace {

// 2^n * p(b) as ggml computes it; inputs with |n| > 192 (far outside float's exp range)
// flush to 0 or inf.
inline __m512 v_expf(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    __m512 res = _mm512_scalef_ps(j, n);
    const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    if (big) {
        const __mmask16 pos = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_GT_OQ);
        res = _mm512_mask_blend_ps(big, res,
                                   _mm512_mask_blend_ps(pos, _mm512_setzero_ps(), _mm512_set1_ps(INFINITY)));
    }
    return res;
}

}  // namespace

void vexp_ggml_avx512(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 15 < n; i += 16) _mm512_storeu_ps(y + i, v_expf(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = __mmask16((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, v_expf(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void swiglu_ggml_avx512(float* g, const float* u, int64_t n) {
    int64_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 15 < n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
        const __m512 silu = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(silu, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

double softmax_exp_ggml_avx512(const float* x, float* y, int64_t n, float max) {
    double sum = 0;
    int64_t i = 0;
    for (; i + 15 < n; i += 16) {
        const __m512 v = v_expf(_mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(max)));
        _mm512_storeu_ps(y + i, v);
        sum += double(_mm512_reduce_add_ps(v));
    }
    for (; i < n; ++i) {
        y[i] = std::exp(x[i] - max);
        sum += double(y[i]);
    }
    return sum;
}

float dot_f16_ggml_avx512(const uint16_t* a, const uint16_t* b, int64_t n) {
    const int64_t np = n & ~int64_t(63);
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; ++j) {
            const __m512 va = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16 * j)));
            const __m512 vb = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 16 * j)));
            s[j] = _mm512_fmadd_ps(va, vb, s[j]);
        }
    s[0] = _mm512_add_ps(s[0], s[2]);
    s[1] = _mm512_add_ps(s[1], s[3]);
    s[0] = _mm512_add_ps(s[0], s[1]);
    double sum = double(_mm512_reduce_add_ps(s[0]));
    for (int64_t i = np; i < n; ++i) sum += double(_cvtsh_ss(a[i]) * _cvtsh_ss(b[i]));
    return float(sum);
}

}  // namespace strata::ops

