// AVX2 + FMA vec-dots for the quantized pairs and the Q8 activation quantizers.
// Compiled with -mavx2 -mfma -mf16c; only reached through dispatch after a CPU check.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;
using x86::q5_high_bits;
using x86::unpack_nibbles;

// 32 nibbles -> 32 bytes in [0,15], low nibbles first (ggml element order).

// Sum of unsigned(a) * signed(b) over 32 bytes as 8 int32 lanes.
inline __m256i dot_u8_i8(__m256i a, __m256i b) {
    const __m256i p16 = _mm256_maddubs_epi16(a, b);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// signed x signed via sign trick
inline __m256i dot_i8_i8(__m256i a, __m256i b) {
    const __m256i ax = _mm256_sign_epi8(a, a);
    const __m256i sy = _mm256_sign_epi8(b, a);
    return dot_u8_i8(ax, sy);
}

float dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ4_1*>(w);
    auto* b = static_cast<const BlockQ8_1*>(x);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        summs += h2f(a[i].m) * h2f(b[i].s);
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = unpack_nibbles(a[i].qs);
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qa, qb)), acc);
    }
    return hsum8(acc) + summs;
}

float dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ4_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = _mm256_sub_epi8(unpack_nibbles(a[i].qs), _mm256_set1_epi8(8));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qa, qb)), acc);
    }
    return hsum8(acc);
}

// Expands the 32 high bits of a Q5 block into 0x10 per set bit.

float dot_q5_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        __m256i qa = _mm256_or_si256(unpack_nibbles(a[i].qs), q5_high_bits(a[i].qh));
        qa = _mm256_sub_epi8(qa, _mm256_set1_epi8(16));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qa, qb)), acc);
    }
    return hsum8(acc);
}

float dot_q5_1_q8_1(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_1*>(w);
    auto* b = static_cast<const BlockQ8_1*>(x);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        summs += h2f(a[i].m) * h2f(b[i].s);
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = _mm256_or_si256(unpack_nibbles(a[i].qs), q5_high_bits(a[i].qh));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qa, qb)), acc);
    }
    return hsum8(acc) + summs;
}

float dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ8_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qa, qb)), acc);
    }
    return hsum8(acc);
}

float dot_f32(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const float*>(w);
    auto* b = static_cast<const float*>(x);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum8(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

float dot_f16_f16(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const uint16_t*>(w);
    auto* b = static_cast<const uint16_t*>(x);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 va = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
        const __m256 vb = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
        acc = _mm256_fmadd_ps(va, vb, acc);
    }
    float s = hsum8(acc);
    for (; i < n; ++i) s += h2f(a[i]) * h2f(b[i]);
    return s;
}

}  // namespace

VecDotFn avx2_vec_dot(DType wt) {
    switch (wt) {
        case DType::F32: return dot_f32;
        case DType::F16: return dot_f16_f16;
        case DType::Q4_0: return dot_q4_0_q8_0;
        case DType::Q4_1: return dot_q4_1_q8_1;
        case DType::Q5_0: return dot_q5_0_q8_0;
        case DType::Q5_1: return dot_q5_1_q8_1;
        case DType::Q8_0: return dot_q8_0_q8_0;
        default: return nullptr;
    }
}

// Activation quantizer as llama.cpp's x86 path computes it (not the reference
// quantize_row_q8_0 in dtype.cpp): scale id = 127/amax and round-half-to-even. Matching it
// matters: an activation that rounds differently shifts a logit by up to d/2 * |w|, and
// SmolLM2's residual outliers amplify such flips over 30 layers.
void avx2_quantize_row_q8(const float* x, void* dst, int64_t n, bool with_sum) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float max_scalar = _mm_cvtss_f32(m);
        const float d = max_scalar / 127.f;
        const float id = max_scalar != 0.f ? 127.f / max_scalar : 0.f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q32[4];
        for (int k = 0; k < 4; ++k)
            q32[k] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        // Pack 4x8 int32 -> 32 int8 in order.
        __m256i p01 = _mm256_packs_epi32(q32[0], q32[1]);
        __m256i p23 = _mm256_packs_epi32(q32[2], q32[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        if (with_sum) {
            auto* b = static_cast<BlockQ8_1*>(dst) + i;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(b->qs), p);
            __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q32[0], q32[1]), _mm256_add_epi32(q32[2], q32[3]));
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            s = _mm_hadd_epi32(s, s);
            s = _mm_hadd_epi32(s, s);
            b->d = fp32_to_fp16(d);
            b->s = fp32_to_fp16(float(_mm_cvtsi128_si32(s)) * d);
        } else {
            auto* b = static_cast<BlockQ8_0*>(dst) + i;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(b->qs), p);
            b->d = fp32_to_fp16(d);
        }
    }
}

}  // namespace strata::cpu
